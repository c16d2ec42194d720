"""AE: the auto-encoder, the paper's plain generative baseline.

The backbone encodes the image and a :class:`~hfssl.models.decoders.UNetDecoder` on its
feature maps reconstructs it (MSE). Without skip connections (the default here) the image
must pass through the deepest, most compressed map; with them the decoder also sees the
shallow maps, which makes identity reconstruction nearly trivial - the paper's argument that
skips can be sub-optimal for generative pretext tasks (the architecture study compares both).

The decoder's output goes through a **sigmoid**, so reconstructions lie in (0, 1) like the
inputs, and is resized to the input size. The decoder is ``self.decoder`` with the backbone's
``decoder_channels`` by default, so ``HfsslForSegmentation.from_backbone(model,
transfer="all")`` can reuse it.

The parts shared with the other restoration methods (Models Genesis, PCRL), the decoder fields
of :class:`~hfssl.pretext.shared.GenerativeConfig` and
:class:`~hfssl.pretext.shared.RestorationModel`, live in :mod:`hfssl.pretext.shared`.
"""

import torch
from huggingface_hub.dataclasses import strict
from torch.nn import functional as F

from hfssl.pretext.base import PretextOutput
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import GenerativeConfig, RestorationModel, mean_image_mse


@strict
class AEConfig(GenerativeConfig):
    r"""Configuration of the auto-encoder.

    Args:
        skip_connections (`bool`, defaults to `False`): U-Net skips in the decoder; off by
            default, since with skips reconstructing the input is close to trivial.
        decoder_channels (`list[int]`, *optional*): decoder widths (default: the backbone's).
    """

    model_type = "hfssl_ae"

    skip_connections: bool = False


@register_pretext("ae")
class AEForPretraining(RestorationModel):
    """Auto-encoder: reconstruct the input from the backbone's features (MSE)."""

    config_class = AEConfig

    def __init__(self, config: AEConfig) -> None:
        super().__init__(config)
        self.decoder = self._build_decoder()
        self.post_init()

    def make_views(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input, target)``: the image itself, twice (no randomness; ``generator`` is unused)."""
        return pixel_values, pixel_values

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        inputs, target = self.make_views(pixel_values, generator)
        embeddings, maps = self.backbone.forward_features(inputs)
        reconstruction = self.restore(maps, inputs.shape[2:])
        loss = F.mse_loss(reconstruction, target)
        out = PretextOutput(
            loss=loss,
            embeddings=embeddings,
            reconstruction=reconstruction,
            target=target,
            metrics={"mse": loss.detach(), "mean_image_mse": mean_image_mse(target)},
        )
        return out if return_dict is not False else out.to_tuple()
