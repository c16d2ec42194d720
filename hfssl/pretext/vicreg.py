"""VICReg (Bardes, Ponce and LeCun, ICLR 2022): variance-invariance-covariance regularisation.

Both views of a batch go through the backbone and an expander (a 3-layer MLP, BN + ReLU on the
hidden layers); the loss is ``invariance_weight * MSE(z_a, z_b) + variance_weight * hinge on each
feature's standard deviation + covariance_weight * squared off-diagonal covariances``, the
paper's 25 / 25 / 1. No negatives, no momentum encoder: the variance term keeps the embeddings
from collapsing and the covariance term decorrelates their features. All three terms are
statistics of the **global** batch: the embeddings of every process are gathered with gradients
(:func:`~hfssl.pretext.blocks.vicreg_terms`).

Defaults are sized for 28-64 px medical images: an expander of 2048-2048-2048 (the paper uses
8192 for ImageNet). Views are those of :class:`~hfssl.pretext.shared.ContrastiveConfig` (2D
random resized crops, 3D overlapping crops, flips, rot90, blur, noise), in 2D and 3D.
"""

from typing import Any

import torch
from huggingface_hub.dataclasses import strict

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextModel, PretextOutput
from hfssl.pretext.blocks import MLPHead, vicreg_terms
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import (
    ContrastiveConfig,
    ContrastiveViewsMixin,
    check_positive_sizes,
    pair_similarity_metrics,
)


@strict
class VICRegConfig(ContrastiveConfig):
    r"""Configuration of VICReg (plus the view settings of :class:`ContrastiveConfig`).

    Args:
        projection_dim (`int`, defaults to 2048): expander output (paper: 8192).
        projection_hidden_dim (`int`, defaults to 2048): expander hidden width (paper: 8192).
        projection_layers (`int`, defaults to 3): Linear layers of the expander (paper: 3).
        invariance_weight (`float`, defaults to 25.0): weight of the MSE between the views (lambda).
        variance_weight (`float`, defaults to 25.0): weight of the standard-deviation hinge (mu).
        covariance_weight (`float`, defaults to 1.0): weight of the off-diagonal covariances (nu).
        gather_distributed (`bool`, defaults to `True`): compute the terms over the global batch
            (embeddings of all processes gathered with gradients).
    """

    model_type = "hfssl_vicreg"

    projection_dim: int = 2048
    projection_hidden_dim: int = 2048
    projection_layers: int = 3
    invariance_weight: float = 25.0
    variance_weight: float = 25.0
    covariance_weight: float = 1.0
    gather_distributed: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        check_positive_sizes(self, ("projection_dim", "projection_hidden_dim", "projection_layers"))
        for name in ("invariance_weight", "variance_weight", "covariance_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}", "use e.g. 25, 25, 1")
        super().__post_init__(**kwargs)


@register_pretext("vicreg")
class VICRegForPretraining(ContrastiveViewsMixin, PretextModel):
    """VICReg: backbone + expander, invariance + variance + covariance terms on two views."""

    config_class = VICRegConfig

    def __init__(self, config: VICRegConfig) -> None:
        super().__init__(config)
        self.projector = MLPHead(
            self.backbone.num_features,
            config.projection_hidden_dim,
            config.projection_dim,
            num_layers=config.projection_layers,
        )
        self.view_maker = config.view_maker()
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        cfg = self.config
        pooled, z_a, z_b = self.project_views(pixel_values, generator)
        invariance, variance, covariance = vicreg_terms(z_a, z_b, gather_distributed=cfg.gather_distributed)
        loss = (
            cfg.invariance_weight * invariance
            + cfg.variance_weight * variance
            + cfg.covariance_weight * covariance
        )
        metrics = pair_similarity_metrics(z_a, z_b)
        metrics.update(
            invariance=invariance.detach(), variance=variance.detach(), covariance=covariance.detach()
        )
        out = PretextOutput(loss=loss, embeddings=pooled[: pixel_values.shape[0]], metrics=metrics)
        return out if return_dict is not False else out.to_tuple()
