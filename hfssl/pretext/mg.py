"""MG: Models Genesis (Zhou et al., MICCAI 2019 / MedIA 2021), restoration of transformed images.

Each image goes through the Models Genesis chain (:func:`~hfssl.pretext.blocks.models_genesis_transform`):
flip (p .4, applied to input *and* target), local pixel shuffling (p .5), non-linear Bezier
intensity mapping (p .9) and in-/out-painting (p .9; out-painting .8, in-painting .2). The
backbone encodes the transformed image and a U-Net decoder (``self.decoder``, skips on by
default as in the reference, sigmoid output at the input size) restores the (flipped)
original; the loss is the MSE. 2D and 3D.
"""

from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch.nn import functional as F

from hfssl.pretext.base import PretextOutput
from hfssl.pretext.blocks import GenesisConfig, models_genesis_transform
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import GenerativeConfig, RestorationModel, mean_image_mse


@strict
class MGConfig(GenerativeConfig):
    r"""Configuration of Models Genesis (probabilities are per image, the reference's defaults).

    Args:
        flip_rate (`float`, defaults to 0.4): random flips of input and target.
        local_rate (`float`, defaults to 0.5): local pixel shuffling.
        nonlinear_rate (`float`, defaults to 0.9): non-linear (Bezier) intensity transformation.
        paint_rate (`float`, defaults to 0.9): in- or out-painting.
        outpaint_rate (`float`, defaults to 0.8): out-painting when painting (in-painting otherwise).
        skip_connections (`bool`, defaults to `True`): U-Net skips in the decoder.
        decoder_channels (`list[int]`, *optional*): decoder widths (default: the backbone's).
    """

    model_type = "hfssl_mg"

    flip_rate: float = 0.4
    local_rate: float = 0.5
    nonlinear_rate: float = 0.9
    paint_rate: float = 0.9
    outpaint_rate: float = 0.8

    def __post_init__(self, **kwargs: Any) -> None:
        self.genesis_config()  # validates the probabilities (ConfigError)
        super().__post_init__(**kwargs)

    def genesis_config(self) -> GenesisConfig:
        """The transform probabilities as the blocks' :class:`GenesisConfig`."""
        return GenesisConfig(
            flip_rate=self.flip_rate,
            local_rate=self.local_rate,
            nonlinear_rate=self.nonlinear_rate,
            paint_rate=self.paint_rate,
            outpaint_rate=self.outpaint_rate,
        )


@register_pretext("mg")
class MGForPretraining(RestorationModel):
    """Models Genesis: restore the original image from its transformed version (MSE)."""

    config_class = MGConfig

    def __init__(self, config: MGConfig) -> None:
        super().__init__(config)
        self.decoder = self._build_decoder()
        self.genesis = config.genesis_config()
        self.post_init()

    def make_views(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(transformed input, restoration target)`` of the Models Genesis chain."""
        return models_genesis_transform(pixel_values, self.genesis, generator)

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
        metrics = {
            "mse": loss.detach(),
            # baselines: return the transformed input unchanged / predict the batch's mean image
            "identity_mse": F.mse_loss(inputs, target).detach(),
            "mean_image_mse": mean_image_mse(target),
        }
        out = PretextOutput(
            loss=loss, embeddings=embeddings, reconstruction=reconstruction, target=target, metrics=metrics
        )
        return out if return_dict is not False else out.to_tuple()
