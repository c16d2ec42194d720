"""MoCo v2 (He et al., CVPR 2020; Chen et al., 2020): momentum contrast with a queue of negatives.

A query encoder (``self.backbone`` -> ``projector``, a 2-layer MLP without BatchNorm) embeds
the first view, a momentum encoder (``momentum_backbone`` -> ``momentum_projector``, an EMA of
the query encoder with momentum 0.999) embeds the second; InfoNCE (temperature 0.2) contrasts
each query with its key against ``queue_size`` keys of earlier batches, kept in a
:class:`~hfssl.pretext.blocks.MemoryQueue` (gathered from every process, so no gradient
gathering is needed). ``symmetric=True`` adds the swapped term (MoCo v3 style) and enqueues
both key sets.

The queue is read before this step's keys are added and is only updated in training mode.
Call :meth:`MoCoV2ForPretraining.after_optimizer_step` after each optimiser step (the trainer
does). The exported backbone is the query encoder; ``which="target"`` gives the momentum one.

ShuffleBN (off by default): with ``shuffle_bn_splits=S`` the query encoder runs on ``S``
sub-batches and the key encoder on ``S`` sub-batches of a shuffled key batch, so the BatchNorm
statistics of a query and of its key come from different samples - MoCo's multi-GPU trick, in
one process (where plain shuffling alone would change nothing). Under multi-GPU training each
process's batch is its own BatchNorm batch already.
"""

from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch.nn import functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextModel, PretextOutput
from hfssl.pretext.blocks import MemoryQueue, MLPHead, MomentumCopiesMixin, _rng, frozen_copy, info_nce
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import ContrastiveConfig, ContrastiveViewsMixin, pair_similarity_metrics


@strict
class MoCoV2Config(ContrastiveConfig):
    r"""Configuration of MoCo v2 (plus the view settings of :class:`ContrastiveConfig`).

    Args:
        projection_dim (`int`, defaults to 128): projector output.
        projection_hidden_dim (`int`, *optional*): projector hidden width; default: the backbone's
            feature dimension (MoCo v2's 2048 -> 2048 -> 128 on a ResNet-50).
        temperature (`float`, defaults to 0.2): InfoNCE temperature.
        queue_size (`int`, defaults to 65536): number of keys kept as negatives. Small medical
            datasets may prefer a queue of a few epochs' keys at most (e.g. 4096).
        momentum (`float`, defaults to 0.999): EMA momentum of the key encoder.
        symmetric (`bool`, defaults to `False`): also contrast the second view's query with the
            first view's key.
        shuffle_bn_splits (`int`, defaults to 1): ShuffleBN sub-batches per process (1 = off).
        projection_batch_norm (`bool`, defaults to `False`): BatchNorm in the projector's hidden
            layer (MoCo v3 style; MoCo v2 has none).
    """

    model_type = "hfssl_mocov2"

    projection_dim: int = 128
    projection_hidden_dim: int | None = None
    temperature: float = 0.2
    queue_size: int = 65536
    momentum: float = 0.999
    symmetric: bool = False
    shuffle_bn_splits: int = 1
    projection_batch_norm: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        for name in ("projection_dim", "projection_hidden_dim", "queue_size", "shuffle_bn_splits"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}", "use a positive size")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}", "use e.g. 0.2")
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"momentum must be in [0, 1], got {self.momentum}", "use e.g. 0.999")
        super().__post_init__(**kwargs)


@register_pretext("mocov2")
class MoCoV2ForPretraining(MomentumCopiesMixin, ContrastiveViewsMixin, PretextModel):
    """MoCo v2: query encoder + momentum key encoder + queue, InfoNCE (views: query, key)."""

    config_class = MoCoV2Config
    momentum_copies = ("momentum_backbone", "momentum_projector")

    def __init__(self, config: MoCoV2Config) -> None:
        super().__init__(config)
        dim = self.backbone.num_features
        self.projector = MLPHead(
            dim,
            config.projection_hidden_dim or dim,
            config.projection_dim,
            num_layers=2,
            batch_norm=config.projection_batch_norm,
        )
        self.queue = MemoryQueue(config.queue_size, config.projection_dim)
        self.view_maker = config.view_maker()
        self.post_init()
        # momentum copies after post_init: they start equal to the initialised query encoder
        self.momentum_backbone = frozen_copy(self.backbone)
        self.momentum_projector = frozen_copy(self.projector)

    # ------------------------------------------------------------------ momentum encoder
    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """EMA update of the key encoder and its projector (call after each optimiser step)."""
        self._update_momentum_copies(self.config.momentum)

    # ------------------------------------------------------------------ forward
    def _splits(self, batch: int) -> int:
        """Sub-batches for ShuffleBN in this step (1 = off, or in eval mode)."""
        return min(self.config.shuffle_bn_splits, batch // 2) if self.training else 1

    def _queries(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pooled, projections)`` of the query encoder, per sub-batch when ShuffleBN is on."""
        splits = self._splits(images.shape[0])
        if splits <= 1:
            pooled = self.embed(images)
        else:
            pooled = torch.cat([self.embed(chunk) for chunk in images.chunk(splits)])
        return pooled, self.projector(pooled)

    def _keys(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Momentum-encoder projections; with ShuffleBN, of shuffled sub-batches, then un-shuffled."""
        splits = self._splits(images.shape[0])
        with torch.no_grad():
            if splits <= 1:
                return self.momentum_projector(self.momentum_backbone.forward_features(images)[0])
            perm = torch.argsort(_rng.rand((images.shape[0],), generator, images.device))
            keys = torch.cat(
                [
                    self.momentum_projector(self.momentum_backbone.forward_features(chunk)[0])
                    for chunk in images[perm].chunk(splits)
                ]
            )
            return keys[torch.argsort(perm)]

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        cfg = self.config
        view_q, view_k = self.make_views(pixel_values, generator)
        negatives = self.queue.features  # read before this step's keys are enqueued
        if cfg.symmetric:
            pooled, projections = self._queries(torch.cat([view_q, view_k]))
            q_a, q_b = projections.chunk(2)
            k_a, k_b = self._keys(torch.cat([view_q, view_k]), generator).chunk(2)
            loss_a, stats_a = info_nce(q_a, k_b, negatives, cfg.temperature, return_stats=True)
            loss_b, stats_b = info_nce(q_b, k_a, negatives, cfg.temperature, return_stats=True)
            loss = 0.5 * (loss_a + loss_b)
            pos_sim = 0.5 * (stats_a.pos_sim + stats_b.pos_sim)
            neg_sim = 0.5 * (stats_a.neg_sim + stats_b.neg_sim)
            query, keys, new_keys = q_a, k_b, torch.cat([k_a, k_b])
        else:
            pooled, q = self._queries(view_q)
            k = self._keys(view_k, generator)
            loss, stats = info_nce(q, k, negatives, cfg.temperature, return_stats=True)
            pos_sim, neg_sim = stats.pos_sim, stats.neg_sim
            query, keys, new_keys = q, k, k
        with torch.no_grad():
            qn = F.normalize(query.detach().float(), dim=1)
            kn = F.normalize(keys.float(), dim=1)
            l_pos = (qn * kn).sum(dim=1)
            l_neg_max = (qn @ negatives.float().T).max(dim=1).values
            # instance discrimination: the positive key beats every queued negative
            acc = (l_pos > l_neg_max).float().mean()
        if self.training:
            self.queue.enqueue(new_keys)
        batch = pair_similarity_metrics(query, keys)
        metrics = {
            "pos_sim": pos_sim,
            "neg_sim": neg_sim,
            "accuracy": acc,
            # the same, against the other images of this batch instead of the queue
            "batch_neg_sim": batch["neg_sim"],
            "batch_accuracy": batch["accuracy"],
        }
        out = PretextOutput(loss=loss, embeddings=pooled[: pixel_values.shape[0]], metrics=metrics)
        return out if return_dict is not False else out.to_tuple()
