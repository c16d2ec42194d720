"""Momentum (EMA) target networks for BYOL and MoCo.

``target <- m * target + (1 - m) * online`` on parameters, with BYOL's cosine schedule of
``m`` from ``base`` (0.996) to ``final`` (1.0) over training.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from hfssl.errors import ConfigError

if TYPE_CHECKING:
    from hfssl.models import HfsslModel


def frozen_copy(module: nn.Module) -> nn.Module:
    """Deep copy of ``module`` with ``requires_grad`` off: a momentum/target encoder.

    The copy keeps the train/eval mode of the original (BYOL's and MoCo's targets run their
    BatchNorm in train mode); only the optimiser must not see its parameters.
    """
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, m: float, copy_buffers: bool = False) -> None:
    """In place ``target = m * target + (1 - m) * online`` for all parameters.

    ``copy_buffers`` also copies buffers (e.g. BatchNorm running statistics) from ``online``;
    by default the target keeps its own buffers, updated by its own forward passes, as in the
    BYOL and MoCo references.
    """
    if not 0.0 <= m <= 1.0:
        raise ConfigError(
            f"momentum must be in [0, 1], got {m}", "use e.g. 0.996 (BYOL) or 0.99/0.999 (MoCo)"
        )
    t_params = list(target.parameters())
    o_params = list(online.parameters())
    if len(t_params) != len(o_params):
        raise ValueError("online and target modules have different parameter lists")
    if t_params:
        # lerp: t + (1 - m) * (o - t) == m * t + (1 - m) * o; the foreach kernel fuses the loop
        torch._foreach_lerp_(t_params, [p.detach() for p in o_params], 1.0 - m)
    if copy_buffers:
        for tb, ob in zip(target.buffers(), online.buffers()):
            tb.copy_(ob)


def cosine_momentum_schedule(step: int, total: int, base: float = 0.996, final: float = 1.0) -> float:
    """BYOL's schedule ``final - (final - base) * (cos(pi * step / total) + 1) / 2``.

    Returns ``base`` at step 0 and ``final`` at ``step >= total``.
    """
    if total <= 0:
        raise ConfigError(f"total steps must be > 0, got {total}", "pass the number of optimiser steps")
    progress = min(max(step, 0), total) / total
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


class EMAUpdater:
    """Keeps a target network as the EMA of an online one, following a momentum schedule.

    Call :meth:`step` once per optimiser step, after ``optimizer.step()``. With
    ``schedule="cosine"`` the momentum follows :func:`cosine_momentum_schedule` over
    ``total_steps``; with ``"constant"`` it stays ``base`` (MoCo). ``state_dict`` /
    ``load_state_dict`` carry the step counter so resumed runs continue the schedule.
    """

    def __init__(
        self,
        online: nn.Module,
        target: nn.Module,
        base: float = 0.996,
        final: float = 1.0,
        total_steps: int | None = None,
        schedule: str = "cosine",
        copy_buffers: bool = False,
    ) -> None:
        if schedule not in ("cosine", "constant"):
            raise ConfigError(
                f"unknown momentum schedule {schedule!r}", "use 'cosine' (BYOL) or 'constant' (MoCo)"
            )
        if schedule == "cosine" and not total_steps:
            raise ConfigError(
                "the cosine momentum schedule needs total_steps", "pass the number of optimiser steps"
            )
        self.online, self.target = online, target
        self.base, self.final, self.total_steps = base, final, total_steps
        self.schedule = schedule
        self.copy_buffers = copy_buffers
        self.num_updates = 0

    @property
    def momentum(self) -> float:
        """Momentum that the next :meth:`step` will use."""
        if self.schedule == "constant":
            return self.base
        assert self.total_steps is not None
        return cosine_momentum_schedule(self.num_updates, self.total_steps, self.base, self.final)

    def step(self) -> float:
        """Apply one EMA update; returns the momentum used."""
        m = self.momentum
        update_momentum(self.online, self.target, m, copy_buffers=self.copy_buffers)
        self.num_updates += 1
        return m

    def state_dict(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_updates = int(state["num_updates"])


class MomentumCopiesMixin:
    """Shared plumbing of pretext models with EMA copies of their ``backbone`` and ``projector``.

    ``momentum_copies`` names the two copy attributes (backbone copy, projector copy); the names
    are part of the state-dict keys, so each method keeps its own. List the mixin before the
    :class:`~hfssl.pretext.base.PretextModel` base so its ``_init_weights`` runs first.
    """

    # ``backbone`` / ``projector`` stay unannotated: transformers evaluates class type hints at
    # subclass creation, and HfsslModel is imported only for type checking (blocks stay model-free)
    momentum_copies: ClassVar[tuple[str, str]]

    def _update_momentum_copies(self, m: float, copy_buffers: bool = False) -> None:
        """:func:`update_momentum` of both copies from the online backbone and projector."""
        backbone_copy, projector_copy = (getattr(self, name) for name in self.momentum_copies)
        update_momentum(self.backbone, backbone_copy, m, copy_buffers=copy_buffers)
        update_momentum(self.projector, projector_copy, m, copy_buffers=copy_buffers)

    def _backbone_for_export(self, which: str) -> HfsslModel:
        if which == "online":
            return self.backbone
        if which == "target":
            return getattr(self, self.momentum_copies[0])
        raise ConfigError(
            f"which must be 'online' or 'target', got {which!r}", "use online (default) or target"
        )

    def _init_weights(self, module: nn.Module) -> None:
        # never re-initialise the copies: they must track the online modules
        for name in self.momentum_copies:
            target = getattr(self, name, None)
            if target is not None and any(module is m for m in target.modules()):
                return
        super()._init_weights(module)  # type: ignore[misc]
