"""The ``evaluate`` modules load offline by path and give the same numbers as the plain functions."""

from __future__ import annotations

import os

import numpy as np
import pytest

from eval_suite.metrics import (
    METRIC_MODULES,
    compute_classification_metrics,
    compute_segmentation_metrics,
    load_metric,
    metric_path,
    reliability_diagram,
)
from hfssl.errors import ConfigError


@pytest.fixture(scope="module")
def offline() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set by tests/conftest.py before any import
    pytest.importorskip("evaluate")


def _probs(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(c), rng.integers(0, c, n - c)])
    p = rng.dirichlet(np.ones(c), n)
    return y, p


def test_every_module_loads_by_path_offline(offline) -> None:
    for name in METRIC_MODULES:
        module = load_metric(name)
        assert module.info.citation and module.info.description
    assert load_metric("calibration") is load_metric("calibration")  # cached
    with pytest.raises(ConfigError, match="unknown metric module"):
        metric_path("bleu")


def test_classification_module_equals_function(offline) -> None:
    y, p = _probs(40, 3, 0)
    module = load_metric("imbalanced_classification")
    got = module.compute(predictions=p, references=y, task="multiclass", train_class_counts=[200, 50, 5])
    want = compute_classification_metrics(y, p, task="multiclass", train_class_counts=[200, 50, 5])
    assert got["per_class"] == want["per_class"]
    assert got["group_accuracy"] == pytest.approx(want["group_accuracy"])
    assert {k: got[k] for k in want if k not in ("per_class", "group_accuracy")} == pytest.approx(
        {k: want[k] for k in want if k not in ("per_class", "group_accuracy")}
    )
    # binary from a single positive-class probability, task inferred
    yb, pb = _probs(30, 2, 1)
    got = module.compute(predictions=pb[:, 1], references=yb)
    assert got["balanced_accuracy"] == pytest.approx(
        compute_classification_metrics(yb, pb, task="binary")["balanced_accuracy"]
    )
    with pytest.raises(ConfigError, match="qwk"):
        module.compute(predictions=pb, references=yb, metrics=["qwk"])


def test_calibration_and_long_tail_modules(offline) -> None:
    y, p = _probs(50, 3, 2)
    got = load_metric("calibration").compute(predictions=p, references=y, n_bins=10)
    want = reliability_diagram(y, p, task="multiclass", n_bins=10)
    assert got["ece"] == pytest.approx(want["ece"])
    assert got["bins"]["count"] == want["bins"]["count"]
    long_tail = load_metric("long_tail")
    counts = [300, 40, 3]
    from_labels = long_tail.compute(predictions=p.argmax(1), references=y, train_class_counts=counts)
    from_scores = long_tail.compute(predictions=p, references=y, train_class_counts=counts)
    want = compute_classification_metrics(y, p, task="multiclass", train_class_counts=counts)[
        "group_accuracy"
    ]
    for got in (from_labels, from_scores):
        assert {k: got[k] for k in want} == pytest.approx(want)
        assert got["groups"] == {"many": [0], "medium": [1], "few": [2]}


def test_segmentation_module(offline) -> None:
    rng = np.random.default_rng(3)
    target = (rng.random((3, 12, 10)) < 0.3).astype(np.uint8)
    pred = np.where(rng.random(target.shape) < 0.8, target, 1 - target).astype(np.uint8)
    fov = (rng.random(target.shape) < 0.8).astype(np.uint8)
    got = load_metric("segmentation").compute(predictions=pred, references=target, fov=list(fov))
    assert got == pytest.approx(compute_segmentation_metrics(pred, target, fov))
