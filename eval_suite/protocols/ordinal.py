"""What the protocols share for graded (ordinal) labels: the head in use and the regression head's
validation-tuned cut points.

Three heads (``hfssl.models.heads.ORDINAL_HEADS``): ``regression`` (one regressed grade; cut points
tuned on the validation split to maximise QWK, then applied unchanged to the test split, as
retinopathy grading does), ``classification`` (K-way softmax) and ``cumulative`` (K-1 rank-consistent
``P(y > j)`` logits). The probabilistic heads' test scores are per-grade probabilities (N, K), so
every classification metric, loss policy and mixup applies; the regression head's test scores are
its thresholded grades (N, 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hfssl.errors import ConfigError

_CANDIDATES = 64  # cut-point candidates per threshold and pass (quantiles of the validation values)
_PASSES = 3
MIN_GAP = 0.25
"""Tuned cut points stay at least this far apart (in grade units), so no grade's band closes: on a
small validation split QWK alone would gladly merge a rare grade into its neighbour."""


def resolve_head(head: str | None, task: str, num_classes: int) -> str | None:
    """The ordinal head of a run: ``head`` (or the default) on an ordinal task; ``None`` otherwise.
    ``ConfigError`` for a head asked on a non-ordinal task or one that does not fit the grades."""
    from hfssl.models import DEFAULT_ORDINAL_HEAD, check_ordinal_head

    if task != "ordinal":
        if head is not None:
            raise ConfigError(
                f"--ordinal-head {head} needs graded labels, but this dataset is a {task} task",
                "drop --ordinal-head, or use an ordinal dataset (retinamnist, graded:breastmnist)",
            )
        return None
    return check_ordinal_head(head or DEFAULT_ORDINAL_HEAD, num_classes)


def cumulative_probabilities(p_greater: np.ndarray) -> np.ndarray:
    """Per-grade probabilities (N, K) from ``P(y > j)`` (N, K-1), made monotone (running minimum)
    first so that every probability is >= 0 and each row sums to one."""
    gt = np.minimum.accumulate(np.asarray(p_greater, dtype=np.float64), axis=1)
    ones, zeros = np.ones((len(gt), 1)), np.zeros((len(gt), 1))
    return np.clip(np.hstack([ones, gt]) - np.hstack([gt, zeros]), 0.0, 1.0)


def apply_thresholds(values: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """Regressed values -> integer grades: the number of cut points at or below each value."""
    return np.digitize(np.asarray(values, dtype=np.float64).reshape(-1), np.sort(thresholds)).astype(np.int64)


def tune_thresholds(values: np.ndarray | None, labels: np.ndarray | None, num_grades: int) -> dict[str, Any]:
    """K-1 cut points that maximise QWK of ``apply_thresholds(values)`` against ``labels``.

    Coordinate ascent from the rounding cut points (0.5, 1.5, ...): each cut point in turn tries
    quantiles of the values between its neighbours (``MIN_GAP`` away from them) and keeps the best
    (ties keep the current one); three passes. Deterministic. ``ConfigError`` without validation values.
    Returns ``{"thresholds", "val_qwk_rounded", "val_qwk_tuned"}``."""
    from sklearn.metrics import cohen_kappa_score

    if values is None or labels is None or len(labels) == 0:
        raise ConfigError(
            "threshold tuning needs a validation split, and there is none",
            "give the dataset a validation split, or pass --no-tune-thresholds (round the regressed grade)",
        )
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    grid = np.arange(num_grades)

    def kappa(cuts: np.ndarray) -> float:
        value = cohen_kappa_score(y, apply_thresholds(v, cuts), labels=grid, weights="quadratic")
        return float(value) if np.isfinite(value) else -1.0

    cuts = np.arange(num_grades - 1, dtype=np.float64) + 0.5
    start = best = kappa(cuts)
    for _ in range(_PASSES):
        for j in range(num_grades - 1):
            lo = cuts[j - 1] if j > 0 else min(v.min(), cuts[0]) - 1e-6
            hi = cuts[j + 1] if j < num_grades - 2 else max(v.max(), cuts[-1]) + 1e-6
            inside = v[(v > lo) & (v < hi)]
            candidates = np.unique(
                np.concatenate(
                    [np.quantile(inside, np.linspace(0, 1, _CANDIDATES)) if inside.size else [], [lo, hi]]
                )
            )
            lo_ok = lo + MIN_GAP if j > 0 else lo
            hi_ok = hi - MIN_GAP if j < num_grades - 2 else hi
            for c in candidates:
                if not lo_ok <= c <= hi_ok:
                    continue
                trial = cuts.copy()
                trial[j] = c
                score = kappa(trial)
                if score > best + 1e-12:
                    best, cuts = score, trial
    return {"thresholds": [float(c) for c in cuts], "val_qwk_rounded": start, "val_qwk_tuned": best}
