"""Barlow Twins (Zbontar et al., ICML 2021): make the cross-correlation of two views the identity.

Both views of a batch go through the backbone and a projector (a 3-layer MLP, BN + ReLU on the
hidden layers). Each projection is standardised per feature over the batch, their
cross-correlation matrix ``C`` (``D x D``) is pushed to the identity: ``sum_i (1 - C_ii)^2``
(invariance) ``+ lambda_offdiag * sum_{i != j} C_ij^2`` (redundancy reduction, ``lambda`` =
5e-3 as in the paper). No negatives, no momentum encoder. ``C`` is computed over the **global**
batch: the projections of every process are gathered with gradients
(:func:`~hfssl.pretext.blocks.barlow_twins_loss`), so the loss of ``W`` processes equals the
single-process loss of the whole batch.

Defaults are sized for 28-64 px medical images: a projector of 2048-2048-2048 (the paper uses
8192 for ImageNet; with a smaller ``D`` the paper's ``lambda`` still works, it scales with
``1/D`` only weakly). Views are those of :class:`~hfssl.pretext.shared.ContrastiveConfig` (2D
random resized crops, 3D overlapping crops, flips, rot90, blur, noise), in 2D and 3D.
"""

from typing import Any

import torch
from huggingface_hub.dataclasses import strict

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextModel, PretextOutput
from hfssl.pretext.blocks import MLPHead, barlow_twins_loss, off_diagonal_sum
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import (
    ContrastiveConfig,
    ContrastiveViewsMixin,
    check_positive_sizes,
    pair_similarity_metrics,
)


@strict
class BarlowTwinsConfig(ContrastiveConfig):
    r"""Configuration of Barlow Twins (plus the view settings of :class:`ContrastiveConfig`).

    Args:
        projection_dim (`int`, defaults to 2048): projector output ``D`` (paper: 8192).
        projection_hidden_dim (`int`, defaults to 2048): projector hidden width (paper: 8192).
        projection_layers (`int`, defaults to 3): Linear layers of the projector (paper: 3).
        lambda_offdiag (`float`, defaults to 5e-3): weight of the off-diagonal (redundancy) term.
        gather_distributed (`bool`, defaults to `True`): correlate over the global batch
            (projections of all processes gathered with gradients).
    """

    model_type = "hfssl_barlow_twins"

    projection_dim: int = 2048
    projection_hidden_dim: int = 2048
    projection_layers: int = 3
    lambda_offdiag: float = 5e-3
    gather_distributed: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        check_positive_sizes(self, ("projection_dim", "projection_hidden_dim", "projection_layers"))
        if not self.lambda_offdiag >= 0:
            raise ConfigError(f"lambda_offdiag must be >= 0, got {self.lambda_offdiag}", "use e.g. 5e-3")
        super().__post_init__(**kwargs)


@register_pretext("barlow_twins")
class BarlowTwinsForPretraining(ContrastiveViewsMixin, PretextModel):
    """Barlow Twins: backbone + projector, cross-correlation of two views pushed to the identity."""

    config_class = BarlowTwinsConfig

    def __init__(self, config: BarlowTwinsConfig) -> None:
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
        pooled, z_a, z_b = self.project_views(pixel_values, generator)
        loss, corr = barlow_twins_loss(
            z_a, z_b, self.config.lambda_offdiag, gather_distributed=self.config.gather_distributed
        )
        metrics = pair_similarity_metrics(z_a, z_b)
        with torch.no_grad():
            metrics["on_diag"] = torch.diagonal(corr).mean().detach()  # -> 1
            d = corr.shape[0]  # mean |C_ij| off the diagonal
            metrics["off_diag_abs"] = (off_diagonal_sum(corr.abs()) / max(d * d - d, 1)).detach()  # -> 0
        out = PretextOutput(loss=loss, embeddings=pooled[: pixel_values.shape[0]], metrics=metrics)
        return out if return_dict is not False else out.to_tuple()
