"""Bootstrap CIs, seed summaries, paired comparisons, significance markers and rank ties."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats as scipy_stats

from eval_suite.metrics import compute_classification_metrics
from eval_suite.metrics._core import prepare_classification
from eval_suite.stats import (
    _vectorised_metrics,
    bootstrap_ci,
    bootstrap_ci_per_image,
    metric_bounds,
    paired_bootstrap,
    paired_class_deltas,
    ranks_with_ties,
    resample_weights,
    significance_marker,
    summarise,
)
from hfssl.errors import ConfigError, DataError


def _data(n: int, c: int, seed: int, skill: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Imbalanced labels (class k ~ 1/(k+1)) and probabilities; ``skill`` scales the signal."""
    rng = np.random.default_rng(seed)
    freq = 1.0 / np.arange(1, c + 1)
    y = rng.choice(c, size=n, p=freq / freq.sum())
    y[:c] = np.arange(c)
    p = rng.dirichlet(np.ones(c), n)
    p[np.arange(n), y] += skill * rng.random(n)
    return y, p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("task,c", [("binary", 2), ("multiclass", 4), ("ordinal", 5)])
def test_vectorised_metrics_equal_sklearn_path(task: str, c: int) -> None:
    """The bootstrap's weighted formulas give the sklearn numbers with unit weights, and the
    numbers of an explicitly resampled copy with multiplicity weights."""
    y, p = _data(90, c, 0)
    counts = [400, 90, 30, 10, 5][:c]
    inp = prepare_classification(y, p, task)
    want = compute_classification_metrics(y, p, task=task, train_class_counts=counts)
    names = [k for k in want if k not in ("per_class", "group_accuracy", "confusion_matrix")]
    if "group_accuracy" in want:
        names += [f"group_accuracy.{g}" for g in want["group_accuracy"]]
    rng = np.random.default_rng(1)
    weights = np.vstack([np.ones(len(y)), resample_weights(y, len(y), 3, rng)])
    got = _vectorised_metrics(inp, weights, names, counts)
    for row in range(weights.shape[0]):
        idx = np.repeat(np.arange(len(y)), weights[row].astype(int))
        ref = compute_classification_metrics(y[idx], p[idx], task=task, train_class_counts=counts)
        for name in names:
            value = ref["group_accuracy"][name.split(".")[1]] if "." in name else ref[name]
            assert got[name][row] == pytest.approx(value, abs=1e-12), (row, name)


def test_vectorised_metrics_on_regressed_grades() -> None:
    y = np.array([0, 1, 2, 3, 2, 1, 0, 3])
    grades = y + np.array([0.4, -0.6, 0.2, 0.0, 1.1, 0.3, -0.2, -1.4])
    inp = prepare_classification(y, grades, "ordinal", num_classes=4)
    want = compute_classification_metrics(y, grades, task="ordinal", num_classes=4)
    got = _vectorised_metrics(inp, np.ones((1, len(y))), ["qwk", "accuracy", "mcc"])
    for name in ("qwk", "accuracy", "mcc"):
        assert got[name][0] == pytest.approx(want[name])


def test_stratified_resampling_keeps_class_counts() -> None:
    y, _ = _data(60, 3, 2)
    weights = resample_weights(y, len(y), 50, np.random.default_rng(0))
    for c in range(3):
        assert np.all(weights[:, y == c].sum(axis=1) == np.sum(y == c))


def test_ci_contains_estimate_narrows_and_is_deterministic() -> None:
    y, p = _data(156, 2, 3)
    point = compute_classification_metrics(y, p, task="binary")
    ci = bootstrap_ci(y, p, task="binary", seed=0)
    for name, (lo, hi) in ci.items():
        assert lo <= point[name] <= hi, name
    assert bootstrap_ci(y, p, task="binary", seed=0) == ci
    assert bootstrap_ci(y, p, task="binary", seed=1) != ci
    # four times the samples (same distribution): roughly half the width
    big = bootstrap_ci(np.tile(y, 4), np.tile(p, (4, 1)), task="binary", seed=0)
    for name in ("balanced_accuracy", "auc", "mcc"):
        assert big[name][1] - big[name][0] < 0.75 * (ci[name][1] - ci[name][0]), name
    narrow = bootstrap_ci(y, p, task="binary", metrics=["accuracy"], confidence=0.5)
    assert ci["accuracy"][0] < narrow["accuracy"][0] <= narrow["accuracy"][1] < ci["accuracy"][1]


def test_bootstrap_is_fast() -> None:
    """156 samples x 1000 resamples for the cheap metrics: well under a second unloaded (a loose
    bound here because CI machines are shared)."""
    y, p = _data(156, 2, 4)
    start = time.perf_counter()
    bootstrap_ci(y, p, task="binary", metrics=("balanced_accuracy", "accuracy", "macro_f1", "mcc", "gmean"))
    assert time.perf_counter() - start < 3.0


def test_multiclass_ci_includes_groups_and_multilabel_falls_back() -> None:
    y, p = _data(80, 4, 5)
    ci = bootstrap_ci(y, p, task="multiclass", train_class_counts=[300, 60, 20, 4], n_resamples=200)
    assert {"group_accuracy.many", "group_accuracy.medium", "group_accuracy.few", "auc", "ece"} <= set(ci)
    rng = np.random.default_rng(6)
    ym = rng.integers(0, 2, (40, 3))
    pm = np.clip(0.5 * ym + 0.5 * rng.random((40, 3)), 0, 1)
    ci = bootstrap_ci(ym, pm, task="multilabel", metrics=["macro_f1"], n_resamples=30)
    point = compute_classification_metrics(ym, pm, task="multilabel", metrics=["macro_f1"])["macro_f1"]
    assert ci["macro_f1"][0] <= point <= ci["macro_f1"][1]


def test_bootstrap_ci_per_image() -> None:
    values = {"dice": [0.7, 0.8, 0.75, 0.9, 0.6], "iou": [0.5, 0.6, 0.55, 0.8, 0.4]}
    ci = bootstrap_ci_per_image(values, n_resamples=500, seed=0)
    for name, (lo, hi) in ci.items():
        assert min(values[name]) <= lo <= np.mean(values[name]) <= hi <= max(values[name])


def test_summarise_matches_numpy_and_t_interval() -> None:
    values = [0.81, 0.78, 0.84, 0.8]
    s = summarise(values)
    assert s["mean"] == pytest.approx(np.mean(values))
    assert s["std"] == pytest.approx(np.std(values, ddof=1))
    assert s["n"] == 4
    lo, hi = scipy_stats.t.interval(0.95, 3, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert s["ci95"] == pytest.approx((lo, hi))
    one = summarise([0.7, None, float("nan")])
    assert one["mean"] == 0.7 and one["std"] == 0.0 and one["n"] == 1 and all(map(math.isnan, one["ci95"]))
    assert summarise([])["n"] == 0


def test_summarise_clips_the_interval_to_the_metric_range() -> None:
    values = [0.99, 0.90, 1.0]  # t interval with 2 dof reaches past 1
    raw = summarise(values)["ci95"]
    assert raw[1] > 1.0
    clipped = summarise(values, metric_bounds("accuracy"))["ci95"]
    assert clipped == (pytest.approx(raw[0]), 1.0)
    assert metric_bounds("mcc") == (-1.0, 1.0) and metric_bounds("qwk") == (-1.0, 1.0)
    assert summarise([-0.9, -1.0, -0.5], metric_bounds("mcc"))["ci95"][0] == -1.0


def _records(y: np.ndarray, scores: list[np.ndarray], task: str = "binary", counts=None) -> list[dict]:
    return [
        {
            "record_id": f"r{seed}",
            "seed": seed,
            "dataset": {
                "task": task,
                "train_class_counts": counts,
                "class_names": ["a", "b", "c"][: scores[0].shape[1]],
            },
            "test_outputs": {"y_true": y.tolist(), "y_score": s.tolist()},
        }
        for seed, s in enumerate(scores)
    ]


def test_paired_bootstrap_against_itself() -> None:
    y, p = _data(100, 2, 7)
    recs = _records(y, [p, p])
    out = paired_bootstrap(recs, recs, "balanced_accuracy", n_resamples=200)
    assert out == {"delta": 0.0, "ci95": (0.0, 0.0), "p_value": 1.0, "n_pairs": 2}


def test_clearly_better_predictor_has_small_p() -> None:
    y, good = _data(156, 2, 8, skill=3.0)
    _, bad = _data(156, 2, 8, skill=0.0)
    noise = np.random.default_rng(9).random(good.shape) * 0.2  # a second seed of the good model
    good2 = (good + noise) / (good + noise).sum(axis=1, keepdims=True)
    a = _records(y, [good, good2])
    b = _records(y, [bad, bad])
    out = paired_bootstrap(a, b, "balanced_accuracy", n_resamples=500, seed=0)
    point = np.mean(
        [
            compute_classification_metrics(y, s, task="binary")["balanced_accuracy"]
            - compute_classification_metrics(y, bad, task="binary")["balanced_accuracy"]
            for s in (good, good2)
        ]
    )
    assert out["delta"] == pytest.approx(point)
    assert out["delta"] > 0.2 and out["p_value"] < 0.01 and out["ci95"][0] > 0
    assert significance_marker(out["p_value"]) in ("**", "***")
    assert paired_bootstrap(a, b, "balanced_accuracy", n_resamples=500, seed=0) == out
    reverse = paired_bootstrap(b, a, "balanced_accuracy", n_resamples=500, seed=0)
    assert reverse["delta"] == pytest.approx(-out["delta"]) and reverse["p_value"] == out["p_value"]


def test_paired_class_deltas_find_the_class_that_gained() -> None:
    y, p = _data(120, 3, 10)
    better = p.copy()
    better[y == 2, 2] += 5.0  # only class 2 improves
    better /= better.sum(axis=1, keepdims=True)
    out = paired_class_deltas(
        _records(y, [better], task="multiclass"), _records(y, [p], task="multiclass"), n_resamples=300
    )
    assert out["n_pairs"] == 1 and out["class_names"] == ["a", "b", "c"]
    assert out["delta"][2] > 0 and out["p_value"][2] < 0.05
    assert out["delta"][0] <= 0 and out["delta"][1] <= 0
    assert len(out["ci95"]) == 3


def test_paired_bootstrap_refuses_different_test_sets_and_seeds() -> None:
    y, p = _data(50, 2, 11)
    other = y.copy()
    other[0] = 1 - other[0]
    with pytest.raises(DataError, match="different test labels"):
        paired_bootstrap(_records(y, [p]), _records(other, [p]), "accuracy", n_resamples=10)
    shifted = _records(y, [p])
    shifted[0]["seed"] = 5
    with pytest.raises(DataError, match="no common seed"):
        paired_bootstrap(_records(y, [p]), shifted, "accuracy", n_resamples=10)
    no_outputs = [{"seed": 0, "record_id": "x", "dataset": {"task": "binary"}, "test_outputs": {}}]
    with pytest.raises(DataError, match="no per-sample test outputs"):
        paired_bootstrap(no_outputs, no_outputs, "accuracy", n_resamples=10)


def test_paired_bootstrap_segmentation_per_image() -> None:
    def rec(seed: int, dice: list[float]) -> dict:
        return {
            "seed": seed,
            "dataset": {"task": "segmentation"},
            "test_outputs": {"per_image": {"dice": dice}},
        }

    a = [rec(0, [0.8, 0.82, 0.79, 0.85, 0.81, 0.83])]
    b = [rec(0, [0.6, 0.61, 0.58, 0.66, 0.6, 0.62])]
    out = paired_bootstrap(a, b, "dice", n_resamples=300)
    assert out["delta"] == pytest.approx(
        np.mean(a[0]["test_outputs"]["per_image"]["dice"])
        - np.mean(b[0]["test_outputs"]["per_image"]["dice"])
    )
    assert out["p_value"] < 0.01


def test_significance_marker() -> None:
    assert [significance_marker(p) for p in (0.0001, 0.005, 0.03, 0.05, 0.5, None, float("nan"))] == [
        "***",
        "**",
        "*",
        "",
        "",
        "",
        "",
    ]


def test_ranks_with_ties() -> None:
    entries = [
        {"value": 0.80, "ci95": (0.75, 0.85)},
        {"value": 0.90, "ci95": (0.86, 0.94)},
        {"value": 0.84, "ci95": (0.80, 0.88)},  # overlaps both
        {"mean": 0.60, "ci95": (0.55, 0.65)},
        {"value": None},
    ]
    assert ranks_with_ties(entries) == [2, 1, 1, 4, 5]
    # order-independent
    assert ranks_with_ties(entries[::-1]) == [5, 4, 1, 1, 2]
    # lower is better (ECE)
    ece = [{"value": 0.05, "ci95": (0.04, 0.06)}, {"value": 0.10, "ci95": (0.08, 0.12)}]
    assert ranks_with_ties(ece, higher_is_better=False) == [1, 2]
    # no CI: plain ranking, equal values tie
    assert ranks_with_ties([{"value": 1.0}, {"value": 2.0}, {"value": 2.0}]) == [3, 1, 1]


def test_paired_bootstrap_segmentation_unknown_metric() -> None:
    rec = [
        {"seed": 0, "dataset": {"task": "segmentation"}, "test_outputs": {"per_image": {"dice": [0.5, 0.6]}}}
    ]
    with pytest.raises(ConfigError, match="no per-image iou"):
        paired_bootstrap(rec, rec, "iou", n_resamples=10)
