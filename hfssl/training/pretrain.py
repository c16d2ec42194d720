"""The pretraining engine: ``accelerate launch -m hfssl.pretrain ...`` (or ``hfssl pretrain ...``).

A Hugging Face style training script around the pretext contract (:mod:`hfssl.pretext.base`):
the model makes its own views from ``pixel_values`` in [0, 1] and returns a loss; this module
feeds it, optimises it, monitors it, checkpoints it and exports its backbone.

Accelerate does the distributed work: ``prepare`` (DDP, device placement, mixed precision,
data sharding), ``accumulate`` (gradient accumulation with ``no_sync``), ``reduce`` /
``gather_for_metrics`` (logged numbers, kNN embeddings), ``save_state`` / ``load_state``
(checkpoints), trackers (TensorBoard by default) and main-process-only logging.

Reproducibility (a killed and resumed run ends bit-identical to an uninterrupted one):

* the data order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone
  (:class:`EpochSampler`), so the sampler position is just "micro-batches consumed in this
  epoch", restored with ``skip_first_batches``; each epoch holds a whole number of optimiser
  steps (the tail that would not fill one is dropped, like ``drop_last``);
* the pretext model draws its views from a ``torch.Generator`` owned by the trainer (one per
  process), saved in every checkpoint; dropout and other global RNG draws are covered by
  Accelerate's RNG states; EMA targets, queues and BYOL's step counter are model buffers;
* optimiser, scheduler and Accelerate's step counter are restored by ``load_state``.

Outputs (``OUTPUT_DIR``): ``training_args.json``, ``metrics.jsonl`` (one JSON record per log or
evaluation), ``checkpoints/`` (see :mod:`hfssl.training.checkpointing`), ``runs/`` (trackers),
and at the end ``backbone/`` (an ``HfsslModel`` with provenance in its config) and
``pretext_model/`` (the whole pretext model), each written to a temporary folder and renamed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from hfssl.errors import CheckpointError, ConfigError, DataError, HfsslError
from hfssl.pretext.registry import list_pretext_tasks
from hfssl.training.checkpointing import (
    CheckpointManager,
    TrainerState,
    atomic_dir,
    load_generator_state,
    rng_file,
    save_generator_state,
    validate_checkpoint,
)
from hfssl.training.monitor import to_channels_last
from hfssl.utils.io import write_json_atomic, write_text_atomic
from hfssl.utils.logging import get_logger, progress_disabled

if TYPE_CHECKING:  # pragma: no cover
    from accelerate import Accelerator
    from datasets import Dataset, DatasetDict

    from hfssl.pretext.base import PretextModel

logger = get_logger(__name__)

METRICS_FILE = "metrics.jsonl"
ARGS_FILE = "training_args.json"
BACKBONE_DIR = "backbone"
PRETEXT_DIR = "pretext_model"
RUNS_DIR = "runs"
# what --overwrite-output-dir removes: hfssl's own outputs only, never other files
_OWN_OUTPUTS = ("checkpoints", BACKBONE_DIR, PRETEXT_DIR, RUNS_DIR, METRICS_FILE, ARGS_FILE)

EXAMPLES = (
    "hfssl pretrain --method rot --dataset breastmnist --output-dir runs/rot --max-steps 200",
    "accelerate launch -m hfssl.pretrain --config scripts/recipes/simclr_breastmnist.yaml --output-dir runs/simclr",
    "accelerate launch --multi_gpu --num_processes 4 -m hfssl.pretrain --config scripts/recipes/byol_breastmnist.yaml "
    "--output-dir runs/byol --sync-batchnorm",
    "hfssl pretrain --config scripts/recipes/simclr_breastmnist.yaml --output-dir runs/simclr --resume-from latest",
    "hfssl pretrain --method rot:0.5+simclr --dataset breastmnist --output-dir runs/multi --method-kwargs "
    "'{\"simclr.temperature\": 0.2}'",
)


class TrainingError(HfsslError):
    """Training cannot go on (non-finite loss, out of memory); the last checkpoint is kept."""


# ============================================================================================ args
def _json_mapping(value: Any, name: str) -> dict[str, Any]:
    """A dict from a dict, a JSON string, or None/empty."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"--{name.replace('_', '-')} must be a JSON object, got {value!r}",
            "write e.g. '{\"temperature\": 0.2}'",
        ) from err
    if not isinstance(parsed, dict):
        raise ConfigError(f"--{name.replace('_', '-')} must be a JSON object, got {value!r}", "use {...}")
    return parsed


@dataclass
class ModelArguments:
    """What to pretrain: the pretext method(s) and the backbone."""

    method: str = field(
        metadata={
            "help": f"pretext method(s): {' '.join(list_pretext_tasks())}, or a "
            "combination with weights, e.g. rot:0.5+simclr or mg:learned+byol"
        }
    )
    method_kwargs: dict | str | None = field(
        default=None,
        metadata={
            "help": "JSON object of method settings, e.g. '{\"temperature\": 0.2}'; for combinations prefix with "
            "the method: '{\"simclr.temperature\": 0.2}'"
        },
    )
    backbone: str = field(
        default="resnet18",
        metadata={"help": "timm model name (2D) or unet3d_encoder / resnet18_3d (3D)"},
    )
    backbone_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "JSON object of backbone settings, e.g. '{\"patch_size\": 4}' for a ViT"},
    )
    small_input_stem: bool | None = field(
        default=None,
        metadata={"help": "ResNet 3x3 stride-1 stem without max-pool (default: on for ResNets at <= 64 px)"},
    )

    def __post_init__(self) -> None:
        self.method_kwargs = _json_mapping(self.method_kwargs, "method_kwargs")
        self.backbone_kwargs = _json_mapping(self.backbone_kwargs, "backbone_kwargs")


@dataclass
class DataArguments:
    """Which images to pretrain on (unlabelled) and to monitor with (labelled)."""

    dataset: str = field(
        metadata={"help": "data source: breastmnist, medmnist:adrenalmnist3d, imagefolder:PATH, hub:ORG/NAME"}
    )
    image_size: int | None = field(default=None, metadata={"help": "image side (MedMNIST: 28, 64, 128, 224)"})
    data_dir: str | None = field(
        default=None, metadata={"help": "data root (default: $HFSSL_DATA_DIR, else ~/.cache/hfssl/data)"}
    )
    unlabelled_splits: list[str] = field(
        default_factory=lambda: ["train"],
        metadata={"help": "splits used as unlabelled pretraining data (never test)"},
    )
    monitor_split: str = field(
        default="validation",
        metadata={"help": "labelled split scored by the online kNN monitor (never test)"},
    )
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes"})

    def __post_init__(self) -> None:
        if isinstance(self.unlabelled_splits, str):
            self.unlabelled_splits = [s for s in self.unlabelled_splits.replace(",", " ").split() if s]
        if not self.unlabelled_splits:
            raise ConfigError("no unlabelled split given", "use --unlabelled-splits train")
        for split in [*self.unlabelled_splits, self.monitor_split]:
            if split.lower() == "test":
                raise ConfigError(
                    "the test split is never used for pretraining or monitoring",
                    "use --unlabelled-splits train [validation] and --monitor-split validation",
                )
        if self.dataloader_num_workers < 0:
            raise ConfigError("dataloader_num_workers must be >= 0", "use 0 (in-process) or a positive count")


@dataclass
class PretrainingArguments:
    """How to train: schedule, optimiser, checkpoints, monitoring, precision, distribution."""

    output_dir: str = field(metadata={"help": "folder for checkpoints, logs and the exported backbone"})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "reuse a non-empty output dir (its previous hfssl outputs are removed)",
            "aliases": ["--overwrite"],
        },
    )
    resume_from: str | None = field(
        default=None, metadata={"help": "'latest' (this output dir) or a checkpoint-<step> folder"}
    )
    num_train_epochs: int = field(default=100, metadata={"help": "epochs over the unlabelled data"})
    max_steps: int = field(default=-1, metadata={"help": "optimiser steps; > 0 overrides --num-train-epochs"})
    per_device_train_batch_size: int = field(
        default=64, metadata={"help": "images per process per micro-batch"}
    )
    per_device_eval_batch_size: int = field(default=256, metadata={"help": "batch size of the kNN embedding"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimiser step"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate (after warm-up)"})
    optim: Literal["adamw", "sgd", "lars"] = field(
        default="adamw",
        metadata={"help": "optimiser (lars: large-batch contrastive)", "aliases": ["--optimizer"]},
    )
    weight_decay: float = field(
        default=0.0, metadata={"help": "weight decay (never on biases and norm layers)"}
    )
    no_weight_decay_patterns: list[str] = field(
        default_factory=list,
        metadata={"help": "extra parameter-name patterns without weight decay ('*.pos_embed')"},
    )
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    sgd_momentum: float = field(default=0.9, metadata={"help": "momentum of sgd and lars"})
    lars_trust_coefficient: float = 0.001
    lr_scheduler_type: str = field(
        default="cosine",
        metadata={"help": "transformers scheduler: cosine, linear, constant_with_warmup, ..."},
    )
    lr_scheduler_kwargs: dict | str | None = field(
        default=None, metadata={"help": "JSON extra scheduler arguments"}
    )
    warmup_steps: int = field(default=0, metadata={"help": "linear warm-up steps (overrides --warmup-ratio)"})
    warmup_ratio: float = field(default=0.0, metadata={"help": "warm-up as a fraction of all steps"})
    max_grad_norm: float = field(default=0.0, metadata={"help": "clip gradients to this norm (0: off)"})
    seed: int = field(default=42, metadata={"help": "seed of weights, data order, views and dropout"})
    logging_steps: int = field(default=10, metadata={"help": "log loss and pretext metrics every N steps"})
    eval_strategy: Literal["no", "steps", "epoch"] = field(
        default="epoch", metadata={"help": "when to run the online kNN monitor"}
    )
    eval_steps: int = field(default=500, metadata={"help": "kNN monitor interval for --eval-strategy steps"})
    save_strategy: Literal["no", "steps", "epoch"] = field(
        default="steps", metadata={"help": "when to checkpoint"}
    )
    save_steps: int = field(default=500, metadata={"help": "checkpoint interval for --save-strategy steps"})
    save_total_limit: int | None = field(default=2, metadata={"help": "keep only the last K checkpoints"})
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = field(
        default="auto", metadata={"help": "auto: bf16 (fp16 without bf16 support) on GPU, off on CPU"}
    )
    channels_last: bool | None = field(
        default=None, metadata={"help": "channels-last memory format (default: on for CNNs on GPU)"}
    )
    sync_batchnorm: bool = field(
        default=False, metadata={"help": "SyncBatchNorm across processes (multi-GPU)"}
    )
    use_cpu: bool = field(default=False, metadata={"help": "train on the CPU even if a GPU is present"})
    ddp_find_unused_parameters: bool = False
    report_to: str = field(
        default="tensorboard",
        metadata={"help": "trackers: tensorboard, wandb, mlflow, ... (comma-separated), all, or none"},
    )
    knn_k: int = field(default=20, metadata={"help": "neighbours of the kNN monitor"})
    knn_temperature: float = field(default=0.07, metadata={"help": "temperature of the kNN vote weights"})
    knn_max_train_samples: int | None = field(default=None, metadata={"help": "cap on the kNN memory bank"})
    knn_center: bool = field(
        default=True,
        metadata={
            "help": "centre kNN embeddings on the memory bank's mean before the cosine (CL2N); false: plain"
        },
    )
    export_backbone: Literal["online", "target"] = field(
        default="online", metadata={"help": "backbone to export (target: BYOL/MoCo/PCRL momentum encoder)"}
    )
    disable_tqdm: bool = False

    def __post_init__(self) -> None:
        self.lr_scheduler_kwargs = _json_mapping(self.lr_scheduler_kwargs, "lr_scheduler_kwargs")
        checks = [
            (
                self.per_device_train_batch_size >= 1,
                "per_device_train_batch_size must be >= 1",
                "use e.g. 64",
            ),
            (self.per_device_eval_batch_size >= 1, "per_device_eval_batch_size must be >= 1", "use e.g. 256"),
            (
                self.gradient_accumulation_steps >= 1,
                "gradient_accumulation_steps must be >= 1",
                "use 1 or more",
            ),
            (
                self.max_steps > 0 or self.num_train_epochs >= 1,
                "train at least one epoch or step",
                "set --max-steps",
            ),
            (self.logging_steps >= 1, "logging_steps must be >= 1", "use e.g. 10"),
            (
                self.eval_steps >= 1 and self.save_steps >= 1,
                "eval_steps and save_steps must be >= 1",
                "use e.g. 500",
            ),
            (self.max_grad_norm >= 0, "max_grad_norm must be >= 0", "use 0 (off) or e.g. 1.0"),
            (self.knn_k >= 1, "knn_k must be >= 1", "use e.g. 20"),
            (self.knn_temperature > 0, "knn_temperature must be > 0", "use e.g. 0.07"),
        ]
        for ok, problem, hint in checks:
            if not ok:
                raise ConfigError(problem, hint)
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise ConfigError("save_total_limit must be >= 1 (or unset to keep all)", "use e.g. 2")


ARGUMENT_CLASSES = (ModelArguments, DataArguments, PretrainingArguments)


def build_parser(prog: str = "hfssl pretrain"):
    from hfssl.cli.args import make_parser

    return make_parser(
        prog,
        "Pretrain a backbone with a self-supervised pretext task on unlabelled medical images (Accelerate: one "
        "process, multi-GPU, multi-node). Writes checkpoints, metrics.jsonl, TensorBoard logs, and at the end "
        "OUTPUT_DIR/backbone (HfsslModel) and OUTPUT_DIR/pretext_model.",
        ARGUMENT_CLASSES,
        EXAMPLES,
    )


def parse_args(
    argv: Sequence[str], prog: str = "hfssl pretrain"
) -> tuple[ModelArguments, DataArguments, PretrainingArguments]:
    """Parse command-line (and ``--config FILE``) arguments into the three dataclasses."""
    from hfssl.cli.args import parse

    parsed = parse(build_parser(prog), argv)
    return parsed[0], parsed[1], parsed[2]


# ======================================================================================= helpers
class EpochSampler(torch.utils.data.Sampler[int]):
    """A fresh permutation each epoch, drawn from ``(seed, epoch)`` alone, truncated to ``length``.

    Stateless across epochs (unlike ``RandomSampler`` with a running generator), so the position
    in a run is fully described by the epoch and the batches consumed in it.
    """

    def __init__(self, num_samples: int, length: int, seed: int) -> None:
        self.num_samples = num_samples
        self.length = length
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % (2**63))
        return iter(torch.randperm(self.num_samples, generator=gen)[: self.length].tolist())


class TrainerCallback:
    """Hooks into :class:`Pretrainer` (override what you need; all run on every process)."""

    def on_train_begin(self, trainer: Pretrainer) -> None: ...

    def on_step_end(self, trainer: Pretrainer) -> None: ...

    def on_log(self, trainer: Pretrainer, logs: dict[str, Any]) -> None: ...

    def on_evaluate(self, trainer: Pretrainer, metrics: dict[str, Any]) -> None: ...

    def on_save(self, trainer: Pretrainer, checkpoint: Path) -> None: ...

    def on_train_end(self, trainer: Pretrainer) -> None: ...


@dataclass
class PretrainResult:
    """What a finished run wrote and measured."""

    output_dir: Path
    global_step: int
    backbone_dir: Path
    pretext_model_dir: Path
    last_logs: dict[str, Any]
    evaluations: list[dict[str, Any]]


def native_bf16_cpu() -> bool:
    """True when this CPU runs bf16 matrix multiplies natively (AVX512-BF16 or AMX) through oneDNN."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _xpu_or_mps_available() -> bool:
    xpu = getattr(torch, "xpu", None)
    mps = getattr(torch.backends, "mps", None)
    return bool((xpu is not None and xpu.is_available()) or (mps is not None and mps.is_available()))


def resolve_mixed_precision(value: str, device_type: str) -> str:
    """``auto`` -> fp16/bf16 when the launcher asked for it (``accelerate launch --mixed_precision``
    or its config file), else bf16 (fp16 where bf16 is unsupported) on CUDA and ``no`` on CPU.

    The launcher's ``no`` is not followed: ``accelerate launch`` sets it whenever nothing was
    chosen, so it cannot be told from an explicit choice; pass ``--mixed-precision no`` for fp32.
    """
    if value != "auto":
        return value
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "").lower()
    if launcher in ("fp16", "bf16"):
        return launcher
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def resolve_channels_last(
    value: bool | None, device_type: str, backbone_is_cnn: bool, spatial_dims: int = 2
) -> bool:
    """``None`` -> on for CNNs on GPU, for 3D CNNs on CPU, and on CPUs with native bf16; off elsewhere.

    Measured on this project's AVX2 CPU box (no native bf16): channels-last fp32 was never faster
    for a 2D ResNet-18 step at 64 px - 1.9x slower at batch 32 (forward + backward), equal at batch 8
    (``benchmarks/pretrain_throughput.py`` prints the comparison) - so 2D keeps NCHW there. 3D convs
    are the other way round: a 3D U-Net encoder step at 28^3 (batch 64, one thread) took 1.0 s in
    channels-last-3d vs 2.0 s in NCDHW.
    """
    if value is not None:
        return bool(value)
    if not backbone_is_cnn:
        return False
    if device_type == "cuda" or (device_type == "cpu" and spatial_dims == 3):
        return True
    return device_type == "cpu" and native_bf16_cpu()


def resolve_trackers(report_to: str) -> list[str] | str | None:
    """``--report-to`` as Accelerate's ``log_with``: None, "all", or tracker names that are installed.

    Unknown names are an error; known trackers whose package is missing are dropped with a warning
    (Accelerate would drop them silently).
    """
    from accelerate.tracking import get_available_trackers
    from accelerate.utils import LoggerType

    names = [r.strip().lower() for r in report_to.split(",") if r.strip()]
    if names in ([], ["none"]):
        return None
    if names == ["all"]:
        return "all"
    known = {str(t) for t in LoggerType} - {"all"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown tracker(s) in --report-to: {', '.join(unknown)}",
            f"use none, all, or any of {', '.join(sorted(known))} (comma-separated)",
        )
    available = {str(t) for t in get_available_trackers()}
    missing = [n for n in names if n not in available]
    if missing:
        logger.warning(
            "tracker(s) %s not installed: not logging there (pip install %s)",
            ", ".join(missing),
            " ".join(missing),
        )
    kept = [n for n in names if n in available]
    return kept or None


def _to_memory_format(pixels: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return to_channels_last(pixels) if channels_last else pixels


def _flat_config(obj: dict[str, Any]) -> dict[str, Any]:
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


def _check_output_dir(path: Path, allow_existing: bool) -> None:
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


def _is_contrastive(model: torch.nn.Module) -> bool:
    from hfssl.pretext.base import PretextModel

    return any(isinstance(m, PretextModel) and m.family == "contrastive" for m in model.modules())


# ======================================================================================= trainer
class Pretrainer:
    """One pretraining run. ``Pretrainer(model_args, data_args, args).train()`` does everything.

    Attributes available to callbacks: ``accelerator``, ``model`` (prepared), ``state``
    (:class:`TrainerState`), ``args``.
    """

    def __init__(
        self,
        model_args: ModelArguments,
        data_args: DataArguments,
        args: PretrainingArguments,
        callbacks: Sequence[TrainerCallback] = (),
    ) -> None:
        self.model_args = model_args
        self.data_args = data_args
        self.args = args
        self.callbacks = list(callbacks)
        self.output_dir = Path(args.output_dir).expanduser()
        self.checkpoints = CheckpointManager(self.output_dir, args.save_total_limit)
        self.state = TrainerState()
        self.accelerator: Accelerator | None = None
        self.model: torch.nn.Module | None = None
        self.evaluations: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------ setup
    def _make_accelerator(self) -> Accelerator:
        from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
        from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration

        args = self.args
        cuda = torch.cuda.is_available() and not args.use_cpu
        # On a machine with no accelerator, say so: Accelerate sets up gloo for several CPU processes
        # (torchrun / accelerate launch --multi_gpu) only with cpu=True, else it silently runs each
        # process alone.
        other_device = _xpu_or_mps_available()
        cpu = args.use_cpu or not (cuda or other_device)
        precision = resolve_mixed_precision(args.mixed_precision, "cuda" if cuda else "cpu")
        log_with = resolve_trackers(args.report_to)
        return Accelerator(
            cpu=cpu,
            mixed_precision=precision,
            gradient_accumulation_plugin=GradientAccumulationPlugin(
                num_steps=args.gradient_accumulation_steps, sync_with_dataloader=False
            ),
            # the scheduler is stepped by hand once per optimiser step (Accelerate would step it
            # once per process), so the schedule does not depend on the number of processes
            step_scheduler_with_optimizer=False,
            dataloader_config=DataLoaderConfiguration(even_batches=True),
            log_with=log_with,
            project_config=ProjectConfiguration(
                project_dir=str(self.output_dir), logging_dir=str(self.output_dir / RUNS_DIR)
            ),
            kwargs_handlers=[
                DistributedDataParallelKwargs(find_unused_parameters=args.ddp_find_unused_parameters)
            ],
        )

    def _load_data(self) -> tuple[DatasetDict, Any]:
        from hfssl.data import describe, load_source

        d = self.data_args
        assert self.accelerator is not None
        with self.accelerator.main_process_first():  # the first load may write caches
            dsd = load_source(d.dataset, image_size=d.image_size, data_dir=d.data_dir)
        desc = describe(dsd)
        if not isinstance(desc.image_size, int):
            raise DataError(
                f"{d.dataset} has non-square images {desc.image_size}; pretraining needs square images/cubes",
                "use a dataset with square images, or pass --image-size to resize an image folder / Hub dataset",
            )
        return dsd, desc

    def _unlabelled(self, dsd: DatasetDict) -> Dataset:
        from datasets import concatenate_datasets

        missing = [s for s in self.data_args.unlabelled_splits if s not in dsd]
        if missing:
            raise DataError(
                f"{self.data_args.dataset} has no split(s) {', '.join(missing)} (splits: {', '.join(dsd)})",
                "choose --unlabelled-splits among the dataset's splits",
            )
        parts = [dsd[s].select_columns(["image"]) for s in self.data_args.unlabelled_splits]
        return parts[0] if len(parts) == 1 else concatenate_datasets(parts)

    def _build_model(self, desc: Any, total_steps: int) -> PretextModel:
        from hfssl.models import HfsslConfig
        from hfssl.pretext.factory import create_pretext_model
        from hfssl.pretext.multi import method_config_fields
        from hfssl.pretext.registry import get_pretext_class, parse_method_spec

        m = self.model_args
        backbone_config = HfsslConfig(
            backbone=m.backbone,
            spatial_dims=desc.spatial_dims,
            in_chans=desc.in_chans,
            image_size=int(desc.image_size),
            backbone_kwargs=m.backbone_kwargs or None,
            small_input_stem=m.small_input_stem,
        )
        spec = parse_method_spec(m.method)
        overrides = dict(m.method_kwargs or {})
        # momentum schedules (BYOL's cosine) span the whole run unless set explicitly
        for name in spec.methods:
            if "momentum_total_steps" in method_config_fields(get_pretext_class(name).config_class):
                key = f"{name}.momentum_total_steps" if spec.is_multi else "momentum_total_steps"
                if key not in overrides and "momentum_total_steps" not in overrides:
                    overrides[key] = total_steps
        return create_pretext_model(m.method, backbone_config, **overrides)

    def _check_batch(self, model: torch.nn.Module) -> None:
        b = self.args.per_device_train_batch_size
        if _is_contrastive(model) and b < 2:
            raise ConfigError(
                f"per_device_train_batch_size {b} is below the contrastive minimum of 2 images per process "
                "(contrastive losses need other images as negatives; BatchNorm needs 2 samples)",
                "use --per-device-train-batch-size 2 or more (contrastive methods work best with 64-256+)",
            )
        if b < 2:
            raise ConfigError(
                f"per_device_train_batch_size {b} is too small: BatchNorm in training needs 2+ images per process",
                "use --per-device-train-batch-size 2 or more",
            )

    def _prepare_output_dir(self) -> None:
        """Main process: create the output dir; with --overwrite-output-dir remove old hfssl outputs."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.args.overwrite_output_dir and not self.args.resume_from:
            for name in _OWN_OUTPUTS:
                target = self.output_dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()

    def _training_args_record(self, extra: dict[str, Any]) -> dict[str, Any]:
        import accelerate
        import transformers

        from hfssl import __version__

        record: dict[str, Any] = {}
        for obj in (self.model_args, self.data_args, self.args):
            record.update(dataclasses.asdict(obj))
        record.update(extra)
        record["versions"] = {
            "hfssl": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "accelerate": accelerate.__version__,
        }
        return record

    # ------------------------------------------------------------------------------ train
    def train(self) -> PretrainResult:
        """Run (or resume) the pretraining and export the backbone; returns what was written."""
        args = self.args
        _check_output_dir(self.output_dir, bool(args.overwrite_output_dir or args.resume_from))
        accelerator = self.accelerator = self._make_accelerator()
        self._started = time.monotonic()
        try:
            return self._train(accelerator)
        finally:
            accelerator.end_training()

    def _train(self, accelerator: Accelerator) -> PretrainResult:
        from accelerate.utils import set_seed

        from hfssl.data.torch_data import MedicalImageDataset, make_dataloader
        from hfssl.training.optim import (
            create_optimizer,
            create_scheduler,
            parameter_groups,
            resolve_warmup_steps,
        )

        args, margs, dargs = self.args, self.model_args, self.data_args
        world = accelerator.num_processes
        set_seed(args.seed)

        # ---- everything that can fail on user input, before anything is written
        dsd, desc = self._load_data()
        unlabelled = self._unlabelled(dsd)
        batch, accum = args.per_device_train_batch_size, args.gradient_accumulation_steps
        global_batch = batch * world * accum
        steps_per_epoch = len(unlabelled) // global_batch
        if steps_per_epoch == 0:
            raise ConfigError(
                f"{len(unlabelled)} unlabelled images cannot fill one optimiser step of {global_batch} images "
                f"({batch} per process x {world} process(es) x {accum} accumulation steps)",
                "lower --per-device-train-batch-size or --gradient-accumulation-steps",
            )
        total_steps = args.max_steps if args.max_steps > 0 else args.num_train_epochs * steps_per_epoch
        num_epochs = math.ceil(total_steps / steps_per_epoch)
        model = self._build_model(desc, total_steps)
        self._check_batch(model)
        backbone_is_cnn = not margs.backbone.startswith(("vit", "deit", "eva", "beit"))
        channels_last = resolve_channels_last(
            args.channels_last, accelerator.device.type, backbone_is_cnn, desc.spatial_dims
        )
        if args.sync_batchnorm and world > 1:
            if accelerator.device.type != "cuda":
                raise ConfigError(
                    "--sync-batchnorm needs GPUs: DistributedDataParallel refuses SyncBatchNorm on CPU modules",
                    "drop --sync-batchnorm for CPU runs (or use a norm without batch statistics)",
                )
            from timm.layers import convert_sync_batchnorm

            model = convert_sync_batchnorm(model)
        if channels_last:
            model = model.to(
                memory_format=torch.channels_last if desc.spatial_dims == 2 else torch.channels_last_3d
            )
        warmup = resolve_warmup_steps(args.warmup_steps, args.warmup_ratio, total_steps)
        groups = parameter_groups(model, args.weight_decay, args.no_weight_decay_patterns)
        optimizer = create_optimizer(
            args.optim,
            groups,
            lr=args.learning_rate,
            weight_decay=args.weight_decay,
            momentum=args.sgd_momentum,
            betas=(args.adam_beta1, args.adam_beta2),
            eps=args.adam_epsilon,
            lars_trust_coefficient=args.lars_trust_coefficient,
        )
        scheduler = create_scheduler(
            args.lr_scheduler_type, optimizer, warmup, total_steps, args.lr_scheduler_kwargs
        )
        resume_path: Path | None = None
        resumed: TrainerState | None = None
        if args.resume_from:
            resume_path = self.checkpoints.resolve(args.resume_from)
            resumed = validate_checkpoint(resume_path, world)
            self._check_resume_compatible(resumed, steps_per_epoch, int(desc.image_size))
        monitor = self._make_monitor(dsd, desc, accelerator)
        if monitor is not None:
            monitor.channels_last = channels_last

        # ---- outputs
        if accelerator.is_main_process:
            self._prepare_output_dir()
            write_json_atomic(
                self.output_dir / ARGS_FILE,
                self._training_args_record(
                    {
                        "num_processes": world,
                        "total_batch_size": global_batch,
                        "steps_per_epoch": steps_per_epoch,
                        "total_steps": total_steps,
                        "warmup_steps": warmup,
                        "mixed_precision": accelerator.mixed_precision,
                        "channels_last_resolved": channels_last,
                        "unlabelled_images": len(unlabelled),
                        "hardware": hardware_description(accelerator.device, world),
                    }
                ),
            )
        accelerator.wait_for_everyone()
        if accelerator.log_with:
            tracker_config = _flat_config(self._training_args_record({"total_steps": total_steps}))
            tracker_config.pop("versions", None)
            accelerator.init_trackers("pretrain", config=tracker_config)

        # ---- model and data on the devices
        sampler = EpochSampler(len(unlabelled), steps_per_epoch * accum * batch * world, args.seed)
        loader = make_dataloader(
            MedicalImageDataset(unlabelled, label_column=None),
            batch_size=batch,
            sampler=sampler,
            drop_last=True,
            num_workers=dargs.dataloader_num_workers,
            seed=args.seed,
            pin_memory=accelerator.device.type == "cuda",
        )
        model, optimizer, scheduler, loader = accelerator.prepare(model, optimizer, scheduler, loader)
        self.model = model
        unwrapped: PretextModel = accelerator.unwrap_model(model)
        generator = torch.Generator(device=accelerator.device)
        generator.manual_seed((args.seed * 7_919 + 104_729 * (accelerator.process_index + 1)) % (2**63))

        state = self.state = TrainerState(
            max_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
            num_processes=world,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accum,
            seed=args.seed,
            method=margs.method,
            backbone=margs.backbone,
            dataset=dargs.dataset,
            image_size=int(desc.image_size),
            hfssl_version=_version(),
        )
        if resume_path is not None and resumed is not None:
            self._load_checkpoint(resume_path, resumed, generator)
            state = self.state
        else:
            self._reset_metrics_file(None)

        micro_per_epoch = steps_per_epoch * accum
        if accelerator.is_main_process:
            logger.info(
                "***** Running pretraining *****\n"
                f"  method = {margs.method}, backbone = {margs.backbone}, dataset = {dargs.dataset} "
                f"({desc.spatial_dims}D, {desc.image_size} px)\n"
                f"  unlabelled images = {len(unlabelled)} (splits: {', '.join(dargs.unlabelled_splits)})\n"
                f"  epochs = {num_epochs}, optimiser steps = {total_steps} ({steps_per_epoch} per epoch)\n"
                f"  batch per device = {batch}, processes = {world}, accumulation = {accum}, "
                f"total batch = {global_batch}\n"
                f"  optimizer = {args.optim}, lr = {args.learning_rate}, schedule = {args.lr_scheduler_type} "
                f"(warm-up {warmup}), mixed precision = {accelerator.mixed_precision}, channels_last = {channels_last}"
                + (f"\n  resumed from {resume_path} at step {state.global_step}" if resume_path else "")
            )
        for cb in self.callbacks:
            cb.on_train_begin(self)

        from tqdm.auto import tqdm

        progress = tqdm(
            total=total_steps,
            initial=state.global_step,
            desc="pretraining",
            disable=not accelerator.is_local_main_process or args.disable_tqdm or progress_disabled(),
        )
        if monitor is not None and state.global_step == 0 and args.eval_strategy != "no":
            self._evaluate(monitor, unwrapped)  # the random-init reference

        running: dict[str, torch.Tensor] = {}
        running_count = 0
        last_logs: dict[str, Any] = {}
        images_per_step = global_batch
        tic, tic_step = time.perf_counter(), state.global_step
        model.train()
        while state.global_step < total_steps:
            epoch = state.epoch
            sampler.set_epoch(epoch)
            epoch_loader = loader
            if state.batches_in_epoch:
                epoch_loader = accelerator.skip_first_batches(loader, state.batches_in_epoch)
            epoch_loader.set_epoch(epoch)
            for batch_data in epoch_loader:
                pixels = _to_memory_format(batch_data["pixel_values"], channels_last)
                self._micro_step(model, optimizer, pixels, generator, running)
                running_count += 1
                state.batches_in_epoch += 1
                if not accelerator.sync_gradients:
                    continue
                # ---- one optimiser step done
                scheduler.step()
                after = getattr(unwrapped, "after_optimizer_step", None)
                if callable(after):
                    after()
                state.global_step += 1
                if state.batches_in_epoch >= micro_per_epoch:
                    state.epoch, state.batches_in_epoch = epoch + 1, 0
                progress.update(1)
                step = state.global_step
                done = step >= total_steps
                epoch_end = state.batches_in_epoch == 0
                if step % args.logging_steps == 0 or done:
                    elapsed = time.perf_counter() - tic
                    last_logs = self._log(running, running_count, scheduler, step, steps_per_epoch)
                    last_logs["images_per_second"] = round(
                        images_per_step * (step - tic_step) / max(elapsed, 1e-9), 2
                    )
                    self._emit(last_logs)
                    progress.set_postfix(loss=f"{last_logs['loss']:.4f}")
                    running, running_count = {}, 0
                    tic, tic_step = time.perf_counter(), step
                if monitor is not None and (
                    (args.eval_strategy == "steps" and step % args.eval_steps == 0)
                    or (args.eval_strategy == "epoch" and epoch_end)
                    or (args.eval_strategy != "no" and done)
                ):
                    started = time.perf_counter()
                    self._evaluate(monitor, unwrapped)
                    tic += time.perf_counter() - started  # images/s counts training time only
                if args.save_strategy != "no" and (
                    (args.save_strategy == "steps" and step % args.save_steps == 0)
                    or (args.save_strategy == "epoch" and epoch_end)
                    or done
                ):
                    started = time.perf_counter()
                    self._save_checkpoint(generator)
                    tic += time.perf_counter() - started
                for cb in self.callbacks:
                    cb.on_step_end(self)
                if done:  # mid-epoch stop (--max-steps); an epoch's loader otherwise runs out by itself
                    break
        progress.close()
        result = self._export(unwrapped, desc, num_epochs, last_logs)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return result

    def _micro_step(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        pixels: torch.Tensor,
        generator: torch.Generator,
        running: dict[str, torch.Tensor],
    ) -> float:
        """Forward, loss check, backward and (on the last micro-batch) the optimiser step."""
        accelerator = self.accelerator
        assert accelerator is not None
        args = self.args
        try:
            with accelerator.accumulate(model):
                out = model(pixel_values=pixels, generator=generator)
                loss = out.loss
                # one reduced value per micro-batch: every process takes the same decision
                loss_value = float(accelerator.reduce(loss.detach().float(), reduction="mean"))
                if not math.isfinite(loss_value):
                    last = self.checkpoints.latest()
                    raise TrainingError(
                        f"the loss became {loss_value} at step {self.state.global_step + 1}; training stopped "
                        f"(last good checkpoint: {last if last else 'none yet'})",
                        "lower --learning-rate, add --warmup-ratio 0.05 or --max-grad-norm 1.0, or use "
                        "--mixed-precision no; then resume with --resume-from latest",
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        except torch.OutOfMemoryError as err:
            raise TrainingError(
                f"out of memory at step {self.state.global_step + 1} with {args.per_device_train_batch_size} "
                "images per device",
                f"lower --per-device-train-batch-size (e.g. {max(args.per_device_train_batch_size // 2, 2)}) and raise "
                f"--gradient-accumulation-steps (e.g. {args.gradient_accumulation_steps * 2}) to keep the total batch, "
                "or use --mixed-precision bf16",
            ) from err
        running["loss"] = running.get("loss", torch.zeros((), dtype=torch.float64)) + loss_value
        for key, value in (out.metrics or {}).items():
            value = value.detach().float().mean().cpu().double()
            running[f"pretext/{key}"] = (
                running.get(f"pretext/{key}", torch.zeros((), dtype=torch.float64)) + value
            )
        return loss_value

    def _log(
        self,
        running: dict[str, torch.Tensor],
        count: int,
        scheduler: Any,
        step: int,
        steps_per_epoch: int,
    ) -> dict[str, Any]:
        accelerator = self.accelerator
        assert accelerator is not None
        keys = sorted(running)
        values = torch.stack([running[k] for k in keys]).to(accelerator.device, torch.float32) / max(count, 1)
        values = accelerator.reduce(values, reduction="mean").cpu().tolist()
        logs: dict[str, Any] = {"step": step, "epoch": round(step / steps_per_epoch, 4)}
        logs.update({k: round(float(v), 6) for k, v in zip(keys, values)})
        logs["learning_rate"] = float(scheduler.get_last_lr()[0])
        return logs

    def _emit(self, record: dict[str, Any], kind: str = "log") -> None:
        """Send a record to the trackers, metrics.jsonl and the callbacks (files on the main process)."""
        accelerator = self.accelerator
        assert accelerator is not None
        step = int(record["step"])
        scalars = {k: v for k, v in record.items() if k not in ("step",) and isinstance(v, (int, float))}
        prefix = "eval/" if kind == "eval" else "train/"
        accelerator.log({f"{prefix}{k}": v for k, v in scalars.items()}, step=step)
        if accelerator.is_main_process:
            with open(self.output_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, sort_keys=True) + "\n")
            if kind == "eval":
                logger.info(
                    "step %d: %s", step, ", ".join(f"{k} {v:.4f}" for k, v in scalars.items() if k != "epoch")
                )
        for cb in self.callbacks:
            (cb.on_evaluate if kind == "eval" else cb.on_log)(self, record)

    # ------------------------------------------------------------------------------ monitoring
    def _make_monitor(self, dsd: DatasetDict, desc: Any, accelerator: Accelerator):
        from datasets import ClassLabel

        from hfssl.training.monitor import KnnMonitor

        if self.args.eval_strategy == "no":
            return None
        split = self.data_args.monitor_split
        label = dsd["train"].features.get("label") if "train" in dsd else None
        if split not in dsd or not isinstance(label, ClassLabel):
            if accelerator.is_main_process:
                logger.warning(
                    "kNN monitoring is off: %s needs a labelled 'train' split (single-label ClassLabel) and a "
                    "'%s' split",
                    self.data_args.dataset,
                    split,
                )
            return None
        return KnnMonitor(
            accelerator,
            dsd["train"].select_columns(["image", "label"]),
            dsd[split].select_columns(["image", "label"]),
            num_classes=label.num_classes,
            batch_size=self.args.per_device_eval_batch_size,
            k=self.args.knn_k,
            temperature=self.args.knn_temperature,
            max_train_samples=self.args.knn_max_train_samples,
            center=self.args.knn_center,
        )

    def _evaluate(self, monitor: Any, unwrapped: PretextModel) -> dict[str, Any]:
        metrics = monitor.evaluate(unwrapped.backbone)
        record: dict[str, Any] = {
            "step": self.state.global_step,
            "epoch": round(self.state.global_step / max(self.state.steps_per_epoch, 1), 4),
        }
        record.update({k: round(v, 6) for k, v in metrics.items()})
        self.evaluations.append(record)
        self._emit(record, kind="eval")
        return record

    # ------------------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, generator: torch.Generator) -> Path:
        accelerator = self.accelerator
        assert accelerator is not None
        step = self.state.global_step
        if accelerator.is_main_process:
            self.checkpoints.prepare_temp(step)
        accelerator.wait_for_everyone()
        tmp = self.checkpoints.temp_path(step)
        accelerator.save_state(str(tmp), safe_serialization=True)
        save_generator_state(generator, tmp / rng_file(accelerator.process_index))
        accelerator.wait_for_everyone()
        final = self.checkpoints.final_path(step)
        if accelerator.is_main_process:
            final = self.checkpoints.commit(tmp, self.state)
        accelerator.wait_for_everyone()
        for cb in self.callbacks:
            cb.on_save(self, final)
        return final

    def _check_resume_compatible(self, saved: TrainerState, steps_per_epoch: int, image_size: int) -> None:
        args = self.args
        mismatches = []
        for name, now in (
            ("per_device_train_batch_size", args.per_device_train_batch_size),
            ("gradient_accumulation_steps", args.gradient_accumulation_steps),
            ("steps_per_epoch", steps_per_epoch),
            ("method", self.model_args.method),
            ("backbone", self.model_args.backbone),
            ("dataset", self.data_args.dataset),
            ("image_size", image_size),
        ):
            if getattr(saved, name) != now:
                mismatches.append(f"{name} {getattr(saved, name)!r} -> {now!r}")
        if mismatches:
            raise CheckpointError(
                f"cannot resume exactly: the checkpoint was written with other settings ({'; '.join(mismatches)})",
                "resume with the settings of the interrupted run (see its training_args.json)",
            )
        if saved.seed != args.seed:
            logger.warning("resuming a run trained with seed %d under seed %d", saved.seed, args.seed)

    def _load_checkpoint(self, path: Path, saved: TrainerState, generator: torch.Generator) -> None:
        accelerator = self.accelerator
        assert accelerator is not None
        try:
            accelerator.load_state(str(path))
        except Exception as err:  # shape mismatch, truncated optimizer file, ...
            raise CheckpointError(
                f"checkpoint {path} does not fit this model/optimizer: {' '.join(str(err).split())[:300]}",
                "resume with the method/backbone/optimizer settings of the interrupted run",
            ) from err
        state = load_generator_state(path / rng_file(accelerator.process_index))
        generator.set_state(state.to(generator.get_state().device))
        keep = {f: getattr(self.state, f) for f in ("max_steps",)}
        self.state = saved
        for key, value in keep.items():
            setattr(self.state, key, value)
        if accelerator.is_main_process:
            self.checkpoints.drop_newer_than(saved.global_step)
            self._reset_metrics_file(saved.global_step)
        accelerator.wait_for_everyone()

    def _reset_metrics_file(self, keep_up_to: int | None) -> None:
        """Fresh run: start metrics.jsonl empty. Resume: drop the records after the checkpoint."""
        accelerator = self.accelerator
        assert accelerator is not None
        if not accelerator.is_main_process:
            return
        path = self.output_dir / METRICS_FILE
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

    # ------------------------------------------------------------------------------ export
    def _export(
        self, unwrapped: PretextModel, desc: Any, num_epochs: int, last_logs: dict[str, Any]
    ) -> PretrainResult:
        accelerator = self.accelerator
        assert accelerator is not None
        accelerator.wait_for_everyone()
        backbone_dir = self.output_dir / BACKBONE_DIR
        pretext_dir = self.output_dir / PRETEXT_DIR
        if accelerator.is_main_process:
            provenance = {
                "pretrain_dataset": self.data_args.dataset,
                "pretrain_image_size": int(desc.image_size),
                "pretrain_epochs": int(num_epochs),
                "pretrain_seed": int(self.args.seed),
                "hfssl_version": _version(),
            }
            backbone = unwrapped.export_backbone(which=self.args.export_backbone, provenance=provenance)
            backbone = backbone.to(device="cpu", memory_format=torch.contiguous_format)
            with atomic_dir(backbone_dir) as tmp:
                backbone.save_pretrained(tmp, safe_serialization=True)
            with atomic_dir(pretext_dir) as tmp:
                unwrapped.save_pretrained(
                    tmp, safe_serialization=True, state_dict=_contiguous_state_dict(unwrapped)
                )
            logger.info("saved the backbone to %s and the pretext model to %s", backbone_dir, pretext_dir)
            # wall time of this (possibly resumed) session, for the model card
            args_file = self.output_dir / ARGS_FILE
            if args_file.is_file():
                record = json.loads(args_file.read_text())
                record["train_runtime"] = round(
                    time.monotonic() - getattr(self, "_started", time.monotonic()), 1
                )
                write_json_atomic(args_file, record)
        accelerator.wait_for_everyone()
        return PretrainResult(
            output_dir=self.output_dir,
            global_step=self.state.global_step,
            backbone_dir=backbone_dir,
            pretext_model_dir=pretext_dir,
            last_logs=last_logs,
            evaluations=list(self.evaluations),
        )


def hardware_description(device: torch.device, num_processes: int) -> str:
    """``"2 x NVIDIA H200"`` or ``"CPU: <model> (N cores)"`` - what a model card reports."""
    if device.type == "cuda":
        return f"{num_processes} x {torch.cuda.get_device_name(device)}"
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"CPU: {model or device.type} ({os.cpu_count()} cores), {num_processes} process(es)"


def _contiguous_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def _version() -> str:
    from hfssl import __version__

    return __version__


# ========================================================================================= entry
def pretrain(
    model_args: ModelArguments,
    data_args: DataArguments,
    args: PretrainingArguments,
    callbacks: Sequence[TrainerCallback] = (),
) -> PretrainResult:
    """Run one pretraining (see :class:`Pretrainer`)."""
    return Pretrainer(model_args, data_args, args, callbacks).train()


def run(argv: Sequence[str], callbacks: Sequence[TrainerCallback] = (), prog: str = "hfssl pretrain") -> int:
    """Parse ``argv`` and pretrain; user errors propagate as :class:`HfsslError`."""
    model_args, data_args, args = parse_args(argv, prog)
    result = pretrain(model_args, data_args, args, callbacks)
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"pretraining done: {result.global_step} steps; backbone saved to {result.backbone_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hfssl.pretrain`` / ``accelerate launch -m hfssl.pretrain``."""
    import sys

    try:
        return run(list(sys.argv[1:] if argv is None else argv), prog="hfssl.pretrain")
    except HfsslError as err:
        print(f"hfssl.pretrain: error: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("hfssl.pretrain: interrupted", file=sys.stderr)
        return 130
