"""The one implementation of every metric: scikit-learn underneath, numpy around it.

Both the ``evaluate`` modules (``eval_suite/metrics/<name>/<name>.py``) and the plain functions in
``eval_suite.metrics`` call these, so a number never depends on which door it came through.

Conventions (documented once here):

* ``y_score`` holds class *probabilities*, never logits (values outside [0, 1] are rejected,
  because ECE and AUC would silently mean something else).
* A metric that is undefined on the given input (AUC with a single class in ``y_true``, recall of a
  class absent from the test set, 0/0 in a segmentation ratio) is ``nan`` and an
  ``UndefinedMetricWarning`` is emitted, instead of an exception: one tiny test split must not crash
  a whole grid of runs. Records store ``nan`` as JSON ``null``; aggregation skips it.
* Asking for a metric that makes no sense for the task (``qwk`` on binary labels, ``auc`` on
  regressed ordinal grades) is a ``ConfigError``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hfssl.errors import ConfigError, DataError

CLASSIFICATION_TASKS = ("binary", "multiclass", "ordinal", "multilabel")

# Default long-tail thresholds on *training* samples per class (Liu et al., OLTR, CVPR 2019).
MANY_SHOT_THRESHOLD = 100  # many: > 100
FEW_SHOT_THRESHOLD = 20  # few: < 20; medium: 20..100
DEFAULT_ECE_BINS = 15  # Guo et al. 2017


class MetricInputError(DataError, ValueError):
    """Predictions/labels have the wrong shape, type or range for the requested metric."""


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on this input and was set to nan."""


def _undefined(message: str) -> float:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)
    return math.nan


@dataclass
class ClassificationInputs:
    """Validated labels and scores.

    ``proba`` is (N, C) (binary scores are expanded to two columns), or ``None`` when the ordinal
    model regressed grades. ``y_pred`` is (N,) class indices, or (N, C) 0/1 for multilabel.
    """

    task: str
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    num_classes: int


def prepare_classification(
    y_true: Any,
    y_score: Any,
    task: str,
    num_classes: int | None = None,
) -> ClassificationInputs:
    """Check shapes/ranges and derive predictions: argmax of probabilities (threshold 0.5 for binary
    and per-label multilabel), or rounded and clipped grades for a regressed ordinal output."""
    if task not in CLASSIFICATION_TASKS:
        raise ConfigError(f"unknown task {task!r}", f"use one of {', '.join(CLASSIFICATION_TASKS)}")
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    n = y_true.shape[0] if y_true.ndim else 0
    if n == 0:
        raise MetricInputError("y_true is empty", "pass at least one test sample")
    if y_score.shape[0] != n:
        raise MetricInputError(
            f"y_true has {n} samples but y_score has {y_score.shape[0]} (shape {tuple(y_score.shape)})",
            "pass one score row per test sample",
        )
    if not np.all(np.isfinite(y_score)):
        raise MetricInputError("y_score contains nan or inf", "check the model outputs")
    if not np.issubdtype(y_true.dtype, np.integer):
        if np.issubdtype(y_true.dtype, np.floating) and np.all(y_true == np.round(y_true)):
            y_true = y_true.astype(np.int64)
        elif y_true.dtype == bool:
            y_true = y_true.astype(np.int64)
        else:
            raise MetricInputError(f"y_true must hold integer labels, got dtype {y_true.dtype}", None)
    y_true = y_true.astype(np.int64)

    if task == "multilabel":
        if y_true.ndim != 2 or y_score.shape != y_true.shape:
            raise MetricInputError(
                f"multilabel needs y_true and y_score of the same (N, C) shape, got "
                f"{tuple(y_true.shape)} and {tuple(y_score.shape)}",
                "pass one 0/1 column per label",
            )
        if not np.isin(y_true, (0, 1)).all():
            raise MetricInputError("multilabel y_true must be 0/1", None)
        _check_probabilities(y_score)
        return ClassificationInputs(task, y_true, (y_score >= 0.5).astype(np.int64), y_score, y_true.shape[1])

    if y_true.ndim != 1:
        raise MetricInputError(f"y_true must be 1-D class indices, got shape {tuple(y_true.shape)}", None)
    if y_true.min() < 0:
        raise MetricInputError("y_true has negative labels", "labels are class indices 0..C-1")

    if task == "ordinal" and (y_score.ndim == 1 or (y_score.ndim == 2 and y_score.shape[1] == 1)):
        # A regressed grade: the prediction is the nearest valid grade.
        c = num_classes or int(y_true.max()) + 1
        grades = y_score.reshape(-1)
        y_pred = np.clip(np.rint(grades), 0, c - 1).astype(np.int64)
        _check_labels(y_true, c)
        return ClassificationInputs(task, y_true, y_pred, None, c)

    if task == "binary" and (y_score.ndim == 1 or (y_score.ndim == 2 and y_score.shape[1] == 1)):
        pos = y_score.reshape(-1)
        _check_probabilities(pos)
        y_score = np.stack([1.0 - pos, pos], axis=1)
    if y_score.ndim != 2:
        raise MetricInputError(
            f"y_score must be (N, C) class probabilities, got shape {tuple(y_score.shape)}", None
        )
    _check_probabilities(y_score)
    c = y_score.shape[1]
    if task == "binary" and c != 2:
        raise MetricInputError(
            f"binary task needs (N,) or (N, 2) scores, got {c} columns", "use task='multiclass'"
        )
    if num_classes is not None and num_classes != c:
        raise MetricInputError(f"y_score has {c} columns but num_classes is {num_classes}", None)
    if c < 2:
        raise MetricInputError("y_score needs at least two class columns", None)
    _check_labels(y_true, c)
    return ClassificationInputs(task, y_true, y_score.argmax(axis=1), y_score, c)


def _check_probabilities(score: np.ndarray) -> None:
    if score.size and (score.min() < 0.0 or score.max() > 1.0):
        raise MetricInputError(
            f"y_score must hold probabilities in [0, 1], got values in [{score.min():.3g}, {score.max():.3g}]",
            "apply softmax (or sigmoid for binary/multilabel) to the logits first",
        )


def _check_labels(y_true: np.ndarray, num_classes: int) -> None:
    if y_true.max() >= num_classes:
        raise MetricInputError(
            f"y_true has label {int(y_true.max())} but there are only {num_classes} classes",
            "pass one score column per class",
        )


# ---------------------------------------------------------------- single-label metrics (sklearn)


def accuracy(inp: ClassificationInputs) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(inp.y_true, inp.y_pred))


def balanced_accuracy(inp: ClassificationInputs) -> float:
    from sklearn.metrics import balanced_accuracy_score

    if inp.task == "multilabel":
        # sklearn has no multilabel balanced accuracy: average the per-label binary ones.
        return float(np.mean([_binary_balanced(inp.y_true[:, k], inp.y_pred[:, k]) for k in _labels(inp)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": expected on tiny splits
        return float(balanced_accuracy_score(inp.y_true, inp.y_pred))


def _binary_balanced(t: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score

    if len(np.unique(t)) < 2:
        return float(np.mean(t == p))
    return float(balanced_accuracy_score(t, p))


def _labels(inp: ClassificationInputs) -> range:
    return range(inp.num_classes)


def per_class(inp: ClassificationInputs) -> dict[str, list[float]]:
    """Precision, recall, F1 and support of every class (0 where a ratio is 0/0)."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = None if inp.task == "multilabel" else np.arange(inp.num_classes)
    p, r, f, s = precision_recall_fscore_support(
        inp.y_true, inp.y_pred, labels=labels, average=None, zero_division=0
    )
    return {
        "precision": [float(x) for x in p],
        "recall": [float(x) for x in r],
        "f1": [float(x) for x in f],
        "support": [int(x) for x in s],
    }


def macro_f1(inp: ClassificationInputs) -> float:
    from sklearn.metrics import f1_score

    labels = None if inp.task == "multilabel" else np.arange(inp.num_classes)
    return float(f1_score(inp.y_true, inp.y_pred, labels=labels, average="macro", zero_division=0))


def _present_recalls(inp: ClassificationInputs) -> tuple[np.ndarray, np.ndarray]:
    """Recall of every class that has test samples (recall of an absent class is undefined)."""
    from sklearn.metrics import recall_score

    if inp.task == "multilabel":
        support = inp.y_true.sum(axis=0)
        recall = recall_score(inp.y_true, inp.y_pred, average=None, zero_division=0)
    else:
        support = np.bincount(inp.y_true, minlength=inp.num_classes)
        recall = recall_score(
            inp.y_true, inp.y_pred, labels=np.arange(inp.num_classes), average=None, zero_division=0
        )
    present = support > 0
    return np.asarray(recall, dtype=np.float64), present


def gmean(inp: ClassificationInputs) -> float:
    """Geometric mean of per-class recall over the classes present in ``y_true``.

    This is imbalanced-learn's ``geometric_mean_score`` (``average="multiclass"``); for binary it
    equals sqrt(sensitivity * specificity)."""
    recall, present = _present_recalls(inp)
    if not present.any():
        return _undefined("gmean: no class has test samples")
    return float(np.prod(recall[present]) ** (1.0 / present.sum()))


def minority_class(inp: ClassificationInputs, train_class_counts: Sequence[int] | None) -> int:
    """Index of the class with fewest training samples (else fewest test samples among present)."""
    if train_class_counts is not None:
        counts = np.asarray(train_class_counts)
        if counts.shape != (inp.num_classes,):
            raise MetricInputError(
                f"train_class_counts has {counts.size} entries but there are {inp.num_classes} classes",
                "pass one training count per class",
            )
        return int(np.argmin(counts))
    support = (
        inp.y_true.sum(axis=0)
        if inp.task == "multilabel"
        else np.bincount(inp.y_true, minlength=inp.num_classes)
    )
    support = np.where(support > 0, support, np.iinfo(np.int64).max)
    return int(np.argmin(support))


def minority_recall(inp: ClassificationInputs, train_class_counts: Sequence[int] | None = None) -> float:
    k = minority_class(inp, train_class_counts)
    recall, present = _present_recalls(inp)
    if not present[k]:
        return _undefined(f"minority_recall: the minority class {k} has no test samples")
    return float(recall[k])


def mcc(inp: ClassificationInputs) -> float:
    from sklearn.metrics import matthews_corrcoef

    if inp.task == "multilabel":
        raise ConfigError("mcc is not defined for multilabel outputs", "use macro_f1 or balanced_accuracy")
    return float(matthews_corrcoef(inp.y_true, inp.y_pred))


def mae(inp: ClassificationInputs) -> float:
    """Mean absolute grade error |true grade - predicted grade| (sklearn ``mean_absolute_error``)."""
    from sklearn.metrics import mean_absolute_error

    if inp.task != "ordinal":
        raise ConfigError(
            f"mae (mean absolute grade error) needs graded labels; this is a {inp.task} task", "drop 'mae'"
        )
    return float(mean_absolute_error(inp.y_true, inp.y_pred))


def confusion_matrix(inp: ClassificationInputs) -> dict[str, list[int]]:
    """Counts of (true class, predicted class): ``{"<true>": [count per predicted class]}``
    (sklearn ``confusion_matrix`` over every class 0..C-1, rows keyed by the true class index)."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    if inp.task == "multilabel":
        raise ConfigError("confusion_matrix needs single-label outputs", "drop 'confusion_matrix'")
    cm = sk_confusion_matrix(inp.y_true, inp.y_pred, labels=np.arange(inp.num_classes))
    return {str(i): [int(v) for v in row] for i, row in enumerate(cm)}


def qwk(inp: ClassificationInputs) -> float:
    """Quadratic weighted Cohen's kappa over grades 0..C-1 (absent grades keep their distance)."""
    from sklearn.metrics import cohen_kappa_score

    if inp.task not in ("ordinal", "multiclass") or inp.num_classes < 3:
        raise ConfigError(
            f"qwk needs ordinal or multi-class labels with at least 3 grades; this is a {inp.task} task "
            f"with {inp.num_classes} classes",
            "drop 'qwk' from the metrics, or use task='ordinal' for graded labels",
        )
    labels = np.arange(inp.num_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = cohen_kappa_score(inp.y_true, inp.y_pred, labels=labels, weights="quadratic")
    if not np.isfinite(value):
        return _undefined("qwk: undefined (only one grade in y_true and y_pred)")
    return float(value)


def auc(inp: ClassificationInputs) -> float:
    """Binary ROC AUC, or the macro one-vs-rest mean over classes (labels for multilabel).

    The OvR mean is taken class by class with ``roc_auc_score`` rather than with
    ``multi_class="ovr"`` so that a class missing from a small test split only drops out (with a
    warning) instead of raising, and scores need not sum to one; with every class present it is
    exactly sklearn's ``roc_auc_score(multi_class="ovr", average="macro")``."""
    from sklearn.metrics import roc_auc_score

    if inp.proba is None:
        raise ConfigError(
            "auc needs class probabilities, but the ordinal model regressed grades",
            "drop 'auc' from the metrics or output one probability per grade",
        )
    if inp.task == "binary":
        if len(np.unique(inp.y_true)) < 2:
            return _undefined("auc: y_true holds a single class; ROC AUC is undefined")
        return float(roc_auc_score(inp.y_true, inp.proba[:, 1]))
    truth = inp.y_true if inp.task == "multilabel" else np.eye(inp.num_classes, dtype=np.int64)[inp.y_true]
    scores = []
    for k in range(inp.num_classes):
        positives = int(truth[:, k].sum())
        if 0 < positives < len(truth):
            scores.append(roc_auc_score(truth[:, k], inp.proba[:, k]))
    if len(scores) < inp.num_classes:
        if not scores:
            return _undefined("auc: no class has both positive and negative test samples")
        warnings.warn(
            f"auc: {inp.num_classes - len(scores)} class(es) lack positive or negative test samples and "
            "were left out of the one-vs-rest mean",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    return float(np.mean(scores))


# ---------------------------------------------------------------- calibration


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_ECE_BINS
) -> dict[str, list[float]]:
    """Equal-width confidence bins (lo, hi]; the first bin also holds 0.

    Hand-written: sklearn's ``calibration_curve`` bins the positive-class probability of a binary
    problem, not the top-label confidence that ECE is defined on."""
    if n_bins < 1:
        raise ConfigError(f"n_bins must be >= 1, got {n_bins}", None)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges[1:-1], confidence, side="left"), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, conf_sum / np.maximum(count, 1), np.nan)
        mean_acc = np.where(count > 0, acc_sum / np.maximum(count, 1), np.nan)
    return {
        "lower": [round(float(x), 12) for x in edges[:-1]],  # 0.6000000000000001 -> 0.6
        "upper": [round(float(x), 12) for x in edges[1:]],
        "count": [int(c) for c in count],
        "confidence": [float(x) for x in mean_conf],
        "accuracy": [float(x) for x in mean_acc],
    }


def ece_from_bins(bins: dict[str, list[float]]) -> float:
    """ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)| over non-empty bins."""
    count = np.asarray(bins["count"], dtype=np.float64)
    keep = count > 0
    gap = np.abs(np.asarray(bins["accuracy"])[keep] - np.asarray(bins["confidence"])[keep])
    return float(np.sum(count[keep] / count.sum() * gap))


def confidence_and_correct(inp: ClassificationInputs) -> tuple[np.ndarray, np.ndarray]:
    """Top-label confidence and correctness; multilabel flattens every (sample, label) decision."""
    if inp.proba is None:
        raise ConfigError(
            "ece needs class probabilities, but the ordinal model regressed grades",
            "drop 'ece' from the metrics or output one probability per grade",
        )
    if inp.task == "multilabel":
        p = inp.proba.reshape(-1)
        pred = p >= 0.5
        return np.where(pred, p, 1.0 - p), pred == inp.y_true.reshape(-1).astype(bool)
    return inp.proba.max(axis=1), inp.y_pred == inp.y_true


def ece(inp: ClassificationInputs, n_bins: int = DEFAULT_ECE_BINS) -> float:
    confidence, correct = confidence_and_correct(inp)
    return ece_from_bins(reliability_bins(confidence, correct, n_bins))


# ---------------------------------------------------------------- long tail


def shot_groups(
    train_class_counts: Sequence[int],
    many_threshold: int = MANY_SHOT_THRESHOLD,
    few_threshold: int = FEW_SHOT_THRESHOLD,
) -> dict[str, list[int]]:
    """Class indices per group: many (> many_threshold training samples), few (< few_threshold),
    medium (the rest)."""
    if few_threshold > many_threshold:
        raise ConfigError(
            f"few_threshold ({few_threshold}) must not exceed many_threshold ({many_threshold})", None
        )
    counts = np.asarray(train_class_counts)
    return {
        "many": [int(k) for k in np.flatnonzero(counts > many_threshold)],
        "medium": [int(k) for k in np.flatnonzero((counts >= few_threshold) & (counts <= many_threshold))],
        "few": [int(k) for k in np.flatnonzero(counts < few_threshold)],
    }


def group_accuracy(
    inp: ClassificationInputs,
    train_class_counts: Sequence[int],
    many_threshold: int = MANY_SHOT_THRESHOLD,
    few_threshold: int = FEW_SHOT_THRESHOLD,
) -> dict[str, float]:
    """Mean per-class recall within each shot group (as OLTR's ``shot_acc``); a group with no class
    (or no class with test samples) is nan, silently: empty groups are normal."""
    minority_class(inp, train_class_counts)  # validates the length
    recall, present = _present_recalls(inp)
    out = {}
    for name, classes in shot_groups(train_class_counts, many_threshold, few_threshold).items():
        chosen = [k for k in classes if present[k]]
        out[name] = float(np.mean(recall[chosen])) if chosen else math.nan
    return out


# ---------------------------------------------------------------- segmentation


def _as_mask(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == bool:
        return a
    if np.issubdtype(a.dtype, np.floating):
        return a >= 0.5  # a probability map
    if np.issubdtype(a.dtype, np.integer):
        return a != 0  # 0/1 or 0/255 masks
    raise MetricInputError(f"{name} must be a numeric or boolean mask, got dtype {a.dtype}", None)


def segmentation_confusion(pred: Any, target: Any, fov: Any = None) -> tuple[int, int, int, int]:
    """(tn, fp, fn, tp) over the pixels inside ``fov`` (all pixels when ``fov`` is None).

    Hand-written as a 4-cell ``np.bincount`` because ``sklearn.metrics.confusion_matrix`` is many
    times slower on megapixel masks; the tests check both agree."""
    p, t = _as_mask(pred, "pred"), _as_mask(target, "target")
    if p.shape != t.shape:
        raise MetricInputError(
            f"pred has shape {p.shape} but target has shape {t.shape}", "pass masks of the same size"
        )
    if fov is not None:
        f = _as_mask(fov, "fov")
        if f.shape != t.shape:
            raise MetricInputError(
                f"fov has shape {f.shape} but target has shape {t.shape}", "pass a FOV mask of the image size"
            )
        p, t = p[f], t[f]
    cells = np.bincount(2 * t.reshape(-1).astype(np.int64) + p.reshape(-1), minlength=4)
    tn, fp, fn, tp = (int(x) for x in cells)
    return tn, fp, fn, tp


def segmentation_from_confusion(tn: int, fp: int, fn: int, tp: int) -> dict[str, float]:
    def ratio(num: int, den: int, name: str) -> float:
        return num / den if den > 0 else _undefined(f"{name}: 0/0 (no pixel in the denominator)")

    return {
        "dice": ratio(2 * tp, 2 * tp + fp + fn, "dice"),
        "iou": ratio(tp, tp + fp + fn, "iou"),
        "sensitivity": ratio(tp, tp + fn, "sensitivity"),
        "specificity": ratio(tn, tn + fp, "specificity"),
        "accuracy": ratio(tp + tn, tn + fp + fn + tp, "accuracy"),
    }
