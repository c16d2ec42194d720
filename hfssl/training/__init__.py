"""The pretraining engine: arguments, the Accelerate loop, checkpoints, online kNN monitoring, optimisers.

``python -m hfssl.pretrain`` / ``accelerate launch -m hfssl.pretrain`` / ``hfssl pretrain`` run
:func:`hfssl.training.pretrain.main`. Names are resolved lazily so that importing this package
does not import torch, transformers or accelerate.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "ModelArguments": "hfssl.training.pretrain",
    "DataArguments": "hfssl.training.pretrain",
    "PretrainingArguments": "hfssl.training.pretrain",
    "Pretrainer": "hfssl.training.pretrain",
    "PretrainResult": "hfssl.training.pretrain",
    "TrainerCallback": "hfssl.training.pretrain",
    "TrainingError": "hfssl.training.pretrain",
    "EpochSampler": "hfssl.training.pretrain",
    "parse_args": "hfssl.training.pretrain",
    "pretrain": "hfssl.training.pretrain",
    "CheckpointManager": "hfssl.training.checkpointing",
    "TrainerState": "hfssl.training.checkpointing",
    "validate_checkpoint": "hfssl.training.checkpointing",
    "KnnMonitor": "hfssl.training.monitor",
    "knn_predict": "hfssl.training.monitor",
    "create_optimizer": "hfssl.training.optim",
    "create_scheduler": "hfssl.training.optim",
    "parameter_groups": "hfssl.training.optim",
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
