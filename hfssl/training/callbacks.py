"""Hooks into a pretraining run (:class:`TrainerCallback`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from hfssl.training.trainer import Pretrainer

__all__ = ["TrainerCallback"]


class TrainerCallback:
    """Hooks into :class:`~hfssl.training.trainer.Pretrainer` (override what you need; all run on every process)."""

    def on_train_begin(self, trainer: Pretrainer) -> None: ...

    def on_step_end(self, trainer: Pretrainer) -> None: ...

    def on_log(self, trainer: Pretrainer, logs: dict[str, Any]) -> None: ...

    def on_evaluate(self, trainer: Pretrainer, metrics: dict[str, Any]) -> None: ...

    def on_save(self, trainer: Pretrainer, checkpoint: Path) -> None: ...

    def on_train_end(self, trainer: Pretrainer) -> None: ...
