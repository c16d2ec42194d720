"""Where a run's runtime settings are resolved: precision, memory format, trackers, device, hardware.

One place decides what ``auto`` / unset means for the launcher, the device and the backbone, so
that the trainer, the benchmarks and the model card all agree. :func:`make_accelerator` builds
the ``Accelerator`` from the resolved values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from hfssl.errors import ConfigError
from hfssl.training.monitor import to_channels_last
from hfssl.utils.logging import get_logger

if TYPE_CHECKING:  # pragma: no cover
    from accelerate import Accelerator

    from hfssl.training.arguments import PretrainingArguments

logger = get_logger(__name__)

__all__ = [
    "backbone_is_cnn",
    "hardware_description",
    "make_accelerator",
    "native_bf16_cpu",
    "resolve_channels_last",
    "resolve_mixed_precision",
    "resolve_trackers",
    "to_memory_format",
]


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

    Why: on CPUs without native bf16, channels-last fp32 is not faster for 2D CNN steps (slower at
    larger batches), so 2D keeps NCHW there; 3D convolutions run faster channels-last-3d on CPU
    too (``benchmarks/pretrain_throughput.py`` measures both).
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


def backbone_is_cnn(backbone: str) -> bool:
    """Whether a backbone name is a convolutional network (not a vision transformer)."""
    return not backbone.startswith(("vit", "deit", "eva", "beit"))


def to_memory_format(pixels: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A batch in the run's memory format (channels-last when resolved so, else as it is)."""
    return to_channels_last(pixels) if channels_last else pixels


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


def make_accelerator(args: PretrainingArguments, project_dir: Path, logging_dir: Path) -> Accelerator:
    """The run's ``Accelerator``: device, resolved mixed precision, trackers, gradient accumulation."""
    from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
    from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration

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
        project_config=ProjectConfiguration(project_dir=str(project_dir), logging_dir=str(logging_dir)),
        kwargs_handlers=[
            DistributedDataParallelKwargs(find_unused_parameters=args.ddp_find_unused_parameters)
        ],
    )
