"""Classification metrics equal direct scikit-learn computations on the same random inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
    recall_score,
    roc_auc_score,
)

from eval_suite.metrics import (
    DEFAULT_RANK_METRIC,
    HIGHER_IS_BETTER,
    METRICS_BY_TASK,
    MetricInputError,
    UndefinedMetricWarning,
    compute_classification_metrics,
)
from hfssl.errors import ConfigError, HfsslError


def _random_probs(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels with every class present, and probabilities correlated with them."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(c), rng.integers(0, c, n - c)])
    p = rng.dirichlet(np.ones(c), n)
    p[np.arange(n), y] += rng.random(n)
    return y, p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("task,c", [("binary", 2), ("multiclass", 4), ("ordinal", 5)])
@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_equal_sklearn(task: str, c: int, seed: int) -> None:
    y, p = _random_probs(97, c, seed)
    pred = p.argmax(axis=1)
    out = compute_classification_metrics(y, p, task=task)
    assert out["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert out["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert out["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert out["mcc"] == pytest.approx(matthews_corrcoef(y, pred))
    if task == "binary":
        assert out["auc"] == pytest.approx(roc_auc_score(y, p[:, 1]))
    else:
        assert out["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    recall = recall_score(y, pred, average=None)
    # imbalanced-learn's geometric_mean_score: geometric mean of per-class recall
    assert out["gmean"] == pytest.approx(float(np.prod(recall) ** (1 / c)))
    prec, rec, f1, sup = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    assert out["per_class"]["precision"] == pytest.approx(prec.tolist())
    assert out["per_class"]["recall"] == pytest.approx(rec.tolist())
    assert out["per_class"]["f1"] == pytest.approx(f1.tolist())
    assert out["per_class"]["support"] == sup.tolist()
    if task == "ordinal":
        assert out["qwk"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))
    else:
        assert "qwk" not in out
    assert set(out) == {m for m in METRICS_BY_TASK[task] if m != "group_accuracy"}
    for name, value in out.items():
        if name not in ("per_class", "confusion_matrix"):
            assert isinstance(value, float), name


def test_binary_accepts_positive_scores() -> None:
    y, p = _random_probs(60, 2, 3)
    full = compute_classification_metrics(y, p, task="binary")
    for score in (p[:, 1], p[:, 1:2]):
        got = compute_classification_metrics(y, score, task="binary")
        assert got.pop("per_class") == full["per_class"]
        assert got == pytest.approx({k: v for k, v in full.items() if k != "per_class"})


def test_minority_recall_uses_training_counts() -> None:
    y, p = _random_probs(80, 3, 4)
    recall = recall_score(y, p.argmax(1), average=None)
    # fewest *training* samples: class 1, whatever the test counts are
    out = compute_classification_metrics(y, p, task="multiclass", train_class_counts=[500, 7, 90])
    assert out["minority_recall"] == pytest.approx(recall[1])
    # no counts: the class with fewest test samples
    test_min = int(np.argmin(np.bincount(y)))
    out = compute_classification_metrics(y, p, task="multiclass")
    assert out["minority_recall"] == pytest.approx(recall[test_min])


def test_ordinal_regressed_grades_are_rounded_and_clipped() -> None:
    y = np.array([0, 1, 2, 3, 4, 2, 1])
    grades = np.array([-0.7, 1.4, 2.6, 3.2, 9.0, 1.5, 0.49])
    pred = np.array([0, 1, 3, 3, 4, 2, 0])  # rint(1.5) = 2 (half to even), clip 9 -> 4, -0.7 -> 0
    out = compute_classification_metrics(y, grades[:, None], task="ordinal", num_classes=5)
    assert out["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert out["qwk"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))
    assert "auc" not in out and "ece" not in out
    with pytest.raises(ConfigError, match="auc needs class probabilities"):
        compute_classification_metrics(y, grades, task="ordinal", num_classes=5, metrics=["auc"])


def test_multilabel_matches_sklearn() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, (70, 4))
    p = np.clip(0.6 * y + 0.5 * rng.random((70, 4)), 0, 1)
    pred = (p >= 0.5).astype(int)
    out = compute_classification_metrics(y, p, task="multilabel")
    assert out["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert out["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert out["auc"] == pytest.approx(roc_auc_score(y, p, average="macro"))
    assert out["balanced_accuracy"] == pytest.approx(
        np.mean([balanced_accuracy_score(y[:, k], pred[:, k]) for k in range(4)])
    )


def test_group_accuracy_only_for_multiclass_with_counts() -> None:
    y, p = _random_probs(120, 4, 6)
    recall = recall_score(y, p.argmax(1), average=None)
    counts = [500, 150, 40, 5]  # many, many, medium, few
    out = compute_classification_metrics(y, p, task="multiclass", train_class_counts=counts)
    assert out["group_accuracy"]["many"] == pytest.approx(recall[:2].mean())
    assert out["group_accuracy"]["medium"] == pytest.approx(recall[2])
    assert out["group_accuracy"]["few"] == pytest.approx(recall[3])
    assert "group_accuracy" not in compute_classification_metrics(y, p, task="multiclass")
    # thresholds are configurable
    out = compute_classification_metrics(
        y, p, task="multiclass", train_class_counts=counts, many_threshold=300, few_threshold=50
    )
    assert out["group_accuracy"]["many"] == pytest.approx(recall[0])
    assert out["group_accuracy"]["few"] == pytest.approx(recall[2:].mean())
    yb, pb = _random_probs(50, 2, 6)
    with pytest.raises(ConfigError, match="group_accuracy needs a multiclass"):
        compute_classification_metrics(yb, pb, task="binary", metrics=["group_accuracy"])


def test_qwk_on_binary_is_a_clear_error() -> None:
    y, p = _random_probs(40, 2, 7)
    with pytest.raises(ConfigError, match="qwk needs ordinal or multi-class") as info:
        compute_classification_metrics(y, p, task="binary", metrics=["qwk"])
    assert "fix:" in str(info.value)
    # multiclass may ask for it explicitly
    y3, p3 = _random_probs(40, 3, 7)
    out = compute_classification_metrics(y3, p3, task="multiclass", metrics=["qwk"])
    assert out["qwk"] == pytest.approx(cohen_kappa_score(y3, p3.argmax(1), weights="quadratic"))


@pytest.mark.parametrize(
    "y,score,match",
    [
        (np.zeros(5, int), np.full((4, 2), 0.5), "y_true has 5 samples but y_score has 4"),
        (np.zeros(4, int), np.full((4, 3), 2.0), "probabilities in \\[0, 1\\]"),
        (np.array([0, 1, 2, 3]), np.full((4, 3), 0.3), "label 3 but there are only 3 classes"),
        (np.array([0.5, 1, 0, 1]), np.full((4, 2), 0.5), "integer labels"),
        (np.zeros(4, int), np.full((4, 3), 0.3), "binary task needs"),
    ],
)
def test_bad_inputs_raise_clear_errors(y, score, match) -> None:
    task = "binary" if "binary" in match else "multiclass"
    with pytest.raises(MetricInputError, match=match) as info:
        compute_classification_metrics(y, score, task=task)
    assert isinstance(info.value, ValueError) and isinstance(info.value, HfsslError)


def test_unknown_metric_and_task() -> None:
    y, p = _random_probs(20, 2, 8)
    with pytest.raises(ConfigError, match="unknown metric"):
        compute_classification_metrics(y, p, task="binary", metrics=["f2"])
    with pytest.raises(ConfigError, match="unknown task"):
        compute_classification_metrics(y, p, task="regression")


def test_single_class_auc_is_nan_with_warning() -> None:
    """Decision: an undefined AUC is nan + UndefinedMetricWarning, never an exception."""
    y = np.ones(6, dtype=int)
    p = np.linspace(0.1, 0.9, 6)
    with pytest.warns(UndefinedMetricWarning, match="single class"):
        out = compute_classification_metrics(y, p, task="binary")
    assert np.isnan(out["auc"])
    assert out["accuracy"] == pytest.approx(accuracy_score(y, (p >= 0.5).astype(int)))


def test_multiclass_auc_skips_absent_class_with_warning() -> None:
    y, p = _random_probs(60, 3, 9)
    keep = y != 2
    with pytest.warns(UndefinedMetricWarning, match="left out"):
        out = compute_classification_metrics(y[keep], p[keep], task="multiclass", metrics=["auc"])
    expected = np.mean([roc_auc_score(y[keep] == k, p[keep][:, k]) for k in (0, 1)])
    assert out["auc"] == pytest.approx(expected)


def test_no_warning_on_ordinary_input() -> None:
    y, p = _random_probs(60, 3, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compute_classification_metrics(y, p, task="multiclass", train_class_counts=[200, 50, 5])


def test_rank_metric_and_directions() -> None:
    assert DEFAULT_RANK_METRIC == {"classification": "balanced_accuracy", "segmentation": "dice"}
    assert HIGHER_IS_BETTER["ece"] is False
    assert all(HIGHER_IS_BETTER[m] for m in ("balanced_accuracy", "auc", "qwk", "dice", "gmean"))


def test_ordinal_mae_and_confusion_matrix_equal_sklearn():
    from sklearn.metrics import confusion_matrix, mean_absolute_error

    from eval_suite.metrics import compute_classification_metrics
    from eval_suite.metrics._core import prepare_classification
    from eval_suite.stats import _vectorised_metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    proba = rng.dirichlet(np.ones(5), 200)
    m = compute_classification_metrics(y, proba, task="ordinal")
    pred = proba.argmax(1)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, pred))
    assert [m["confusion_matrix"][str(i)] for i in range(5)] == confusion_matrix(
        y, pred, labels=range(5)
    ).tolist()
    inp = prepare_classification(y, proba, "ordinal")
    assert _vectorised_metrics(inp, np.ones((1, 200)), ["mae"])["mae"][0] == pytest.approx(m["mae"])
    with pytest.raises(Exception, match="do not apply to a multiclass task"):
        compute_classification_metrics(y, proba, task="multiclass", metrics=["mae"])
