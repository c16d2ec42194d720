"""Where a run's runtime settings are resolved: precision, memory format, trackers, device, hardware.

One resolver, :func:`resolve_runtime`, decides what ``auto`` / unset means for a device, a model
and a purpose, so that the trainer, the evaluation suite (feature extraction, finetuning) and
the benchmarks all run, log and record the same configuration. It returns a :class:`RuntimePlan`.
:func:`make_accelerator` builds the ``Accelerator`` from the resolved precision.

The decision (``auto`` precision, unset memory format); flags always override:

=======================  =====================  ==================  ==================  ============
device                   precision              2D CNN              3D CNN              ViT
=======================  =====================  ==================  ==================  ============
CUDA with bf16           bf16 autocast          channels-last       channels-last-3d    contiguous
CUDA without bf16        fp16 autocast          channels-last       channels-last-3d    contiguous
CPU, bf16 faster [3]     bf16 autocast [1,4,5]  see [2]             channels-last-3d    contiguous
CPU, bf16 not faster     fp32                   contiguous (NCHW)   channels-last-3d    contiguous
MPS, XPU, other          fp32                   contiguous          contiguous          contiguous
=======================  =====================  ==================  ==================  ============

[1] :data:`CPU_BF16_DEFAULT`, per purpose (``train`` = pretraining, ``finetune`` = end-to-end eval
    training, ``extract`` = frozen-feature extraction): the one switch that turns the CPU bf16
    default on or off, set by the convergence check (``benchmarks/bf16_convergence.py``) and the
    feature-metric test (``tests/eval_suite/test_bf16_features.py``).
[2] The memory format follows the *resolved* precision (:data:`MEMORY_FORMAT`): with fp32 on a CPU
    (``--mixed-precision no``, or the switch off) a 2D CNN keeps NCHW, because channels-last fp32
    is slower there; with bf16 it takes the format measured fastest with bf16
    (``benchmarks/bf16_memory_format.py``).
[3] :data:`CPU_BF16_FASTER`: native bf16 is not enough. With AMX, or AVX512-BF16 on AMD (Zen 4/5:
    a bf16 ResNet-18 SimCLR step ran 2x the fp32 one), bf16 is the fast path; on Intel CPUs with
    AVX512-BF16 but no AMX (Cooper Lake; Sapphire Rapids VMs that hide AMX) a bf16 GEMM or 3x3
    convolution runs slower than in fp32 (``benchmarks/pretrain_throughput.py`` prints both GEMM
    roofs; ``benchmarks/results/pretrain_throughput.jsonl`` records them), so fp32 stays the
    default there. Unknown vendors keep fp32.

[4] :func:`cpu_bf16_conv3d_grad_error` and :func:`cpu_bf16_conv2d_grad_error` check bf16
    convolution weight gradients against fp32 once per process; where they are wrong (seen on an
    AMD EPYC with PyTorch 2.14.1: conv3d on 2x2x2 maps, and conv2d with stride 2 on 1x1 maps, which
    small inputs such as DINO's local crops or jigsaw tiles reach), 3D (resp. 2D) CNN pretraining
    and finetuning run fp32 (feature extraction needs no weight gradient and keeps bf16).
[5] :data:`CPU_FP32_EXTRACT_KINDS`: a CPU extracts a ViT's frozen features in fp32 (bf16 ones
    moved a random-init ViT-Tiny's linear probe; ``benchmarks/feature_precision.py``). CUDA
    keeps bf16 there: not measured on a GPU.

``auto`` also follows a launcher's ``fp16``/``bf16`` (``accelerate launch --mixed_precision``)
for pretraining. The capability probe is :func:`probe_device`; tests fake it to check each row.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from hfssl.errors import ConfigError
from hfssl.training.monitor import to_channels_last
from hfssl.utils.logging import get_logger

if TYPE_CHECKING:  # pragma: no cover
    from accelerate import Accelerator

    from hfssl.training.arguments import PretrainingArguments

logger = get_logger(__name__)

__all__ = [
    "CPU_BF16_DEFAULT",
    "CPU_BF16_FASTER",
    "CPU_FP32_EXTRACT_KINDS",
    "MEMORY_FORMAT",
    "DeviceCaps",
    "RuntimePlan",
    "backbone_is_cnn",
    "cpu_bf16_conv2d_grad_error",
    "cpu_bf16_conv3d_grad_error",
    "cpu_bf16_unit",
    "cpu_vendor",
    "hardware_description",
    "make_accelerator",
    "model_kind",
    "native_bf16_cpu",
    "probe_device",
    "resolve_channels_last",
    "resolve_mixed_precision",
    "resolve_pretraining_runtime",
    "resolve_runtime",
    "resolve_trackers",
    "runtime_device_type",
    "to_memory_format",
]

Purpose = Literal["train", "finetune", "extract"]
ModelKind = Literal["cnn2d", "cnn3d", "vit"]

#: THE SWITCH: whether CPUs with native bf16 (AVX512-BF16 / AMX) default to bf16 autocast, per
#: purpose. ``train``: pretraining (on if bf16 pretraining converges like fp32, kNN lift of ROT and
#: SimCLR over 3 seeds, ``benchmarks/bf16_convergence.py``). ``extract``: frozen features for the
#: linear/kNN protocols (on: BreastMNIST linear-probe and kNN metrics with bf16 features stay inside
#: the fp32 test-bootstrap CIs, ``tests/eval_suite/test_bf16_features.py``). ``finetune``: the
#: end-to-end evaluation protocols (same check). Set a value to False to flip that purpose back
#: to fp32 (the memory format then follows the fp32 row).
CPU_BF16_DEFAULT: dict[str, bool] = {"train": True, "finetune": True, "extract": True}

#: Model kinds whose frozen features a CPU extracts in fp32 even where the ``extract`` switch is on.
#: ViTs: on the 2-core AMD EPYC (avx512_bf16), bf16 features of the zoo's random-init ViT-Tiny (the
#: MAE entry's baseline) differ from fp32 ones by 3.2 % of their spread over the images (ResNet-18:
#: 1.6-1.8 %), enough to move the linear probe's chosen C from 10 to 1 and its test AUC from 0.841
#: to 0.765 (balanced accuracy 0.704 -> 0.624); the ResNets' probes agree to 0.007
#: (``benchmarks/feature_precision.py``, ``benchmarks/results/feature_precision.jsonl``). A random
#: ViT's embeddings are nearly the same for every image, so bf16 rounding is large against what a
#: probe separates classes with. At 28 px a ViT-Tiny's fp32 linear-probe evaluation (3 seeds,
#: extraction included) took 5 s on that CPU, so fp32 costs little. A 3D U-Net encoder's bf16 features
#: differ by 0.5 % of their spread and probe alike: CNNs keep bf16.
CPU_FP32_EXTRACT_KINDS: frozenset[str] = frozenset({"vit"})

#: Memory format per (device class, model kind, resolved precision); ``"fp32"`` rows are used for
#: precision ``no``, ``"amp"`` rows for bf16/fp16 autocast. Device classes: ``cuda``, ``cpu``,
#: ``other`` (MPS, XPU, ...: contiguous everywhere). The CPU bf16 2D entry is the format measured
#: fastest for a small-stem ResNet-18 step with bf16 autocast (``benchmarks/bf16_memory_format.py``).
MEMORY_FORMAT: dict[tuple[str, str, str], str] = {
    ("cuda", "cnn2d", "fp32"): "channels_last",
    ("cuda", "cnn2d", "amp"): "channels_last",
    ("cuda", "cnn3d", "fp32"): "channels_last_3d",
    ("cuda", "cnn3d", "amp"): "channels_last_3d",
    # CPU fp32: NCHW is faster than channels-last for 2D CNN steps; 3D convolutions run about 2x
    # faster channels-last-3d
    ("cpu", "cnn2d", "fp32"): "contiguous",
    ("cpu", "cnn2d", "amp"): "channels_last",
    ("cpu", "cnn3d", "fp32"): "channels_last_3d",
    ("cpu", "cnn3d", "amp"): "channels_last_3d",
}


def native_bf16_cpu() -> bool:
    """True when this CPU runs bf16 matrix multiplies natively (AVX512-BF16 or AMX) through oneDNN."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


#: Whether bf16 autocast is *faster* than fp32 on a CPU with native bf16, per (bf16 unit, vendor);
#: ``"*"`` matches any vendor; a pair not listed means no (fp32 stays the default). See note [3].
CPU_BF16_FASTER: dict[tuple[str, str], bool] = {
    ("amx", "*"): True,
    ("avx512_bf16", "AuthenticAMD"): True,
    ("avx512_bf16", "GenuineIntel"): False,
}


@dataclass(frozen=True)
class DeviceCaps:
    """What the resolver needs to know about a device: its type, whether it runs bf16 natively,
    whether bf16 is faster than fp32 there (always so on CUDA; :data:`CPU_BF16_FASTER` on CPU), and
    whether bf16 convolution weight gradients are right there (:func:`cpu_bf16_conv3d_grad_error`,
    :func:`cpu_bf16_conv2d_grad_error`)."""

    device_type: str
    bf16: bool
    bf16_faster: bool = True
    detail: str = ""
    bf16_conv3d_grad_ok: bool = True
    bf16_conv2d_grad_ok: bool = True

    def bf16_conv_grad_ok(self, spatial_dims: int) -> bool:
        """Whether bf16 weight gradients of ``spatial_dims``-D convolutions are right here."""
        return self.bf16_conv3d_grad_ok if spatial_dims == 3 else self.bf16_conv2d_grad_ok


#: Largest relative error of a bf16 weight gradient that still counts as right (bf16 keeps 8 bits of
#: mantissa: a correct kernel stays below 1e-2; the broken one is off by orders of magnitude).
BF16_GRAD_TOLERANCE = 0.05

#: (batch, in channels, out channels) of the probe's convolutions; the broken kernel is picked by
#: shape (seen: 2x8->16 and 4x16->32 wrong, 2x4->8 right), so the probe tries the shapes seen wrong.
_CONV3D_PROBE_SHAPES = ((2, 8, 16), (4, 16, 32))
#: the same for 2D: a 3x3 stride-2 convolution of a 1x1 map (seen wrong: 8x16->32, 64x48->96 and
#: 256x48->96; right: 16x128->256, 32x256->512)
# all three shapes seen wrong; 20 trials because in a long-lived process (the test suite) 6 trials of
# the first two shapes once all came out right while later calls of the third were inf
# (a fresh process: 32-80 of 80 later calls wrong); a trial takes about 2 ms
_CONV2D_PROBE_SHAPES = ((8, 16, 32), (64, 48, 96), (256, 48, 96))
_CONV2D_PROBE_TRIALS = 20


def _weight_grad_error(conv, weight: torch.Tensor, x: torch.Tensor, gen: torch.Generator, **kw) -> float:
    """Relative max error of ``conv``'s bf16-autocast weight gradient against fp32 (inf if not finite)."""
    grad_out = torch.randn(conv(x, weight, **kw).shape, generator=gen)
    w32, w16 = weight.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    conv(x, w32, **kw).backward(grad_out)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x, w16, **kw)
    y.backward(grad_out.to(y.dtype))
    assert w32.grad is not None and w16.grad is not None
    err = float((w16.grad - w32.grad).abs().max() / w32.grad.abs().max().clamp_min(1e-12))
    return err if math.isfinite(err) else math.inf


@functools.lru_cache(maxsize=1)
def cpu_bf16_conv2d_grad_error() -> float:
    """Worst relative error of a CPU bf16-autocast ``conv2d`` weight gradient against fp32.

    Why: on the same AMD EPYC as :func:`cpu_bf16_conv3d_grad_error`, a 3x3 stride-2 convolution of
    a 1x1 feature map returns weight gradients off by up to 1e33 (nan at times) for some channel
    counts. A small-stem ResNet reaches that on 14 px inputs (DINO's local crops at 28 px), and DINO
    pretraining went nan within 3-6 steps in bf16. Which shapes are hit is the kernel library's
    choice, so the probe tries shapes seen wrong, several times each; about a second (most of it
    oneDNN's first bf16 calls), once per process and only where bf16 would be the default.
    """
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    # the wrong results come and go from call to call (the first call is often right, as if the
    # kernel read memory it never wrote), so each shape is tried several times
    for _ in range(_CONV2D_PROBE_TRIALS):
        for batch, cin, cout in _CONV2D_PROBE_SHAPES:
            weight = torch.randn(cout, cin, 3, 3, generator=gen)
            x = torch.randn(batch, cin, 1, 1, generator=gen)
            err = _weight_grad_error(torch.nn.functional.conv2d, weight, x, gen, stride=2, padding=1)
            worst = max(worst, err)
    return worst


@functools.lru_cache(maxsize=1)
def cpu_bf16_conv3d_grad_error() -> float:
    """Worst relative error of a CPU bf16-autocast ``conv3d`` weight gradient against fp32.

    Why: on an AMD EPYC with AVX512-BF16 (PyTorch 2.14.1, oneDNN), a 3x3x3 convolution over a 2x2x2
    feature map returns weight gradients off by up to 1e36 (inf at times) in bf16, while its forward
    pass and input gradient are right, and 2D convolutions are right. A 3D CNN reaches 2x2x2 maps in
    its deep stages (e.g. RPL's 9^3 tiles through a 4-level U-Net encoder), so bf16 pretraining went
    nan within 10-65 steps there. The probe takes a few milliseconds and runs once per process.
    """
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch, cin, cout in _CONV3D_PROBE_SHAPES:
        weight = torch.randn(cout, cin, 3, 3, 3, generator=gen)
        x = torch.randn(batch, cin, 2, 2, 2, generator=gen)
        worst = max(worst, _weight_grad_error(torch.nn.functional.conv3d, weight, x, gen, padding=1))
    return worst


def cpu_vendor() -> str:
    """``GenuineIntel``, ``AuthenticAMD``, ... from ``/proc/cpuinfo`` (``""`` where unknown)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_bf16_unit() -> str | None:
    """``"amx"`` (AMX tiles), ``"avx512_bf16"`` or None: how this CPU runs bf16 matrix multiplies."""
    if not native_bf16_cpu():
        return None
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        if amx is not None and amx():
            return "amx"
    except RuntimeError:  # pragma: no cover - a torch without the probe
        pass
    return "avx512_bf16"


def probe_device(device: str | torch.device) -> DeviceCaps:
    """The capability probe: ``cuda`` -> ``torch.cuda.is_bf16_supported()``; ``cpu`` -> native bf16
    through oneDNN and, if so, whether it beats fp32 (:data:`CPU_BF16_FASTER`); anything else (MPS,
    XPU) -> no bf16 default."""
    device_type = torch.device(device).type
    if device_type == "cuda":
        return DeviceCaps("cuda", bool(torch.cuda.is_bf16_supported()))
    if device_type == "cpu":
        unit = cpu_bf16_unit()
        if unit is None:
            return DeviceCaps("cpu", False, False)
        vendor = cpu_vendor()
        faster = CPU_BF16_FASTER.get((unit, "*"), CPU_BF16_FASTER.get((unit, vendor), False))
        # only where bf16 would be the default does its correctness matter (and cost the probe)
        grad3d_ok = cpu_bf16_conv3d_grad_error() <= BF16_GRAD_TOLERANCE if faster else True
        grad2d_ok = cpu_bf16_conv2d_grad_error() <= BF16_GRAD_TOLERANCE if faster else True
        detail = f"{unit} on {vendor or 'an unknown vendor'}"
        return DeviceCaps("cpu", True, faster, detail, grad3d_ok, grad2d_ok)
    return DeviceCaps(device_type, False, False)


def backbone_is_cnn(backbone: str) -> bool:
    """Whether a backbone name is a convolutional network (not a vision transformer)."""
    return not backbone.startswith(("vit", "deit", "eva", "beit", "swin", "cait", "xcit"))


def model_kind(model: str | torch.nn.Module, spatial_dims: int = 2) -> ModelKind:
    """``cnn2d`` / ``cnn3d`` / ``vit`` of a backbone name or a module.

    A module counts as a CNN when it holds more than one convolution (a ViT has exactly one, its
    patch embedding).
    """
    if isinstance(model, str):
        cnn = backbone_is_cnn(model)
    else:
        convs = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
        cnn = sum(isinstance(m, convs) for m in model.modules()) > 1
    if not cnn:
        return "vit"
    return "cnn3d" if spatial_dims == 3 else "cnn2d"


@dataclass(frozen=True)
class RuntimePlan:
    """A resolved precision + memory format, and why.

    ``mixed_precision``: ``"no"`` (fp32), ``"bf16"`` or ``"fp16"`` autocast (Accelerate's names);
    ``memory_format``: ``"contiguous"``, ``"channels_last"`` or ``"channels_last_3d"``.
    """

    device_type: str
    mixed_precision: str
    memory_format: str
    reason: str

    @property
    def channels_last(self) -> bool:
        return self.memory_format != "contiguous"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.mixed_precision)

    @property
    def torch_memory_format(self) -> torch.memory_format:
        return {
            "channels_last": torch.channels_last,
            "channels_last_3d": torch.channels_last_3d,
        }.get(self.memory_format, torch.contiguous_format)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """``torch.autocast`` for this plan (a no-op context for fp32)."""
        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=dtype)

    def apply(self, t: Any) -> Any:
        """A tensor or module in this plan's memory format (unchanged when contiguous)."""
        if not self.channels_last:
            return t
        if isinstance(t, torch.Tensor):
            return t.contiguous(memory_format=self.torch_memory_format)
        return t.to(memory_format=self.torch_memory_format)

    def describe(self) -> str:
        """``"bf16 autocast, channels_last"`` - for logs, banners and model cards."""
        precision = "fp32" if self.mixed_precision == "no" else f"{self.mixed_precision} autocast"
        return f"{precision}, {self.memory_format}"

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def resolve_runtime(
    device: str | torch.device,
    model: str | torch.nn.Module,
    spatial_dims: int = 2,
    *,
    mixed_precision: str = "auto",
    channels_last: bool | None = None,
    purpose: Purpose = "train",
    caps: DeviceCaps | None = None,
) -> RuntimePlan:
    """The precision and memory format of a run (see the module's table); flags always override.

    Args:
        device: where the model runs (``"cpu"``, ``"cuda:1"``, a ``torch.device``).
        model: the backbone's name or the module (CNN or ViT, see :func:`model_kind`).
        spatial_dims: 2 (images) or 3 (volumes).
        mixed_precision: ``auto`` (the table), or ``no`` / ``bf16`` / ``fp16`` (used as given).
        channels_last: None (the table, given the resolved precision), or True/False (as given;
            True means channels-last-3d for volumes).
        purpose: ``train`` (pretraining), ``finetune`` (end-to-end eval training) or ``extract``
            (frozen-feature extraction): selects the :data:`CPU_BF16_DEFAULT` entry.
        caps: the device's capabilities (default: :func:`probe_device`).
    """
    if purpose not in CPU_BF16_DEFAULT:
        raise ValueError(f"purpose must be one of {sorted(CPU_BF16_DEFAULT)}, not {purpose!r}")
    if mixed_precision not in ("auto", "no", "bf16", "fp16"):
        raise ConfigError(f"unknown mixed precision {mixed_precision!r}", "use auto, no (fp32), bf16 or fp16")
    caps = caps if caps is not None else probe_device(device)
    kind = model_kind(model, spatial_dims)
    why: list[str] = []

    if mixed_precision != "auto":
        precision = mixed_precision
        why.append(f"precision {precision} as asked")
    else:
        launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "").lower() if purpose == "train" else ""
        if launcher in ("fp16", "bf16"):
            precision = launcher
            why.append(f"{precision} from the launcher")
        elif caps.device_type == "cuda":
            precision = "bf16" if caps.bf16 else "fp16"
            why.append(f"CUDA {'with' if caps.bf16 else 'without'} bf16")
        elif caps.device_type == "cpu" and caps.bf16 and caps.bf16_faster and CPU_BF16_DEFAULT[purpose]:
            # the bf16 default, save for two measured exceptions (notes [4] and [5])
            if (
                kind in ("cnn2d", "cnn3d")
                and purpose != "extract"
                and not caps.bf16_conv_grad_ok(spatial_dims)
            ):
                precision = "no"
                conv = "conv3d" if spatial_dims == 3 else "conv2d"
                why.append(
                    f"CPU with fast native bf16{_detail(caps)}, but its bf16 {conv} weight gradients are "
                    f"wrong (cpu_bf16_{conv}_grad_error): fp32"
                )
            elif purpose == "extract" and kind in CPU_FP32_EXTRACT_KINDS:
                precision = "no"
                why.append(
                    f"CPU with fast native bf16{_detail(caps)}, but bf16 features of a {kind} moved its "
                    "linear probe (CPU_FP32_EXTRACT_KINDS): fp32"
                )
            else:
                precision = "bf16"
                why.append(f"CPU with fast native bf16{_detail(caps)}, bf16 default for {purpose}")
        elif caps.device_type == "cpu":
            precision = "no"
            if not caps.bf16:
                why.append("CPU without native bf16: fp32")
            elif not caps.bf16_faster:
                why.append(f"CPU with native bf16{_detail(caps)} but no faster than fp32: fp32")
            else:
                why.append(f"CPU with native bf16{_detail(caps)} but the bf16 default is off for {purpose}")
        else:
            precision = "no"
            why.append(f"{caps.device_type}: fp32")

    if channels_last is not None:
        layout = (
            ("channels_last_3d" if spatial_dims == 3 else "channels_last") if channels_last else "contiguous"
        )
        why.append(f"{layout} as asked")
    elif kind == "vit":
        layout = "contiguous"
        why.append("ViT: no convolution layout to change")
    else:
        device_class = caps.device_type if caps.device_type in ("cuda", "cpu") else "other"
        layout = MEMORY_FORMAT.get((device_class, kind, "fp32" if precision == "no" else "amp"), "contiguous")
        why.append(f"{layout} for a {kind} with {'fp32' if precision == 'no' else precision}")
    return RuntimePlan(caps.device_type, precision, layout, "; ".join(why))


def _detail(caps: DeviceCaps) -> str:
    return f" ({caps.detail})" if caps.detail else ""


def runtime_device_type(args: PretrainingArguments) -> str:
    """The device type the trainer's Accelerator will pick for ``args``: cuda, cpu, or mps/xpu."""
    if args.use_cpu:
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return "xpu"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _xpu_or_mps_available() -> bool:
    xpu = getattr(torch, "xpu", None)
    mps = getattr(torch.backends, "mps", None)
    return bool((xpu is not None and xpu.is_available()) or (mps is not None and mps.is_available()))


def resolve_mixed_precision(value: str, device_type: str, backbone: str = "resnet18") -> str:
    """The precision :func:`resolve_runtime` picks for pretraining ``backbone`` on ``device_type``.

    ``auto`` -> fp16/bf16 when the launcher asked for it (``accelerate launch --mixed_precision``
    or its config file), else bf16 (fp16 where bf16 is unsupported) on CUDA, bf16 on CPUs with
    native bf16 (:data:`CPU_BF16_DEFAULT`) and ``no`` elsewhere. The launcher's ``no`` is not
    followed: ``accelerate launch`` sets it whenever nothing was chosen, so it cannot be told from
    an explicit choice; pass ``--mixed-precision no`` for fp32.
    """
    return resolve_runtime(device_type, backbone, mixed_precision=value).mixed_precision


def resolve_channels_last(
    value: bool | None,
    device_type: str,
    backbone_is_cnn: bool,
    spatial_dims: int = 2,
    mixed_precision: str = "auto",
) -> bool:
    """Whether :func:`resolve_runtime` picks a channels-last format (see the module's table)."""
    return resolve_runtime(
        device_type,
        "resnet18" if backbone_is_cnn else "vit_tiny_patch16_224",
        spatial_dims,
        mixed_precision=mixed_precision,
        channels_last=value,
    ).channels_last


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


def to_memory_format(pixels: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A batch in the run's memory format (channels-last when resolved so, else as it is)."""
    return to_channels_last(pixels) if channels_last else pixels


def hardware_description(device: torch.device, num_processes: int) -> str:
    """``"2 x NVIDIA H200"`` or ``"CPU: <model> (N cores, T threads)"`` - what a model card reports.
    The intra-op thread count is part of it because CPU results are bit-reproducible only at the
    same count (the float sums split differently: 1 and 2 threads give other weights after 4 steps
    of the zoo's MG 3D entry, two runs at 2 threads the same)."""
    if device.type == "cuda":
        return f"{num_processes} x {torch.cuda.get_device_name(device)}"
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), "")
    except OSError:
        pass
    threads = torch.get_num_threads()
    cores = f"{os.cpu_count()} cores, {threads} thread{'s' if threads != 1 else ''}"
    return f"CPU: {model or device.type} ({cores}), {num_processes} process(es)"


def _allow_precision(precision: str) -> None:
    """Let this process's next Accelerator use ``precision``.

    Accelerate keeps one mixed precision per process (``AcceleratorState`` is a singleton) and
    refuses an Accelerator with another; a second run in the same process (a study, a notebook,
    the tests) may resolve another precision than the first, so the precision part of the state is
    reset (the process group, ``PartialState``, is kept).
    """
    from accelerate.state import AcceleratorState

    current = AcceleratorState._shared_state.get("_mixed_precision")
    if current is not None and current != precision:
        AcceleratorState._reset_state(reset_partial_state=False)


def make_accelerator(
    args: PretrainingArguments,
    project_dir: Path,
    logging_dir: Path,
    mixed_precision: str | None = None,
) -> Accelerator:
    """The run's ``Accelerator``: device, mixed precision, trackers, gradient accumulation.

    ``mixed_precision``: the resolved precision (:func:`resolve_runtime`); None resolves
    ``args.mixed_precision`` for a CNN on :func:`runtime_device_type`.
    """
    from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
    from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration

    cuda = torch.cuda.is_available() and not args.use_cpu
    # On a machine with no accelerator, say so: Accelerate sets up gloo for several CPU processes
    # (torchrun / accelerate launch --multi_gpu) only with cpu=True, else it silently runs each
    # process alone.
    other_device = _xpu_or_mps_available()
    cpu = args.use_cpu or not (cuda or other_device)
    precision = mixed_precision or resolve_mixed_precision(args.mixed_precision, runtime_device_type(args))
    _allow_precision(precision)
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


def resolve_pretraining_runtime(
    accelerator: Accelerator,
    model: Any,
    spatial_dims: int,
    mixed_precision: str,
    channels_last: bool | None,
) -> RuntimePlan:
    """Precision + memory format of a pretraining run on ``accelerator``'s device.

    ``model`` is the built backbone (its kind, CNN or ViT, is read from the module rather than
    guessed from its name) or a backbone name. Accelerate fixes one precision per process, so
    when it settled on another one (a launcher's choice) the plan follows it and says so.
    """
    import dataclasses

    plan = resolve_runtime(
        accelerator.device, model, spatial_dims, mixed_precision=mixed_precision, channels_last=channels_last
    )
    if plan.mixed_precision != accelerator.mixed_precision:  # Accelerate had the last word
        plan = resolve_runtime(
            accelerator.device,
            model,
            spatial_dims,
            mixed_precision=accelerator.mixed_precision,
            channels_last=channels_last,
        )
        plan = dataclasses.replace(plan, reason=f"{plan.reason} (Accelerate's precision)")
    return plan
