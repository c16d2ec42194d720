"""The runtime resolver's decision for every hardware case, with the capability probe faked."""

from __future__ import annotations

import pytest
import torch

from hfssl.training import runtime
from hfssl.training.runtime import DeviceCaps, RuntimePlan, model_kind, resolve_runtime

CUDA_BF16 = DeviceCaps("cuda", True)
CUDA_FP16 = DeviceCaps("cuda", False)
CPU_BF16 = DeviceCaps("cpu", True, True, "amx on GenuineIntel")
CPU_BF16_SLOW = DeviceCaps("cpu", True, False, "avx512_bf16 on GenuineIntel")  # supported, not faster
CPU = DeviceCaps("cpu", False, False)
MPS = DeviceCaps("mps", False, False)

MODELS = {"cnn2d": ("resnet18", 2), "cnn3d": ("resnet18_3d", 3), "vit": ("vit_tiny_patch16_224", 2)}


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)


@pytest.fixture()
def bf16_switch(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """The CPU bf16 switch, all on (as shipped once the convergence check passed); tests flip it."""
    switch = {"train": True, "finetune": True, "extract": True}
    monkeypatch.setattr(runtime, "CPU_BF16_DEFAULT", switch)
    return switch


# (caps, kind) -> (precision, memory format) with every flag on auto
TABLE = [
    (CUDA_BF16, "cnn2d", "bf16", "channels_last"),
    (CUDA_BF16, "cnn3d", "bf16", "channels_last_3d"),
    (CUDA_BF16, "vit", "bf16", "contiguous"),
    (CUDA_FP16, "cnn2d", "fp16", "channels_last"),
    (CUDA_FP16, "cnn3d", "fp16", "channels_last_3d"),
    (CUDA_FP16, "vit", "fp16", "contiguous"),
    (CPU_BF16, "cnn2d", "bf16", runtime.MEMORY_FORMAT[("cpu", "cnn2d", "amp")]),
    (CPU_BF16, "cnn3d", "bf16", "channels_last_3d"),
    (CPU_BF16, "vit", "bf16", "contiguous"),
    # CPUs where bf16 is native but not faster than fp32: as without it
    (CPU_BF16_SLOW, "cnn2d", "no", "contiguous"),
    (CPU_BF16_SLOW, "cnn3d", "no", "channels_last_3d"),
    (CPU_BF16_SLOW, "vit", "no", "contiguous"),
    # CPUs without native bf16: unchanged (fp32; NCHW in 2D, channels-last-3d in 3D)
    (CPU, "cnn2d", "no", "contiguous"),
    (CPU, "cnn3d", "no", "channels_last_3d"),
    (CPU, "vit", "no", "contiguous"),
    (MPS, "cnn2d", "no", "contiguous"),
    (MPS, "cnn3d", "no", "contiguous"),
    (MPS, "vit", "no", "contiguous"),
]


@pytest.mark.parametrize("caps, kind, precision, layout", TABLE)
@pytest.mark.parametrize("purpose", ["train", "finetune", "extract"])
def test_decision_table(bf16_switch, caps, kind, precision, layout, purpose) -> None:
    backbone, dims = MODELS[kind]
    if caps is CPU_BF16 and purpose == "extract" and kind in runtime.CPU_FP32_EXTRACT_KINDS:
        precision = "no"  # note [5]: tested below
    plan = resolve_runtime(caps.device_type, backbone, dims, purpose=purpose, caps=caps)
    assert (plan.device_type, plan.mixed_precision, plan.memory_format) == (
        caps.device_type,
        precision,
        layout,
    )
    assert plan.reason  # logged and recorded: says why
    assert plan.channels_last is (layout != "contiguous")


@pytest.mark.parametrize("purpose", ["train", "finetune", "extract"])
def test_the_cpu_bf16_switch_flips_one_purpose_back_to_fp32_nchw(bf16_switch, purpose) -> None:
    bf16_switch[purpose] = False
    plan = resolve_runtime("cpu", "resnet18", 2, purpose=purpose, caps=CPU_BF16)
    assert (plan.mixed_precision, plan.memory_format) == ("no", "contiguous")  # never channels-last fp32
    assert "off" in plan.reason
    others = [p for p in bf16_switch if p != purpose]
    assert all(
        resolve_runtime("cpu", "resnet18", purpose=p, caps=CPU_BF16).mixed_precision == "bf16" for p in others
    )


def test_a_bf16_cpu_extracts_vit_features_in_fp32_and_cnn_features_in_bf16(bf16_switch) -> None:
    """Note [5]: bf16 features moved a random-init ViT-Tiny's linear probe on a bf16 CPU; ViTs
    still train and finetune in bf16 there, CNNs extract in bf16, CUDA keeps bf16, and a flag wins."""
    vit, dims = MODELS["vit"]
    plan = resolve_runtime("cpu", vit, dims, purpose="extract", caps=CPU_BF16)
    assert (plan.mixed_precision, plan.memory_format) == ("no", "contiguous")
    assert "moved its linear probe" in plan.reason
    for purpose in ("train", "finetune"):
        assert resolve_runtime("cpu", vit, dims, purpose=purpose, caps=CPU_BF16).mixed_precision == "bf16"
    for kind in ("cnn2d", "cnn3d"):
        backbone, kdims = MODELS[kind]
        assert (
            resolve_runtime("cpu", backbone, kdims, purpose="extract", caps=CPU_BF16).mixed_precision
            == "bf16"
        )
    assert resolve_runtime("cuda", vit, dims, purpose="extract", caps=CUDA_BF16).mixed_precision == "bf16"
    assert (
        resolve_runtime(
            "cpu", vit, dims, mixed_precision="bf16", purpose="extract", caps=CPU_BF16
        ).mixed_precision
        == "bf16"
    )


@pytest.mark.parametrize("caps", [CUDA_BF16, CUDA_FP16, CPU_BF16, CPU_BF16_SLOW, CPU, MPS])
@pytest.mark.parametrize("kind", ["cnn2d", "cnn3d", "vit"])
def test_flags_always_override(bf16_switch, caps, kind) -> None:
    backbone, dims = MODELS[kind]
    for precision in ("no", "bf16", "fp16"):
        for channels_last in (True, False):
            plan = resolve_runtime(
                caps.device_type,
                backbone,
                dims,
                mixed_precision=precision,
                channels_last=channels_last,
                caps=caps,
            )
            assert plan.mixed_precision == precision
            expected = (
                ("channels_last_3d" if dims == 3 else "channels_last") if channels_last else "contiguous"
            )
            assert plan.memory_format == expected
            assert "as asked" in plan.reason


def test_an_explicit_fp32_on_a_bf16_cpu_keeps_nchw(bf16_switch) -> None:
    """The issue's slow default: fp32 with channels-last on a native-bf16 CPU is never picked."""
    plan = resolve_runtime("cpu", "resnet18", 2, mixed_precision="no", caps=CPU_BF16)
    assert (plan.mixed_precision, plan.memory_format) == ("no", "contiguous")


def test_the_launcher_precision_is_followed_for_pretraining_only(monkeypatch, bf16_switch) -> None:
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    assert resolve_runtime("cuda", "resnet18", caps=CUDA_BF16).mixed_precision == "fp16"
    assert resolve_runtime("cuda", "resnet18", purpose="extract", caps=CUDA_BF16).mixed_precision == "bf16"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")  # accelerate's unset value: not followed
    assert resolve_runtime("cpu", "resnet18", caps=CPU_BF16).mixed_precision == "bf16"


@pytest.mark.parametrize(
    "unit, vendor, precision",
    [
        ("amx", "GenuineIntel", "bf16"),  # AMX tiles: bf16 is the fast path
        ("avx512_bf16", "AuthenticAMD", "bf16"),  # Zen 4/5: a bf16 SimCLR step ran 2x fp32
        ("avx512_bf16", "GenuineIntel", "no"),  # no AMX: bf16 GEMMs run at about half the fp32 rate
        ("avx512_bf16", "", "no"),  # unknown vendor: keep fp32
        (None, "GenuineIntel", "no"),  # no native bf16
    ],
)
def test_the_probe_is_what_the_resolver_asks(monkeypatch, bf16_switch, unit, vendor, precision) -> None:
    monkeypatch.setattr(runtime, "cpu_bf16_unit", lambda: unit)
    monkeypatch.setattr(runtime, "cpu_vendor", lambda: vendor)
    # this row is about the unit and the vendor: the convolution-gradient probes answer "right"
    monkeypatch.setattr(runtime, "cpu_bf16_conv2d_grad_error", lambda: 0.0)
    monkeypatch.setattr(runtime, "cpu_bf16_conv3d_grad_error", lambda: 0.0)
    caps = runtime.probe_device("cpu")
    assert caps.bf16 is (unit is not None) and caps.bf16_faster is (precision == "bf16")
    plan = resolve_runtime("cpu", "resnet18")
    assert plan.mixed_precision == precision
    assert plan.memory_format == (
        "contiguous" if precision == "no" else runtime.MEMORY_FORMAT[("cpu", "cnn2d", "amp")]
    )
    assert runtime.probe_device("mps") == MPS


def test_the_old_helpers_agree_with_the_resolver(monkeypatch, bf16_switch) -> None:
    monkeypatch.setattr(runtime, "probe_device", lambda device: CPU)
    assert runtime.resolve_mixed_precision("auto", "cpu") == "no"
    assert runtime.resolve_channels_last(None, "cpu", True, 2) is False
    monkeypatch.setattr(runtime, "probe_device", lambda device: CPU_BF16)
    assert runtime.resolve_mixed_precision("auto", "cpu") == "bf16"
    assert runtime.resolve_mixed_precision("no", "cpu") == "no"
    cl_bf16 = runtime.MEMORY_FORMAT[("cpu", "cnn2d", "amp")] != "contiguous"
    assert runtime.resolve_channels_last(None, "cpu", True, 2) is cl_bf16
    assert runtime.resolve_channels_last(None, "cpu", True, 2, mixed_precision="no") is False


def test_model_kind_of_names_and_modules() -> None:
    from torch import nn

    assert model_kind("resnet18") == "cnn2d" and model_kind("unet3d_encoder", 3) == "cnn3d"
    assert (
        model_kind("vit_small_patch16_224") == "vit" and model_kind("swin_tiny_patch4_window7_224") == "vit"
    )
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    vit_like = nn.Sequential(nn.Conv2d(1, 8, 4, stride=4), nn.Flatten(2), nn.Linear(49, 8))
    assert model_kind(cnn) == "cnn2d" and model_kind(vit_like) == "vit"


def test_the_plan_applies_itself() -> None:
    plan = RuntimePlan("cpu", "bf16", "channels_last", "test")
    x = plan.apply(torch.rand(2, 3, 8, 8))
    assert x.is_contiguous(memory_format=torch.channels_last)
    conv = plan.apply(torch.nn.Conv2d(3, 4, 3))
    with plan.autocast():
        assert conv(x).dtype == torch.bfloat16
    fp32 = RuntimePlan("cpu", "no", "contiguous", "test")
    with fp32.autocast():
        assert conv(x).dtype == torch.float32
    assert fp32.apply(x) is x
    assert plan.describe() == "bf16 autocast, channels_last" and fp32.describe() == "fp32, contiguous"
    assert plan.as_record() == {
        "device_type": "cpu",
        "mixed_precision": "bf16",
        "memory_format": "channels_last",
        "reason": "test",
    }


def test_an_unknown_purpose_is_refused() -> None:
    with pytest.raises(ValueError, match="purpose"):
        resolve_runtime("cpu", "resnet18", purpose="serve", caps=CPU)  # type: ignore[arg-type]


def test_an_unknown_precision_is_a_config_error() -> None:
    from hfssl.errors import ConfigError

    with pytest.raises(ConfigError, match="fp8"):
        resolve_runtime("cpu", "resnet18", mixed_precision="fp8", caps=CPU)


CPU_BF16_BAD_CONV3D = DeviceCaps("cpu", True, True, "avx512_bf16 on AuthenticAMD", bf16_conv3d_grad_ok=False)
CPU_BF16_BAD_CONV2D = DeviceCaps("cpu", True, True, "avx512_bf16 on AuthenticAMD", bf16_conv2d_grad_ok=False)


@pytest.mark.parametrize(
    "caps, kind, spatial_dims, purpose, precision",
    [
        (CPU_BF16_BAD_CONV3D, "unet3d_encoder", 3, "train", "no"),  # weight gradients needed: fp32
        (CPU_BF16_BAD_CONV3D, "unet3d_encoder", 3, "finetune", "no"),
        (CPU_BF16_BAD_CONV3D, "unet3d_encoder", 3, "extract", "bf16"),  # forward, input grads right
        (CPU_BF16_BAD_CONV3D, "resnet18", 2, "train", "bf16"),  # 2D convolutions probed on their own
        (CPU_BF16_BAD_CONV3D, "vit_tiny_patch16_224", 2, "train", "bf16"),
        (CPU_BF16_BAD_CONV2D, "resnet18", 2, "train", "no"),
        (CPU_BF16_BAD_CONV2D, "test_resnet", 2, "finetune", "no"),
        (CPU_BF16_BAD_CONV2D, "resnet18", 2, "extract", "bf16"),  # no weight gradient
        (CPU_BF16_BAD_CONV2D, "unet3d_encoder", 3, "train", "bf16"),
        (CPU_BF16_BAD_CONV2D, "vit_tiny_patch16_224", 2, "train", "bf16"),
    ],
)
def test_wrong_bf16_conv_gradients_keep_cnn_training_of_those_dims_in_fp32(
    bf16_switch, caps, kind, spatial_dims, purpose, precision
) -> None:
    plan = resolve_runtime("cpu", kind, spatial_dims, purpose=purpose, caps=caps)
    assert plan.mixed_precision == precision, plan.reason
    if precision == "no":
        assert f"conv{spatial_dims}d weight gradients are wrong" in plan.reason
        assert plan.memory_format == ("channels_last_3d" if spatial_dims == 3 else "contiguous")
    # flags still win
    forced = resolve_runtime("cpu", kind, spatial_dims, purpose=purpose, caps=caps, mixed_precision="bf16")
    assert forced.mixed_precision == "bf16"


def test_the_conv2d_probe_agrees_with_repeated_calls() -> None:
    """On whatever CPU runs this: where the probe says bf16 conv2d weight gradients are right, 20
    more calls of each probed shape (3x3, stride 2, 1x1 map) are right; where it says wrong, the bug
    shows again in those calls (seen on an AMD EPYC, PyTorch 2.14.1: most calls but the first)."""
    runtime.cpu_bf16_conv2d_grad_error.cache_clear()
    probe_ok = runtime.cpu_bf16_conv2d_grad_error() <= runtime.BF16_GRAD_TOLERANCE
    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    # the wrong results come in bursts (a suite run once had 60 right calls after the probe saw wrong
    # ones), so where the probe says wrong, up to 200 trials look for the bug's return
    for _ in range(20 if probe_ok else 200):
        for batch, cin, cout in ((8, 16, 32), (64, 48, 96), (256, 48, 96)):
            weight = torch.randn(cout, cin, 3, 3, generator=gen)
            x = torch.randn(batch, cin, 1, 1, generator=gen)
            err = runtime._weight_grad_error(torch.nn.functional.conv2d, weight, x, gen, stride=2, padding=1)
            worst = max(worst, err)
        if not probe_ok and worst > runtime.BF16_GRAD_TOLERANCE:
            break
    assert (worst <= runtime.BF16_GRAD_TOLERANCE) == probe_ok, worst


def test_the_conv3d_probe_predicts_a_real_bf16_training_step() -> None:
    """On whatever CPU runs this: where the probe says bf16 conv3d weight gradients are right, a
    deep-stage-sized step (16 x 64 -> 128 channels on a 2x2x2 map) has right ones; where it says
    wrong, that step's are wrong too (seen: off by 1e36 on an AMD EPYC, PyTorch 2.14.1)."""
    runtime.cpu_bf16_conv3d_grad_error.cache_clear()
    probe_ok = runtime.cpu_bf16_conv3d_grad_error() <= runtime.BF16_GRAD_TOLERANCE
    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    for _ in range(3):
        weight = torch.randn(128, 64, 3, 3, 3, generator=gen)
        x = torch.randn(16, 64, 2, 2, 2, generator=gen)
        grad_out = torch.randn(16, 128, 2, 2, 2, generator=gen)
        w32, w16 = weight.clone().requires_grad_(True), weight.clone().requires_grad_(True)
        torch.nn.functional.conv3d(x, w32, padding=1).backward(grad_out)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = torch.nn.functional.conv3d(x, w16, padding=1)
        y.backward(grad_out.to(y.dtype))
        err = float((w16.grad - w32.grad).abs().max() / w32.grad.abs().max())
        worst = max(worst, err if err == err else float("inf"))
    assert (worst <= runtime.BF16_GRAD_TOLERANCE) == probe_ok, worst


def test_the_cpu_hardware_line_names_the_thread_count():
    """CPU results are bit-reproducible only at the same intra-op thread count, so cards say it."""
    import os

    import torch

    from hfssl.training.runtime import hardware_description

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        line = hardware_description(torch.device("cpu"), 1)
        assert line.startswith("CPU: ") and line.endswith(
            f"({os.cpu_count()} cores, 1 thread), 1 process(es)"
        )
    finally:
        torch.set_num_threads(before)
