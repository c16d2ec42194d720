"""What a pretraining run writes in its output folder, and the helpers that write it.

``OUTPUT_DIR`` holds ``training_args.json`` (with ``init_source``: spec, kind and weights hash of the
``--init-from`` checkpoint, when there is one), ``metrics.jsonl`` (one JSON record per log or
evaluation), ``checkpoints/`` (see :mod:`hfssl.training.checkpointing`), ``runs/`` (trackers),
and at the end ``backbone/`` (an ``HfsslModel`` with provenance in its config, ``init_source`` as
``pretrain_init_from``) and ``pretext_model/`` (the whole pretext model), each written to a
temporary folder and renamed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hfssl.errors import ConfigError
from hfssl.training.checkpointing import atomic_dir
from hfssl.utils.io import write_json_atomic, write_text_atomic
from hfssl.utils.logging import get_logger

if TYPE_CHECKING:  # pragma: no cover
    from hfssl.pretext.base import PretextModel
    from hfssl.training.trainer import Pretrainer

logger = get_logger(__name__)

METRICS_FILE = "metrics.jsonl"
ARGS_FILE = "training_args.json"
BACKBONE_DIR = "backbone"
PRETEXT_DIR = "pretext_model"
RUNS_DIR = "runs"
# what --overwrite-output-dir removes: hfssl's own outputs only, never other files
OWN_OUTPUTS = ("checkpoints", BACKBONE_DIR, PRETEXT_DIR, RUNS_DIR, METRICS_FILE, ARGS_FILE)


@dataclass
class PretrainResult:
    """What a finished run wrote and measured."""

    output_dir: Path
    global_step: int
    backbone_dir: Path
    pretext_model_dir: Path
    last_logs: dict[str, Any]
    evaluations: list[dict[str, Any]]


def hfssl_version() -> str:
    from hfssl import __version__

    return __version__


def check_output_dir(path: Path, allow_existing: bool) -> None:
    """Refuse a non-empty output dir (unless allowed) and an unwritable location; creates nothing."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output dir {path} is a file", "choose a folder for --output-dir")
    if path.is_dir() and any(path.iterdir()) and not allow_existing:
        raise ConfigError(
            f"output dir {path} is not empty",
            "pass --overwrite-output-dir to replace its hfssl outputs, --resume-from latest to continue, "
            "or choose another --output-dir",
        )
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(
            f"output dir {path} cannot be written ({ancestor} is not a writable folder)",
            "choose an --output-dir in a folder you can write to",
        )


def prepare_output_dir(path: Path, remove_own_outputs: bool) -> None:
    """Create the output dir; with ``remove_own_outputs`` (--overwrite-output-dir) remove old hfssl outputs."""
    from hfssl.utils.io import ensure_dir

    ensure_dir(path, "--output-dir")
    if remove_own_outputs:
        for name in OWN_OUTPUTS:
            target = path / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()


def training_args_record(arguments: tuple[Any, ...], extra: dict[str, Any]) -> dict[str, Any]:
    """``training_args.json``: every argument, the run's resolved settings (``extra``) and library versions."""
    import accelerate
    import transformers

    record: dict[str, Any] = {}
    for obj in arguments:
        record.update(dataclasses.asdict(obj))
    record.update(extra)
    record["versions"] = {
        "hfssl": hfssl_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
    }
    return record


def flat_config(obj: dict[str, Any]) -> dict[str, Any]:
    """Tracker-friendly config: scalars kept, everything else as a string."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif value is None:
            out[key] = "none"
        else:
            out[key] = json.dumps(value, sort_keys=True, default=str)
    return out


def append_metrics_record(output_dir: Path, record: dict[str, Any]) -> None:
    with open(output_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


def reset_metrics_file(output_dir: Path, keep_up_to: int | None) -> None:
    """Fresh run (``None``): start metrics.jsonl empty. Resume: drop the records after the checkpoint's step."""
    path = output_dir / METRICS_FILE
    if keep_up_to is None or not path.exists():
        write_text_atomic(path, "")
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short by the crash
            continue
        if int(record.get("step", 0)) <= keep_up_to:
            kept.append(line)
    write_text_atomic(path, "".join(f"{line}\n" for line in kept))


def export_models(
    model: PretextModel, output_dir: Path, which: str, provenance: dict[str, Any]
) -> tuple[Path, Path]:
    """Write ``backbone/`` (with ``provenance`` in its config) and ``pretext_model/``; each atomically."""
    backbone_dir = output_dir / BACKBONE_DIR
    pretext_dir = output_dir / PRETEXT_DIR
    backbone = model.export_backbone(which=which, provenance=provenance)
    backbone = backbone.to(device="cpu", memory_format=torch.contiguous_format)
    with atomic_dir(backbone_dir) as tmp:
        backbone.save_pretrained(tmp, safe_serialization=True)
    with atomic_dir(pretext_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True, state_dict=_contiguous_state_dict(model))
    logger.info("saved the backbone to %s and the pretext model to %s", backbone_dir, pretext_dir)
    return backbone_dir, pretext_dir


def record_train_runtime(output_dir: Path, seconds: float) -> None:
    """Add this (possibly resumed) session's wall time to ``training_args.json``, for the model card."""
    args_file = output_dir / ARGS_FILE
    if args_file.is_file():
        record = json.loads(args_file.read_text())
        record["train_runtime"] = round(seconds, 1)
        write_json_atomic(args_file, record)


def _contiguous_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def run_banner(trainer: Pretrainer, run: Any) -> str:
    """The run's summary, logged once at the start (``run``: the trainer's set-up run)."""
    m, d, args = trainer.model_args, trainer.data_args, trainer.args
    s, desc, num_images, warmup = run.schedule, run.desc, len(run.unlabelled), run.warmup
    resumed = (
        f"\n  resumed from {run.resume_path} at step {trainer.state.global_step}" if run.resume_path else ""
    )
    init = getattr(run, "init", None)
    if init is not None:
        resumed += f"\n  initialised from {init.describe()}"
    return (
        "***** Running pretraining *****\n"
        f"  method = {m.method}, backbone = {m.backbone}, dataset = {d.dataset} "
        f"({desc.spatial_dims}D, {desc.image_size} px)\n"
        f"  unlabelled images = {num_images} (splits: {', '.join(d.unlabelled_splits)})\n"
        f"  epochs = {s.num_epochs}, optimiser steps = {s.total_steps} ({s.steps_per_epoch} per epoch)\n"
        f"  batch per device = {s.per_device_batch}, processes = {s.num_processes}, accumulation = "
        f"{s.accumulation}, total batch = {s.global_batch}\n"
        f"  optimizer = {args.optim}, lr = {args.learning_rate}, schedule = {args.lr_scheduler_type} "
        f"(warm-up {warmup})\n"
        f"  mixed precision = {run.plan.mixed_precision}, memory format = {run.plan.memory_format} "
        f"({run.plan.reason})" + resumed
    )
