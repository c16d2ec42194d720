"""The pretraining engine: arguments, the Accelerate loop, checkpoints, the online kNN monitor, optimisers.

Public API: build the three argument classes and call :func:`pretrain_backbone` (also
``hfssl.pretrain_backbone``); it returns a :class:`PretrainResult`. The command line
(``hfssl pretrain``, ``python -m hfssl.pretrain``, ``accelerate launch -m hfssl.pretrain``) is
:mod:`hfssl.cli.pretrain`. Modules: ``arguments`` (the argument classes), ``runtime`` (precision,
memory format, trackers, hardware: the one resolver), ``build`` (data, schedule, model, optimiser,
monitor), ``init_from`` (``--init-from``: continued pretraining from a backbone or pretext model,
and the spec-resolver hook), ``trainer`` (the loop), ``outputs`` (what a run writes), ``callbacks``,
``checkpointing``, ``monitor``, ``optim``. Names are resolved lazily so that importing this package
does not import torch, transformers or accelerate.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "ModelArguments": "hfssl.training.arguments",
    "DataArguments": "hfssl.training.arguments",
    "PretrainingArguments": "hfssl.training.arguments",
    "Pretrainer": "hfssl.training.trainer",
    "PretrainResult": "hfssl.training.outputs",
    "TrainerCallback": "hfssl.training.callbacks",
    "TrainingError": "hfssl.training.trainer",
    "pretrain_backbone": "hfssl.training.trainer",
    "arguments_from_recipe": "hfssl.training.recipes",
    "CheckpointManager": "hfssl.training.checkpointing",
    "TrainerState": "hfssl.training.checkpointing",
    "validate_checkpoint": "hfssl.training.checkpointing",
    "OnlineKnnMonitor": "hfssl.training.monitor",
    "online_knn_scores": "hfssl.training.monitor",
    "create_optimizer": "hfssl.training.optim",
    "create_scheduler": "hfssl.training.optim",
    "parameter_groups": "hfssl.training.optim",
    "InitFromError": "hfssl.training.init_from",
    "InitSource": "hfssl.training.init_from",
    "apply_init": "hfssl.training.init_from",
    "register_spec_resolver": "hfssl.training.init_from",
    "resolve_init_source": "hfssl.training.init_from",
    "RuntimePlan": "hfssl.training.runtime",
    "resolve_runtime": "hfssl.training.runtime",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hfssl.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
