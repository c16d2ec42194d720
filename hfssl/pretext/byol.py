"""BYOL (Grill et al., NeurIPS 2020): predict a momentum target's projection of another view.

The online network (``self.backbone`` -> ``projector`` -> ``predictor``) regresses the target
network's projection of the other view (``2 - 2 cos``, both view orders summed); the target
network (``target_backbone`` -> ``target_projector``) is an exponential moving average of the
online one and gets no gradient. No negatives, so nothing to gather across processes.

Momentum: ``momentum`` (0.996) rising to ``momentum_final`` (1.0) on BYOL's cosine schedule
over ``momentum_total_steps`` optimiser steps; with ``momentum_total_steps=None`` it stays at
``momentum``. Call :meth:`BYOLForPretraining.after_optimizer_step` after each optimiser step
(the trainer does); the step counter is a buffer, so a resumed run continues the schedule.

Exported backbone: the **online** encoder by default (the paper found it better for
classification); ``export_backbone(which="target")`` gives the target encoder. Views are those
of :class:`~hfssl.pretext.shared.ContrastiveConfig` (2D random resized crops, 3D overlapping
crops, flips, rot90, blur, noise).
"""

from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch.nn import functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextModel, PretextOutput
from hfssl.pretext.blocks import (
    MLPHead,
    MomentumCopiesMixin,
    byol_loss,
    cosine_momentum_schedule,
    frozen_copy,
)
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import ContrastiveConfig, ContrastiveViewsMixin, pair_similarity_metrics


@strict
class BYOLConfig(ContrastiveConfig):
    r"""Configuration of BYOL (plus the view settings of :class:`ContrastiveConfig`).

    Args:
        projection_dim (`int`, defaults to 256): projector (and predictor) output.
        projection_hidden_dim (`int`, defaults to 4096): projector hidden width.
        prediction_hidden_dim (`int`, defaults to 4096): predictor hidden width.
        momentum (`float`, defaults to 0.996): EMA momentum of the target network (start value).
        momentum_final (`float`, defaults to 1.0): momentum at the end of the cosine schedule.
        momentum_total_steps (`int`, *optional*): optimiser steps of the cosine schedule; ``None``
            keeps the momentum constant at ``momentum``.
    """

    model_type = "hfssl_byol"

    projection_dim: int = 256
    projection_hidden_dim: int = 4096
    prediction_hidden_dim: int = 4096
    momentum: float = 0.996
    momentum_final: float = 1.0
    momentum_total_steps: int | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        for name in ("projection_dim", "projection_hidden_dim", "prediction_hidden_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}", "use a positive size")
        if not 0.0 <= self.momentum <= self.momentum_final <= 1.0:
            raise ConfigError(
                f"need 0 <= momentum <= momentum_final <= 1, got {self.momentum} and {self.momentum_final}",
                "use e.g. momentum=0.996, momentum_final=1.0",
            )
        if self.momentum_total_steps is not None and self.momentum_total_steps < 1:
            raise ConfigError(
                f"momentum_total_steps must be >= 1, got {self.momentum_total_steps}",
                "give the number of optimiser steps, or None for a constant momentum",
            )
        super().__post_init__(**kwargs)


@register_pretext("byol")
class BYOLForPretraining(MomentumCopiesMixin, ContrastiveViewsMixin, PretextModel):
    """BYOL: online backbone + projector + predictor regress an EMA target's projections."""

    config_class = BYOLConfig
    momentum_copies = ("target_backbone", "target_projector")

    ema_steps: torch.Tensor

    def __init__(self, config: BYOLConfig) -> None:
        super().__init__(config)
        self.projector = MLPHead(
            self.backbone.num_features, config.projection_hidden_dim, config.projection_dim
        )
        self.predictor = MLPHead(config.projection_dim, config.prediction_hidden_dim, config.projection_dim)
        self.view_maker = config.view_maker()
        # optimiser steps taken so far (drives the cosine momentum schedule; saved for resuming)
        self.register_buffer("ema_steps", torch.zeros((), dtype=torch.long))
        self.post_init()
        # The target copies are made after post_init so they start equal to the initialised
        # online modules (copying before would let the init visit re-draw them independently).
        self.target_backbone = frozen_copy(self.backbone)
        self.target_projector = frozen_copy(self.projector)

    # ------------------------------------------------------------------ momentum
    @property
    def current_momentum(self) -> float:
        """Momentum the next :meth:`after_optimizer_step` uses."""
        cfg = self.config
        if cfg.momentum_total_steps is None:
            return cfg.momentum
        return cosine_momentum_schedule(
            int(self.ema_steps), cfg.momentum_total_steps, cfg.momentum, cfg.momentum_final
        )

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """EMA update of the target backbone and projector (call after each optimiser step)."""
        self._update_momentum_copies(self.current_momentum)
        self.ema_steps += 1

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        view_a, view_b = self.make_views(pixel_values, generator)
        both = torch.cat([view_a, view_b])
        pooled = self.embed(both)
        projections = self.projector(pooled)
        p_a, p_b = self.predictor(projections).chunk(2)
        with torch.no_grad():
            t_pooled, _ = self.target_backbone.forward_features(both)
            t_a, t_b = self.target_projector(t_pooled).chunk(2)
        loss = byol_loss(p_a, t_b) + byol_loss(p_b, t_a)
        z_a, z_b = projections.chunk(2)
        metrics = pair_similarity_metrics(z_a, z_b)
        with torch.no_grad():
            cos = 0.5 * (F.cosine_similarity(p_a, t_b).mean() + F.cosine_similarity(p_b, t_a).mean())
            metrics["prediction_cos"] = cos.detach()
            metrics["momentum"] = loss.new_tensor(self.current_momentum)
        out = PretextOutput(loss=loss, embeddings=pooled[: pixel_values.shape[0]], metrics=metrics)
        return out if return_dict is not False else out.to_tuple()
