"""bf16 autocast in evaluation changes no metric beyond its fp32 test-bootstrap CI (BreastMNIST, 28 px).

This is the check behind ``CPU_BF16_DEFAULT["extract"]`` and ``["finetune"]`` in
:mod:`hfssl.training.runtime`: on CPUs with native bf16 the evaluation suite extracts features
and finetunes under bf16 autocast by default only because the linear-probe and kNN metrics on bf16
features (and a short finetune in bf16) stay inside the 95 % test-bootstrap CIs of the fp32 ones.
If this test fails after a change, flip the switch for that purpose back to False.

The backbone is hfssl's small-stem ResNet-18 at random init (seeded): the test compares the two
precisions on the same weights, so no checkpoint download is needed. bf16 autocast runs on any
CPU (emulated where not native), so the check runs everywhere; run with ``-s`` to see the numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

METRICS = ("auc", "accuracy", "balanced_accuracy")
POLICY = {"sampler": "none", "loss": "ce", "augment": "none", "mixup": 0.0}


@pytest.fixture(scope="module")
def breast(data_dir):
    from hfssl.data import load_source

    return load_source("breastmnist", image_size=28, data_dir=data_dir)


def _extractor(tmp_path_factory):
    from hfssl.hub import load_feature_extractor
    from hfssl.models import HfsslConfig, HfsslModel

    folder = tmp_path_factory.getbasetemp() / "resnet18_small_stem"
    if not folder.is_dir():
        torch.manual_seed(0)
        HfsslModel(HfsslConfig(backbone="resnet18", image_size=28)).save_pretrained(folder)
    return load_feature_extractor(str(folder))


def _plan(precision: str, purpose: str):
    from hfssl.training import resolve_runtime

    return resolve_runtime("cpu", "resnet18", 2, mixed_precision=precision, purpose=purpose)


def _scores(y_true, y_score) -> dict[str, float]:
    from eval_suite.metrics import compute_classification_metrics

    values = compute_classification_metrics(y_true, y_score, task="binary", metrics=list(METRICS))
    return {m: float(values[m]) for m in METRICS}


def _check_within_ci(name: str, fp32: tuple, bf16: tuple) -> None:
    """Every bf16 metric inside the fp32 metric's 95 % test-bootstrap CI (1000 resamples)."""
    from eval_suite.stats import bootstrap_ci

    y_true, s32 = fp32
    _, s16 = bf16
    m32, m16 = _scores(y_true, s32), _scores(y_true, s16)
    ci = bootstrap_ci(y_true, s32, task="binary", metrics=METRICS, n_resamples=1000, seed=0)
    for m in METRICS:
        lo, hi = ci[m]
        print(f"{name:>8} {m:>17}: fp32 {m32[m]:.4f} [{lo:.4f}, {hi:.4f}]  bf16 {m16[m]:.4f}")
    outside = {m: (m16[m], ci[m]) for m in METRICS if not ci[m][0] <= m16[m] <= ci[m][1]}
    assert not outside, f"{name}: bf16 metrics outside the fp32 CI: {outside}"


@pytest.fixture(scope="module")
def features(breast, tmp_path_factory):
    """``{precision: {split: (features, labels)}}`` for fp32 and bf16 extraction."""
    from eval_suite.features import extract_features

    extractor = _extractor(tmp_path_factory)
    out = {}
    for precision in ("no", "bf16"):
        plan = _plan(precision, "extract")
        out[precision] = {
            split: extract_features(extractor, breast[split], batch_size=128, plan=plan)
            for split in ("train", "validation", "test")
        }
    return out


def test_bf16_features_are_close_to_fp32(features):
    f32, f16 = features["no"]["test"][0], features["bf16"]["test"][0]
    assert f32.dtype == f16.dtype == np.float32
    assert not np.array_equal(f32, f16)  # bf16 really ran
    cos = (f32 * f16).sum(1) / (np.linalg.norm(f32, axis=1) * np.linalg.norm(f16, axis=1))
    print(f"feature cosine fp32 vs bf16: min {cos.min():.5f}, mean {cos.mean():.5f}")
    assert cos.min() > 0.99


def test_linear_probe_on_bf16_features_stays_within_the_fp32_ci(features):
    from eval_suite.protocols.linear import run_linear

    runs = {}
    for precision, f in features.items():
        scores, _ = run_linear(
            f["train"], f["validation"], f["test"][0], task="binary", num_classes=2, seed=0
        )
        runs[precision] = (f["test"][1], scores)
    _check_within_ci("linear", runs["no"], runs["bf16"])


def test_knn_on_bf16_features_stays_within_the_fp32_ci(features):
    from eval_suite.protocols.knn import run_knn

    runs = {}
    for precision, f in features.items():
        runs[precision] = (f["test"][1], run_knn(f["train"], f["test"][0], num_classes=2, k=20))
    _check_within_ci("knn", runs["no"], runs["bf16"])


@pytest.mark.slow  # two finetunes; bf16 steps are slower than fp32 on CPUs without AMX (minutes)
def test_finetune_in_bf16_stays_within_the_fp32_ci(breast, tmp_path_factory):
    from eval_suite.protocols.finetune import PRESETS, Recipe, run_finetune
    from hfssl.data import read_labels

    train = breast["train"]
    counts = np.bincount(read_labels(train), minlength=2).tolist()
    runs = {}
    for precision in ("no", "bf16"):
        y_true, y_score, info = run_finetune(
            _extractor(tmp_path_factory),
            train,
            breast["validation"],
            breast["test"],
            mode="finetune",
            task="binary",
            num_classes=2,
            train_class_counts=counts,
            recipe=Recipe.from_preset("quick", PRESETS, epochs=3),
            policy=POLICY,
            seed=0,
            mixed_precision=precision,
        )
        assert info["runtime"]["mixed_precision"] == precision
        runs[precision] = (y_true, y_score)
    _check_within_ci("finetune", runs["no"], runs["bf16"])


def test_a_bf16_cpu_extracts_a_vit_in_fp32_by_default(breast, tmp_path_factory, monkeypatch):
    """Note [5] of :mod:`hfssl.training.runtime`: on a CPU where bf16 is the fast path, the default
    extraction plan gives a ViT's exact fp32 features (bf16 ones moved a random-init ViT-Tiny's
    linear probe, ``benchmarks/feature_precision.py``) and still runs a ResNet in bf16."""
    from eval_suite.features import extract_features
    from hfssl.hub import load_feature_extractor
    from hfssl.models import HfsslConfig, HfsslModel
    from hfssl.training import runtime

    fast_bf16 = runtime.DeviceCaps("cpu", True, True, "faked")
    monkeypatch.setattr(runtime, "probe_device", lambda device: fast_bf16)
    test = breast["test"]
    folder = tmp_path_factory.getbasetemp() / "vit_tiny_p4"
    if not folder.is_dir():
        torch.manual_seed(0)
        config = HfsslConfig(
            backbone="vit_tiny_patch16_224", backbone_kwargs={"patch_size": 4}, image_size=28
        )
        HfsslModel(config).save_pretrained(folder)
    vit = load_feature_extractor(str(folder))
    default, _ = extract_features(vit, test, batch_size=128)
    fp32, _ = extract_features(vit, test, batch_size=128, plan=_plan("no", "extract"))
    np.testing.assert_array_equal(default, fp32)
    resnet = _extractor(tmp_path_factory)
    default, _ = extract_features(resnet, test, batch_size=128)
    fp32, _ = extract_features(resnet, test, batch_size=128, plan=_plan("no", "extract"))
    assert not np.array_equal(default, fp32)  # CNNs keep the bf16 default
