"""What a pretraining run is built from: its data, schedule, pretext model (and its ``--init-from``
checkpoint), optimiser and kNN monitor.

Each function checks the user's input and raises a one-line :class:`~hfssl.errors.HfsslError`
before the run writes anything.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from hfssl.errors import ConfigError, DataError
from hfssl.utils.logging import get_logger

if TYPE_CHECKING:  # pragma: no cover
    from accelerate import Accelerator
    from datasets import Dataset, DatasetDict

    from hfssl.pretext.base import PretextModel
    from hfssl.training.arguments import DataArguments, ModelArguments, PretrainingArguments
    from hfssl.training.init_from import InitSource
    from hfssl.training.monitor import OnlineKnnMonitor

logger = get_logger(__name__)


@dataclass(frozen=True)
class Schedule:
    """How the unlabelled images divide into optimiser steps.

    Each epoch holds a whole number of optimiser steps; the tail that would not fill one is
    dropped (like ``drop_last``), so a run's position is "epoch, micro-batches consumed in it".
    """

    per_device_batch: int
    num_processes: int
    accumulation: int
    steps_per_epoch: int
    total_steps: int

    @property
    def global_batch(self) -> int:
        """Images per optimiser step, over all processes and accumulated micro-batches."""
        return self.per_device_batch * self.num_processes * self.accumulation

    @property
    def num_epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)

    @property
    def micro_batches_per_epoch(self) -> int:
        return self.steps_per_epoch * self.accumulation

    @property
    def samples_per_epoch(self) -> int:
        """Indices the sampler yields per epoch (all processes together)."""
        return self.steps_per_epoch * self.accumulation * self.per_device_batch * self.num_processes


def plan_schedule(num_images: int, args: PretrainingArguments, num_processes: int) -> Schedule:
    batch, accum = args.per_device_train_batch_size, args.gradient_accumulation_steps
    global_batch = batch * num_processes * accum
    steps_per_epoch = num_images // global_batch
    if steps_per_epoch == 0:
        raise ConfigError(
            f"{num_images} unlabelled images cannot fill one optimiser step of {global_batch} images "
            f"({batch} per process x {num_processes} process(es) x {accum} accumulation steps)",
            "lower --per-device-train-batch-size or --gradient-accumulation-steps",
        )
    total_steps = args.max_steps if args.max_steps > 0 else args.num_train_epochs * steps_per_epoch
    return Schedule(batch, num_processes, accum, steps_per_epoch, total_steps)


def load_data(data_args: DataArguments, accelerator: Accelerator) -> tuple[DatasetDict, Any]:
    """The dataset (loaded on the main process first: the first load may write caches) and its description."""
    from hfssl.data import describe, load_source

    d = data_args
    with accelerator.main_process_first():
        dsd = load_source(d.dataset, image_size=d.image_size, data_dir=d.data_dir)
    desc = describe(dsd)
    if not isinstance(desc.image_size, int):
        raise DataError(
            f"{d.dataset} has non-square images {desc.image_size}; pretraining needs square images/cubes",
            "use a dataset with square images, or pass --image-size to resize an image folder / Hub dataset",
        )
    return dsd, desc


def unlabelled_images(dsd: DatasetDict, data_args: DataArguments) -> Dataset:
    """The ``image`` column of the unlabelled splits, concatenated."""
    from datasets import concatenate_datasets

    missing = [s for s in data_args.unlabelled_splits if s not in dsd]
    if missing:
        raise DataError(
            f"{data_args.dataset} has no split(s) {', '.join(missing)} (splits: {', '.join(dsd)})",
            "choose --unlabelled-splits among the dataset's splits",
        )
    parts = [dsd[s].select_columns(["image"]) for s in data_args.unlabelled_splits]
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def build_pretext_model(model_args: ModelArguments, desc: Any, total_steps: int) -> PretextModel:
    """The pretext model for the data's dimensions; momentum schedules span ``total_steps`` unless set."""
    from hfssl.models import HfsslConfig
    from hfssl.pretext.factory import create_pretext_model
    from hfssl.pretext.multi import method_config_fields
    from hfssl.pretext.registry import get_pretext_class, parse_method_spec

    m = model_args
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


def check_init(source: InitSource, model_args: ModelArguments, desc: Any) -> None:
    """``--init-from``: refuse a checkpoint of another method, backbone, dimensionality or channel count
    before the model is built (the shapes are compared when it is loaded, by
    :func:`~hfssl.training.init_from.apply_init`)."""
    from hfssl.training.init_from import check_init_compatible

    check_init_compatible(
        source,
        method=model_args.method,
        backbone=model_args.backbone,
        spatial_dims=int(desc.spatial_dims),
        in_chans=int(desc.in_chans),
    )


def place_model(
    model: torch.nn.Module,
    args: PretrainingArguments,
    accelerator: Accelerator,
    channels_last: bool,
    spatial_dims: int,
) -> torch.nn.Module:
    """SyncBatchNorm (``--sync-batchnorm`` on several GPUs) and the resolved memory format."""
    if args.sync_batchnorm and accelerator.num_processes > 1:
        if accelerator.device.type != "cuda":
            raise ConfigError(
                "--sync-batchnorm needs GPUs: DistributedDataParallel refuses SyncBatchNorm on CPU modules",
                "drop --sync-batchnorm for CPU runs (or use a norm without batch statistics)",
            )
        from timm.layers import convert_sync_batchnorm

        model = convert_sync_batchnorm(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last if spatial_dims == 2 else torch.channels_last_3d)
    return model


def build_optimization(
    model: torch.nn.Module, args: PretrainingArguments, total_steps: int
) -> tuple[torch.optim.Optimizer, Any, int]:
    """(optimiser, learning-rate scheduler, warm-up steps) of the run."""
    from hfssl.training.optim import (
        create_optimizer,
        create_scheduler,
        parameter_groups,
        resolve_warmup_steps,
    )

    warmup = resolve_warmup_steps(args.warmup_steps, args.warmup_ratio, total_steps)
    optimizer = create_optimizer(
        args.optim,
        parameter_groups(model, args.weight_decay, args.no_weight_decay_patterns),
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
    return optimizer, scheduler, warmup


def _is_contrastive(model: torch.nn.Module) -> bool:
    from hfssl.pretext.base import PretextModel

    return any(isinstance(m, PretextModel) and m.family == "contrastive" for m in model.modules())


def check_batch_size(model: torch.nn.Module, per_device_batch: int) -> None:
    """Refuse per-process batches that BatchNorm (and contrastive losses) cannot train on."""
    b = per_device_batch
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


def make_knn_monitor(
    dsd: DatasetDict, data_args: DataArguments, args: PretrainingArguments, accelerator: Accelerator
) -> OnlineKnnMonitor | None:
    """The online kNN monitor, or None when monitoring is off or the data has no labelled splits for it."""
    from datasets import ClassLabel

    from hfssl.training.monitor import OnlineKnnMonitor

    if args.eval_strategy == "no":
        return None
    split = data_args.monitor_split
    label = dsd["train"].features.get("label") if "train" in dsd else None
    if split not in dsd or not isinstance(label, ClassLabel):
        if accelerator.is_main_process:
            logger.warning(
                "kNN monitoring is off: %s needs a labelled 'train' split (single-label ClassLabel) and a "
                "'%s' split",
                data_args.dataset,
                split,
            )
        return None
    return OnlineKnnMonitor(
        accelerator,
        dsd["train"].select_columns(["image", "label"]),
        dsd[split].select_columns(["image", "label"]),
        num_classes=label.num_classes,
        batch_size=args.per_device_eval_batch_size,
        k=args.knn_k,
        temperature=args.knn_temperature,
        max_train_samples=args.knn_max_train_samples,
        center=args.knn_center,
    )


@dataclass
class LogMeter:
    """Running sums between two logs, and the clock of the images/s figure (training time only)."""

    running: dict[str, torch.Tensor] = field(default_factory=dict)
    count: int = 0
    tic: float = 0.0
    tic_step: int = 0
    last_logs: dict[str, Any] = field(default_factory=dict)

    def restart(self, step: int) -> None:
        self.running, self.count = {}, 0
        self.tic, self.tic_step = time.perf_counter(), step

    def exclude(self, started: float) -> None:
        """Leave the time since ``started`` (an evaluation, a checkpoint) out of images/s."""
        self.tic += time.perf_counter() - started


def strategy_due(strategy: str, interval: int, step: int, epoch_end: bool, done: bool) -> bool:
    """Whether a ``steps`` / ``epoch`` strategy fires at this optimiser step (``no`` never does)."""
    if strategy == "no":
        return False
    return (strategy == "steps" and step % interval == 0) or (strategy == "epoch" and epoch_end) or done
