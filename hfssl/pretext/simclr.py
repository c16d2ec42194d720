"""SimCLR (Chen et al., ICML 2020): contrast two augmented views of each image with NT-Xent.

Both views of a batch go through the backbone and a projector (FC 512 -> BN -> ReLU -> FC 256
by default); the NT-Xent loss pulls the two projections of an image together and pushes the
other ``2N - 2`` projections of the (global) batch away. Negatives are gathered across
processes with gradients by :class:`~hfssl.pretext.blocks.NTXentLoss`.

The view settings shared by the contrastive methods (SimCLR, BYOL, MoCo v2) live in
:mod:`hfssl.pretext.shared` (:class:`~hfssl.pretext.shared.ContrastiveConfig`,
:func:`~hfssl.pretext.shared.make_contrastive_views`). Medical views are geometric + blur + noise, never colour jitter or greyscale (the images are grey already):

* **crop** - 2D: a random resized crop per view (area ``crop_min_area``..1, back to the input
  size); 3D: two *overlapping* random crops (side ``crop_min_side``..1 of the volume, IoU >
  ``crop_iou_threshold`` = 0.25, the paper's 3D positive pairs), resized to the input size.
  ``crop_mode`` picks one explicitly (``"resized"``, ``"overlapping"``, ``"none"``).
* then per view: flip (``flip_prob``), rot90 (``rot90_prob``), Gaussian blur (``blur_prob``,
  ``blur_sigma`` px), Gaussian noise (``noise_prob``, ``noise_std``) - the batched transforms of
  :class:`hfssl.data.augment.ContrastiveViews`.
"""

from typing import Any

import torch
from huggingface_hub.dataclasses import strict

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextModel, PretextOutput
from hfssl.pretext.blocks import MLPHead, NTXentLoss
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import ContrastiveConfig, ContrastiveViewsMixin, pair_similarity_metrics


@strict
class SimCLRConfig(ContrastiveConfig):
    r"""Configuration of SimCLR (plus the view settings of :class:`ContrastiveConfig`).

    Args:
        projection_dim (`int`, defaults to 256): projector output (the paper's 512 -> 256).
        projection_hidden_dim (`int`, defaults to 512): projector hidden width.
        projection_layers (`int`, defaults to 2): Linear layers of the projector (SimCLR v1: 2).
        temperature (`float`, defaults to 0.1): NT-Xent temperature.
        gather_distributed (`bool`, defaults to `True`): use the other processes' embeddings as
            negatives (gathered with gradients).
    """

    model_type = "hfssl_simclr"

    projection_dim: int = 256
    projection_hidden_dim: int = 512
    projection_layers: int = 2
    temperature: float = 0.1
    gather_distributed: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        for name in ("projection_dim", "projection_hidden_dim", "projection_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}", "use a positive size")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}", "use e.g. 0.1")
        super().__post_init__(**kwargs)


@register_pretext("simclr")
class SimCLRForPretraining(ContrastiveViewsMixin, PretextModel):
    """SimCLR: backbone + projector, NT-Xent between two views of each image."""

    config_class = SimCLRConfig

    def __init__(self, config: SimCLRConfig) -> None:
        super().__init__(config)
        self.projector = MLPHead(
            self.backbone.num_features,
            config.projection_hidden_dim,
            config.projection_dim,
            num_layers=config.projection_layers,
        )
        self.criterion = NTXentLoss(config.temperature, gather_distributed=config.gather_distributed)
        self.view_maker = config.view_maker()
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        pooled, z_a, z_b = self.project_views(pixel_values, generator)
        loss, stats = self.criterion(z_a, z_b, return_stats=True)
        metrics = pair_similarity_metrics(z_a, z_b)
        # NT-Xent's own statistics (over the gathered batch, both views as negatives)
        metrics["pos_sim"], metrics["neg_sim"] = stats.pos_sim, stats.neg_sim
        out = PretextOutput(loss=loss, embeddings=pooled[: pixel_values.shape[0]], metrics=metrics)
        return out if return_dict is not False else out.to_tuple()
