"""The three argument classes of a pretraining run, with their validation.

``ModelArguments`` (what to pretrain), ``DataArguments`` (which images) and
``PretrainingArguments`` (how to train). They are plain dataclasses: the CLI parses them from
argv / ``--config`` (:mod:`hfssl.cli.pretrain`), library users build them directly and pass them
to :func:`hfssl.training.pretrain_backbone`. Invalid values raise :class:`~hfssl.errors.ConfigError`
when the object is created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from hfssl.errors import ConfigError
from hfssl.pretext.registry import list_pretext_tasks

__all__ = ["ARGUMENT_CLASSES", "DataArguments", "ModelArguments", "PretrainingArguments"]


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
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "continue pretraining from a checkpoint: a backbone folder (weights into the backbone, "
            "fresh heads), a pretext_model folder of the same method (everything, heads included), a "
            "pretraining output dir (its pretext_model/ first), a Hub repo ORG/NAME[@REV] holding those, "
            "or zoo:NAME; must match --backbone and the data's dims and channels; ignored with "
            "--resume-from (the resumed checkpoint already holds the initialisation)"
        },
    )

    def __post_init__(self) -> None:
        self.method_kwargs = _json_mapping(self.method_kwargs, "method_kwargs")
        self.backbone_kwargs = _json_mapping(self.backbone_kwargs, "backbone_kwargs")
        if self.init_from is not None:
            self.init_from = str(self.init_from).strip() or None


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
        default=None,
        metadata={
            "help": "'latest' (this output dir) or a checkpoint-<step> folder; wins over --init-from (a "
            "resumed run already contains its initialisation)"
        },
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
        default="auto",
        metadata={
            "help": "auto: bf16 (fp16 without bf16 support) on GPU, bf16 on CPUs where it beats fp32 "
            "(AMX, AMD AVX512-BF16), else off"
        },
    )
    channels_last: bool | None = field(
        default=None,
        metadata={
            "help": "channels-last memory format (default: on for CNNs on GPU and with CPU bf16, "
            "for 3D CNNs on CPU)"
        },
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
    export_backbone: Literal["auto", "online", "target"] = field(
        default="auto",
        metadata={
            "help": "backbone to export: auto (the method's default: online, DINO's teacher), online, or "
            "target (BYOL/MoCo/PCRL momentum encoder, DINO teacher)"
        },
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
