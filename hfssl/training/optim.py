"""Optimisers, learning-rate schedules and weight-decay exclusions for pretraining.

* Parameter groups: timm's ``param_groups_weight_decay`` (biases and every 1-D parameter -
  BatchNorm/LayerNorm scales and shifts - get no weight decay), extended with the names that
  timm modules list in their own ``no_weight_decay()`` (ViT ``pos_embed``, ``cls_token``),
  prefixed with where the module sits in the pretext model, plus user patterns.
* Optimisers: ``adamw`` and ``sgd`` from torch, ``lars`` from timm (SGD + layer-wise trust
  ratio for large-batch contrastive training, You et al. 2017; timm adapts only the groups with
  weight decay, which is SimCLR's exclusion of biases and norms from adaptation).
* Schedules: transformers' ``get_scheduler`` (``cosine``, ``linear``, ``constant_with_warmup`` ...)
  with linear warm-up, stepped once per optimiser step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from hfssl.errors import ConfigError

OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd", "lars")
SCHEDULERS: tuple[str, ...] = (
    "cosine",
    "linear",
    "constant",
    "constant_with_warmup",
    "cosine_with_restarts",
    "polynomial",
    "inverse_sqrt",
)


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Full parameter names that a submodule asks to exclude from weight decay.

    timm models (and any module) may define ``no_weight_decay()`` returning names relative to
    themselves (``{"pos_embed", "cls_token"}``); here they are prefixed with the submodule's path.
    """
    names: set[str] = set()
    for prefix, module in model.named_modules():
        fn = getattr(module, "no_weight_decay", None)
        if not callable(fn):
            continue
        try:
            local = fn()
        except TypeError:  # a same-named attribute with another meaning
            continue
        for name in local or ():
            names.add(f"{prefix}.{name}" if prefix else str(name))
    return names


def parameter_groups(
    model: nn.Module,
    weight_decay: float,
    exclude_patterns: Sequence[str] = (),
    exclude_1d: bool = True,
) -> list[dict[str, Any]]:
    """Optimiser parameter groups: ``{"params", "weight_decay"}`` with and without decay.

    Frozen parameters (momentum encoders) are left out. ``exclude_patterns`` are fnmatch
    patterns on full parameter names (``"*.pos_embed"``, ``"projector.*"``).
    """
    from timm.optim import param_groups_weight_decay

    if weight_decay < 0:
        raise ConfigError(
            f"weight_decay must be >= 0, got {weight_decay}", "use e.g. 0.05 (AdamW) or 1e-6 (LARS)"
        )
    excluded = sorted(no_weight_decay_names(model)) + list(exclude_patterns)
    groups = param_groups_weight_decay(
        model, weight_decay, weight_decay_exclude_1d=exclude_1d, no_weight_decay_list=excluded
    )
    if not any(g["params"] for g in groups):
        raise ConfigError(
            f"{type(model).__name__} has no trainable parameters", "check that the model is not frozen"
        )
    return groups


def create_optimizer(
    name: str,
    params: Iterable[Any],
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    lars_trust_coefficient: float = 0.001,
) -> torch.optim.Optimizer:
    """An optimiser by name (``adamw``, ``sgd``, ``lars``) over ``params`` (groups keep their decay)."""
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}", f"use one of {', '.join(OPTIMIZERS)}")
    if not lr > 0:
        raise ConfigError(f"learning_rate must be > 0, got {lr}", "use e.g. 1e-3 (AdamW) or 0.3 (LARS)")
    if key == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if not 0.0 <= momentum < 1.0:
        raise ConfigError(f"momentum must be in [0, 1), got {momentum}", "use e.g. 0.9")
    if key == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    from timm.optim import Lars

    return Lars(
        params, lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coeff=lars_trust_coefficient
    )


def resolve_warmup_steps(warmup_steps: int, warmup_ratio: float, total_steps: int) -> int:
    """Warm-up length in optimiser steps: ``warmup_steps`` if > 0, else ``ceil(ratio * total)``."""
    import math

    if warmup_steps < 0 or not 0.0 <= warmup_ratio <= 1.0:
        raise ConfigError(
            f"warm-up must be >= 0 steps and a ratio in [0, 1], got {warmup_steps} and {warmup_ratio}",
            "use e.g. --warmup-ratio 0.05",
        )
    return warmup_steps if warmup_steps > 0 else math.ceil(warmup_ratio * total_steps)


def create_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    scheduler_kwargs: dict[str, Any] | None = None,
) -> torch.optim.lr_scheduler.LRScheduler:
    """transformers' scheduler ``name`` with ``num_warmup_steps`` of linear warm-up."""
    from transformers import get_scheduler

    if name not in SCHEDULERS:
        raise ConfigError(f"unknown lr_scheduler_type {name!r}", f"use one of {', '.join(SCHEDULERS)}")
    if num_warmup_steps > num_training_steps:
        raise ConfigError(
            f"warm-up ({num_warmup_steps} steps) is longer than training ({num_training_steps} steps)",
            "lower --warmup-steps / --warmup-ratio or train longer",
        )
    return get_scheduler(
        name,
        optimizer,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        scheduler_specific_kwargs=scheduler_kwargs or {},
    )
