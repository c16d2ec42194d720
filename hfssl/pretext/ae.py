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

This module also holds the parts shared with the other restoration methods (Models Genesis,
PCRL): the decoder fields of :class:`GenerativeConfig` and :class:`RestorationModel`.
"""

from collections.abc import Sequence
from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch.nn import functional as F

from hfssl.errors import ConfigError
from hfssl.models.decoders import UNetDecoder
from hfssl.pretext.base import PretextConfig, PretextModel, PretextOutput
from hfssl.pretext.registry import register_pretext


@strict
class GenerativeConfig(PretextConfig):
    r"""Decoder settings shared by the restoration methods (AE, Models Genesis, PCRL).

    Args:
        skip_connections (`bool`, defaults to `True`): concatenate the encoder's shallower maps in
            the decoder (U-Net) or decode from the deepest map only.
        decoder_channels (`list[int]`, *optional*): widths of the decoder stages, deep to
            shallow; defaults to the backbone config's ``decoder_channels`` (256, 128, 64), which
            keeps the decoder transferable to ``HfsslForSegmentation``.
    """

    skip_connections: bool = True
    decoder_channels: list[int] | tuple[int, ...] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        if self.decoder_channels is not None:
            channels = list(self.decoder_channels)
            if not channels or any(not isinstance(c, int) or c < 1 for c in channels):
                raise ConfigError(
                    f"decoder_channels must be a non-empty list of positive ints, got {self.decoder_channels}",
                    "use e.g. [256, 128, 64], or leave it unset for the backbone's default",
                )
            object.__setattr__(self, "decoder_channels", channels)
        super().__post_init__(**kwargs)
        maps = len(self.get_backbone_config().feature_channels)
        if len(self.resolved_decoder_channels()) >= maps:
            raise ConfigError(
                f"decoder_channels {self.resolved_decoder_channels()} has too many stages for a backbone "
                f"with {maps} feature maps",
                f"use at most {maps - 1} decoder stages",
            )

    def resolved_decoder_channels(self) -> list[int]:
        """The decoder widths in use: this config's, else the backbone config's."""
        if self.decoder_channels is not None:
            return list(self.decoder_channels)
        return [int(c) for c in self.backbone_config["decoder_channels"]]


class RestorationModel(PretextModel):
    """A pretext model with a sigmoid ``UNetDecoder`` restoring images from backbone feature maps."""

    config: GenerativeConfig

    def _build_decoder(self) -> UNetDecoder:
        """The restoration decoder: backbone maps -> ``in_chans`` channels at the input size."""
        return UNetDecoder(
            self.backbone.feature_channels,
            self.config.resolved_decoder_channels(),
            out_channels=self.config.in_chans,
            spatial_dims=self.spatial_dims,
            skip_connections=self.config.skip_connections,
        )

    def restore(self, feature_maps: Sequence[torch.Tensor], output_size: Sequence[int]) -> torch.Tensor:
        """Decode ``feature_maps`` into an image in (0, 1) of spatial size ``output_size``."""
        return torch.sigmoid(self.decoder(feature_maps, output_size=output_size))


def mean_image_mse(target: torch.Tensor) -> torch.Tensor:
    """MSE of predicting the batch's per-pixel mean image: the trivial baseline a restorer must beat."""
    return F.mse_loss(target.mean(dim=0, keepdim=True).expand_as(target), target).detach()


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
