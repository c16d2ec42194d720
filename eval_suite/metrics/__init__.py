"""Metrics for imbalanced medical classification and segmentation.

Two doors, one implementation (``eval_suite.metrics._core``, scikit-learn underneath):

* plain functions, used by protocols, stats and studies: ``compute_classification_metrics`` and
  ``compute_segmentation_metrics`` (they call the core directly, so they never import
  ``evaluate``, which alone takes seconds);
* ``evaluate`` modules loaded offline by path, for anyone in the Hugging Face ecosystem:
  ``load_metric("imbalanced_classification")`` (cached) or
  ``evaluate.load(str(metric_path("imbalanced_classification")))``. Modules: ``imbalanced_classification``,
  ``calibration``, ``long_tail``, ``segmentation``.

Metric names are fixed (see ``eval_suite/README.md``). Undefined values are ``nan`` with an
``UndefinedMetricWarning`` (e.g. AUC when the test split holds one class); a metric that makes no
sense for the task (``qwk`` on binary labels) raises ``ConfigError``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval_suite.metrics import _core
from eval_suite.metrics._core import (
    CLASSIFICATION_TASKS,
    DEFAULT_ECE_BINS,
    FEW_SHOT_THRESHOLD,
    MANY_SHOT_THRESHOLD,
    MetricInputError,
    UndefinedMetricWarning,
    prepare_classification,
    reliability_bins,
    shot_groups,
)
from hfssl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import evaluate

__all__ = [
    "CLASSIFICATION_TASKS",
    "DEFAULT_RANK_METRIC",
    "HIGHER_IS_BETTER",
    "METRICS_BY_TASK",
    "METRIC_LABELS",
    "METRIC_MODULES",
    "MetricInputError",
    "UndefinedMetricWarning",
    "calibration_bins",
    "compute_classification_metrics",
    "compute_segmentation_metrics",
    "load_metric",
    "metric_path",
    "reliability_diagram",
    "shot_groups",
]

_COMMON = ("accuracy", "balanced_accuracy", "macro_f1", "auc", "minority_recall", "gmean")

# Metrics computed by default per task, in output order. ``qwk`` may also be asked for on a
# multiclass task, but is not a default there: on nominal classes its grade distances mean nothing.
# ``group_accuracy`` is added for multiclass (>= 3 classes) when training class counts are given.
METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "binary": (*_COMMON, "mcc", "ece", "per_class"),
    "multiclass": (*_COMMON, "mcc", "ece", "per_class", "group_accuracy"),
    "ordinal": (*_COMMON, "mcc", "qwk", "mae", "ece", "per_class", "confusion_matrix"),
    "multilabel": (*_COMMON, "ece", "per_class"),
    "segmentation": ("dice", "iou", "sensitivity", "specificity", "accuracy"),
}
_ALLOWED_EXTRA = {"multiclass": ("qwk",)}

DEFAULT_RANK_METRIC = {"classification": "balanced_accuracy", "segmentation": "dice"}

# Direction of every scalar metric (dict metrics: each entry of per_class / group_accuracy is
# higher-is-better). Only calibration error is lower-is-better.
HIGHER_IS_BETTER: dict[str, bool] = {
    **{name: True for names in METRICS_BY_TASK.values() for name in names},
    "qwk": True,
    "ece": False,
    "mae": False,
}

METRIC_LABELS: dict[str, str] = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "macro_f1": "Macro F1",
    "auc": "ROC AUC",
    "minority_recall": "Minority-class recall",
    "gmean": "G-mean",
    "mcc": "Matthews correlation",
    "qwk": "Quadratic weighted kappa",
    "mae": "Mean absolute grade error",
    "ece": "Expected calibration error",
    "dice": "Dice",
    "iou": "IoU",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "group_accuracy.many": "Many-shot accuracy",
    "group_accuracy.medium": "Medium-shot accuracy",
    "group_accuracy.few": "Few-shot accuracy",
}

METRIC_MODULES = ("imbalanced_classification", "calibration", "long_tail", "segmentation")
_HERE = Path(__file__).resolve().parent


def metric_path(name: str) -> Path:
    """Folder of the ``evaluate`` module ``name`` (pass ``str(path)`` to ``evaluate.load``)."""
    if name not in METRIC_MODULES:
        raise ConfigError(f"unknown metric module {name!r}", f"use one of {', '.join(METRIC_MODULES)}")
    return _HERE / name


@functools.cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """``evaluate.load`` of one of our modules by absolute path: works offline (``HF_HUB_OFFLINE=1``).

    Cached: the first load copies the script into the HF modules cache (~0.5 s), later ones are free.
    """
    import evaluate

    return evaluate.load(str(metric_path(name)))


def _selected(task: str, metrics: Iterable[str] | None, has_proba: bool, group_ok: bool) -> list[str]:
    defaults = list(METRICS_BY_TASK[task])
    if metrics is None:
        chosen = [m for m in defaults if (has_proba or m not in ("auc", "ece"))]
        return [m for m in chosen if m != "group_accuracy" or group_ok]
    chosen = list(dict.fromkeys(metrics))
    allowed = set(defaults) | set(_ALLOWED_EXTRA.get(task, ())) | {"qwk"}  # qwk raises its own error
    unknown = [m for m in chosen if m not in allowed and m not in HIGHER_IS_BETTER]
    if unknown:
        raise ConfigError(
            f"unknown metric(s) {', '.join(unknown)} for a {task} task",
            f"use some of {', '.join(sorted(allowed))}",
        )
    if "group_accuracy" in chosen and not group_ok:
        raise ConfigError(
            f"group_accuracy needs a multiclass task with at least 3 classes and train_class_counts "
            f"(got a {task} task{'' if task != 'multiclass' else ' without counts or with 2 classes'})",
            "pass train_class_counts for a multiclass task, or drop group_accuracy",
        )
    wrong = [m for m in chosen if m not in allowed]
    if wrong:
        raise ConfigError(
            f"metric(s) {', '.join(wrong)} do not apply to a {task} task",
            f"use some of {', '.join(sorted(allowed))}",
        )
    return chosen


def compute_classification_metrics(
    y_true: Any,
    y_score: Any,
    *,
    task: str,
    train_class_counts: Sequence[int] | None = None,
    metrics: Iterable[str] | None = None,
    num_classes: int | None = None,
    n_bins: int = DEFAULT_ECE_BINS,
    many_threshold: int = MANY_SHOT_THRESHOLD,
    few_threshold: int = FEW_SHOT_THRESHOLD,
) -> dict[str, Any]:
    """All classification metrics of one test run, as plain (JSON-ready) Python values.

    Args:
        y_true: (N,) class indices; (N, C) 0/1 for ``multilabel``.
        y_score: (N, C) class probabilities. Binary also takes (N,) / (N, 1) positive-class
            probability; ordinal also takes (N,) / (N, 1) regressed grades (prediction = grade rounded
            and clipped to 0..C-1; then ``auc``/``ece`` are not computed).
        task: ``binary`` | ``multiclass`` | ``ordinal`` | ``multilabel``.
        train_class_counts: training samples per class; decides the minority class of
            ``minority_recall`` (else the class with fewest test samples) and the shot groups of
            ``group_accuracy`` (many > ``many_threshold``, few < ``few_threshold``).
        metrics: names to compute (default ``METRICS_BY_TASK[task]``).
        num_classes: only needed for regressed ordinal grades when ``train_class_counts`` is absent.

    Returns:
        ``{name: float}`` plus ``per_class = {"precision", "recall", "f1", "support"}`` lists and
        ``group_accuracy = {"many", "medium", "few"}``; undefined values are ``nan``.
    """
    if num_classes is None and train_class_counts is not None:
        num_classes = len(train_class_counts)
    inp = prepare_classification(y_true, y_score, task, num_classes=num_classes)
    group_ok = task == "multiclass" and inp.num_classes >= 3 and train_class_counts is not None
    out: dict[str, Any] = {}
    for name in _selected(task, metrics, inp.proba is not None, group_ok):
        if name == "minority_recall":
            out[name] = _core.minority_recall(inp, train_class_counts)
        elif name == "ece":
            out[name] = _core.ece(inp, n_bins=n_bins)
        elif name == "group_accuracy":
            out[name] = _core.group_accuracy(inp, train_class_counts or [], many_threshold, few_threshold)
        else:
            out[name] = getattr(_core, name)(inp)
    return out


def reliability_diagram(
    y_true: Any, y_score: Any, *, task: str, n_bins: int = DEFAULT_ECE_BINS
) -> dict[str, Any]:
    """Reliability-diagram bins (``lower``, ``upper``, ``count``, ``confidence``, ``accuracy``
    lists; empty bins are nan) and the ``ece`` they give."""
    inp = prepare_classification(y_true, y_score, task)
    confidence, correct = _core.confidence_and_correct(inp)
    bins = reliability_bins(confidence, correct, n_bins)
    return {"ece": _core.ece_from_bins(bins), "bins": bins}


def calibration_bins(
    y_true: Any, y_score: Any, *, n_bins: int = DEFAULT_ECE_BINS, task: str | None = None
) -> dict[str, list[float]]:
    """Just the reliability-diagram bins of ``reliability_diagram`` (task inferred from the shapes
    when not given: 2-D labels = multilabel, 1 or 2 score columns = binary, else multiclass)."""
    if task is None:
        import numpy as np

        scores = np.asarray(y_score)
        if np.ndim(y_true) == 2:
            task = "multilabel"
        else:
            task = "binary" if scores.ndim == 1 or scores.shape[1] <= 2 else "multiclass"
    return reliability_diagram(y_true, y_score, task=task, n_bins=n_bins)["bins"]


def compute_segmentation_metrics(pred: Any, target: Any, fov: Any = None) -> dict[str, float]:
    """Pixel-wise ``dice``, ``iou``, ``sensitivity``, ``specificity``, ``accuracy`` of binary masks.

    ``pred``/``target``/``fov`` are numpy arrays of one shape (any: (H, W), (B, H, W), (D, H, W)...),
    all pixels pooled; only pixels inside ``fov`` count (DRIVE's field-of-view mask). Boolean and
    integer masks: non-zero is foreground; float arrays: >= 0.5 (probability maps). A 0/0 ratio (e.g.
    sensitivity on an image without foreground) is nan with an ``UndefinedMetricWarning``.
    """
    return _core.segmentation_from_confusion(*_core.segmentation_confusion(pred, target, fov))


def is_finite_number(value: Any) -> bool:
    """True for a real, finite number (not bool, not None, not nan)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ------------------------------------------------------------------ shared by the evaluate modules
def infer_task_from_lists(predictions: Sequence[Any], references: Sequence[Any]) -> str:
    """The classification task an ``evaluate`` module's inputs imply when no ``task`` is given."""
    if references and isinstance(references[0], (list, tuple)):
        return "multilabel"
    if not predictions or not isinstance(predictions[0], (list, tuple)) or len(predictions[0]) == 2:
        return "binary"
    return "multiclass"


def score_features() -> list:
    """``datasets.Features`` accepted by score-based classification modules: (N, C) scores with int
    labels, multi-label targets, or one positive-class score per sample."""
    import datasets

    scores = datasets.Sequence(datasets.Value("float64"))
    return [
        datasets.Features({"predictions": scores, "references": datasets.Value("int64")}),
        datasets.Features({"predictions": scores, "references": datasets.Sequence(datasets.Value("int64"))}),
        datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}),
    ]
