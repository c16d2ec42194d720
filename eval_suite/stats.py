"""Uncertainty and comparisons: bootstrap CIs over test samples, mean ± CI over seeds, paired
bootstrap between two checkpoints, significance markers and rank ties.

Why a hand-written bootstrap rather than ``scipy.stats.bootstrap``: scipy resamples without
strata (a 156-image test split with ~40 minority images can lose a class, leaving recall-based
metrics undefined), and it calls the statistic once per resample batch on resampled *copies*.
Here a resample is a row of multiplicity weights (R, N), drawn per class, and every cheap metric is
computed for all rows at once from weighted confusion matrices / weighted rank sums, so 1000
resamples of 156 samples take milliseconds. With unit weights these formulas give exactly the
scikit-learn numbers of ``eval_suite.metrics`` (the tests check it); anything not vectorised here
(multilabel) falls back to calling ``compute_classification_metrics`` once per resample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from eval_suite.metrics import METRICS_BY_TASK, _core, compute_classification_metrics
from eval_suite.metrics._core import ClassificationInputs, minority_class, prepare_classification, shot_groups
from hfssl.errors import ConfigError, DataError

__all__ = [
    "bootstrap_ci",
    "bootstrap_ci_per_image",
    "paired_bootstrap",
    "paired_class_deltas",
    "ranks_with_ties",
    "resample_weights",
    "significance_marker",
    "summarise",
]

_VECTORISED = {
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "minority_recall",
    "gmean",
    "mcc",
    "qwk",
    "mae",
    "auc",
    "ece",
}
_GROUPS = ("group_accuracy.many", "group_accuracy.medium", "group_accuracy.few")


def _scalar_defaults(task: str, has_proba: bool, group_ok: bool) -> list[str]:
    names = [m for m in METRICS_BY_TASK[task] if m not in ("per_class", "group_accuracy", "confusion_matrix")]
    if not has_proba:
        names = [m for m in names if m not in ("auc", "ece")]
    return names + (list(_GROUPS) if group_ok else [])


def resample_weights(
    y_true: np.ndarray | None, n: int, n_resamples: int, rng: np.random.Generator, stratify: bool = True
) -> np.ndarray:
    """(n_resamples, n) multiplicities of a bootstrap with replacement; stratified by class when
    ``y_true`` is 1-D labels, so every class keeps exactly its test count."""
    if not stratify or y_true is None or np.ndim(y_true) != 1:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(np.float64)
    weights = np.zeros((n_resamples, n))
    for c in np.unique(y_true):
        idx = np.flatnonzero(y_true == c)
        weights[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), size=n_resamples)
    return weights


def _weighted_auc(pos: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of every weight row = P(score_pos > score_neg) + 0.5 P(tie), the Mann-Whitney
    statistic over weighted positive/negative pairs."""
    order = np.argsort(score, kind="mergesort")
    s, p = score[order], pos[order]
    w = weights[:, order]
    # per tie-group cumulative negative weight: below the group and inside it
    _, start = np.unique(s, return_index=True)
    group = np.searchsorted(start, np.arange(len(s)), side="right") - 1
    neg_cum = np.cumsum(w * ~p, axis=1)
    neg_cum0 = np.concatenate([np.zeros((w.shape[0], 1)), neg_cum], axis=1)
    end = np.append(start[1:], len(s))
    below = neg_cum0[:, start][:, group]
    inside = (neg_cum0[:, end] - neg_cum0[:, start])[:, group]
    wpos = w * p
    num = np.sum(wpos * (below + 0.5 * inside), axis=1)
    den = wpos.sum(axis=1) * (w * ~p).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _vectorised_metrics(
    inp: ClassificationInputs,
    weights: np.ndarray,
    names: Iterable[str],
    train_class_counts: Sequence[int] | None = None,
    n_bins: int = 15,
) -> dict[str, np.ndarray]:
    """Each metric (and ``"recall"``, (R, C)) for every row of ``weights`` (R, N) at once.

    Same definitions as ``eval_suite.metrics._core`` (sklearn), written on weighted confusion
    matrices so that resamples cost one matrix product."""
    names = list(names)
    c, r = inp.num_classes, weights.shape[0]
    cells = np.zeros((len(inp.y_true), c * c))
    cells[np.arange(len(inp.y_true)), inp.y_true * c + inp.y_pred] = 1.0
    cm = (weights @ cells).reshape(r, c, c)  # [resample, true, pred]
    support, predicted, tp = cm.sum(axis=2), cm.sum(axis=1), np.diagonal(cm, axis1=1, axis2=2)
    total = support.sum(axis=1)
    present = support > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(present, tp / np.where(present, support, 1), 0.0)
    out: dict[str, np.ndarray] = {"recall": np.where(present, recall, np.nan)}
    n_present = present.sum(axis=1)
    for name in names:
        if name == "accuracy":
            out[name] = tp.sum(axis=1) / total
        elif name == "balanced_accuracy":
            out[name] = np.where(present, recall, 0.0).sum(axis=1) / n_present
        elif name == "macro_f1":
            den = support + predicted
            out[name] = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0).mean(axis=1)
        elif name == "gmean":
            logs = np.where(present, np.log(np.maximum(recall, 1e-300)), 0.0)
            g = np.exp(logs.sum(axis=1) / n_present)
            out[name] = np.where((present & (recall == 0)).any(axis=1), 0.0, g)
        elif name == "minority_recall":
            out[name] = out["recall"][:, minority_class(inp, train_class_counts)]
        elif name == "mcc":
            cov_tp = tp.sum(axis=1) * total - np.einsum("rk,rk->r", support, predicted)
            cov_pp = total**2 - np.einsum("rk,rk->r", predicted, predicted)
            cov_tt = total**2 - np.einsum("rk,rk->r", support, support)
            den = np.sqrt(cov_pp * cov_tt)
            out[name] = np.where(
                den > 0, cov_tp / np.where(den > 0, den, 1), 0.0
            )  # sklearn: 0 when undefined
        elif name == "qwk":
            if inp.task not in ("ordinal", "multiclass") or c < 3:
                _core.qwk(inp)  # raises the ConfigError, worded in one place
            grid = np.arange(c)
            w = (grid[:, None] - grid[None, :]) ** 2
            expected = support[:, :, None] * predicted[:, None, :] / total[:, None, None]
            den = np.einsum("ij,rij->r", w, expected)
            out[name] = np.where(
                den > 0, 1 - np.einsum("ij,rij->r", w, cm) / np.where(den > 0, den, 1), np.nan
            )
        elif name == "mae":
            grid = np.arange(c)
            out[name] = np.einsum("ij,rij->r", np.abs(grid[:, None] - grid[None, :]), cm) / total
        elif name == "auc":
            if inp.proba is None:
                raise ConfigError(
                    "auc needs class probabilities, but the ordinal model regressed grades", None
                )
            if inp.task == "binary":
                out[name] = _weighted_auc(inp.y_true == 1, inp.proba[:, 1], weights)
            else:
                per = np.stack(
                    [_weighted_auc(inp.y_true == k, inp.proba[:, k], weights) for k in range(c)], 1
                )
                out[name] = np.nanmean(per, axis=1) if np.isfinite(per).any() else np.full(r, np.nan)
        elif name == "ece":
            if inp.proba is None:
                raise ConfigError(
                    "ece needs class probabilities, but the ordinal model regressed grades", None
                )
            conf = inp.proba.max(axis=1)
            correct = (inp.y_pred == inp.y_true).astype(np.float64)
            edges = np.linspace(0.0, 1.0, n_bins + 1)
            index = np.clip(np.searchsorted(edges[1:-1], conf, side="left"), 0, n_bins - 1)
            onehot = np.zeros((len(conf), n_bins))
            onehot[np.arange(len(conf)), index] = 1.0
            gap = weights @ (onehot * (correct - conf)[:, None])  # per bin: sum(correct) - sum(conf)
            out[name] = np.abs(gap).sum(axis=1) / total
        elif name in _GROUPS:
            groups = shot_groups(train_class_counts or [])
            classes = groups[name.split(".", 1)[1]]
            sub = out["recall"][:, classes] if classes else np.full((r, 1), np.nan)
            with np.errstate(invalid="ignore"):
                out[name] = np.nanmean(sub, axis=1) if np.isfinite(sub).any() else np.full(r, np.nan)
        else:
            raise ConfigError(
                f"metric {name!r} has no bootstrap", f"use some of {', '.join(sorted(_VECTORISED))}"
            )
    return out


def _metric_samples(
    y_true: Any,
    y_score: Any,
    weights: np.ndarray,
    names: list[str],
    *,
    task: str,
    train_class_counts: Sequence[int] | None,
) -> dict[str, np.ndarray]:
    """Metric values for each weight row; multilabel goes through the slow, general path."""
    num_classes = len(train_class_counts) if train_class_counts is not None else None
    inp = prepare_classification(y_true, y_score, task, num_classes=num_classes)
    if task != "multilabel":
        return _vectorised_metrics(inp, weights, names, train_class_counts)
    out: dict[str, list[float]] = {n: [] for n in names}
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    for row in weights.astype(np.int64):
        idx = np.repeat(np.arange(len(row)), row)
        values = compute_classification_metrics(
            y_true[idx], y_score[idx], task=task, train_class_counts=train_class_counts, metrics=names
        )
        for n in names:
            out[n].append(values[n])
    return {n: np.asarray(v, dtype=np.float64) for n, v in out.items()}


def _percentile_ci(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return (float(lo), float(hi))


def bootstrap_ci(
    y_true: Any,
    y_score: Any,
    *,
    task: str,
    metrics: Iterable[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    train_class_counts: Sequence[int] | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CI of each metric over test samples (stratified by class).

    ``metrics`` defaults to every scalar metric of the task (plus ``group_accuracy.many`` /
    ``.medium`` / ``.few`` for multiclass with ``train_class_counts``). Deterministic for a seed.
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}", None)
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples}", None)
    y_true_arr = np.asarray(y_true)
    num_classes = len(train_class_counts) if train_class_counts is not None else None
    inp = prepare_classification(y_true_arr, y_score, task, num_classes=num_classes)
    group_ok = task == "multiclass" and inp.num_classes >= 3 and train_class_counts is not None
    names = list(metrics) if metrics is not None else _scalar_defaults(task, inp.proba is not None, group_ok)
    rng = np.random.default_rng(seed)
    weights = resample_weights(inp.y_true, len(inp.y_true), n_resamples, rng, stratify=task != "multilabel")
    samples = _metric_samples(
        y_true_arr, y_score, weights, names, task=task, train_class_counts=train_class_counts
    )
    return {name: _percentile_ci(samples[name], confidence) for name in names}


def bootstrap_ci_per_image(
    per_image: Mapping[str, Sequence[float]],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CI of the mean of per-image values (segmentation records'
    ``test_outputs.per_image``), resampling images."""
    rng = np.random.default_rng(seed)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in per_image.items()}
    n = len(next(iter(arrays.values())))
    weights = resample_weights(None, n, n_resamples, rng, stratify=False)
    out = {}
    for name, values in arrays.items():
        out[name] = _percentile_ci(_weighted_mean(weights, values), confidence)
    return out


def _weighted_mean(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    ok = np.isfinite(values)
    w = weights * ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ np.where(ok, values, 0.0)) / w.sum(axis=1)


def metric_bounds(name: str) -> tuple[float, float]:
    """The range a record metric can take: [-1, 1] for correlation-like scores (MCC, kappa), [0, 1]
    for every other metric of this suite (rates, AUC, F1, G-mean, ECE, Dice, IoU); [0, inf) for the
    mean absolute grade error."""
    lowered = name.lower()
    if lowered == "mae":
        return (0.0, math.inf)
    return (-1.0, 1.0) if any(k in lowered for k in ("mcc", "kappa", "qwk")) else (0.0, 1.0)


def summarise(values: Iterable[float | None], bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """Mean, std (ddof=1; 0.0 for a single value), n and a t-distribution 95% CI over seeds.

    ``None``/nan values (undefined metrics) are left out and not counted in ``n``; with n < 2 the
    CI is (nan, nan) and with n == 0 everything is nan. ``bounds`` (e.g. ``metric_bounds(name)``)
    clips the CI to the metric's range: with three seeds the t interval is wide and would otherwise
    report an accuracy above 1."""
    from scipy import stats as scipy_stats

    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0, "ci95": (math.nan, math.nan)}
    mean = float(arr.mean())
    if n == 1:
        return {"mean": mean, "std": 0.0, "n": 1, "ci95": (math.nan, math.nan)}
    std = float(arr.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"mean": mean, "std": std, "n": n, "ci95": (low, high)}


# ---------------------------------------------------------------- paired comparison


def _by_seed(records: Sequence[Mapping[str, Any]], side: str) -> dict[int, Mapping[str, Any]]:
    out: dict[int, Mapping[str, Any]] = {}
    for rec in records:
        seed = rec.get("seed")
        if seed in out:
            raise DataError(
                f"two {side} records share seed {seed}",
                "pass the records of one checkpoint/protocol/regime/policy at a time",
            )
        out[seed] = rec
    return out


def _pairs(a_records, b_records) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    a, b = _by_seed(a_records, "A"), _by_seed(b_records, "B")
    seeds = sorted(set(a) & set(b), key=str)
    if not seeds:
        raise DataError(
            f"no common seed between the two sets of records (A: {sorted(a, key=str)}, B: {sorted(b, key=str)})",
            "compare runs evaluated with the same seeds",
        )
    return [(a[s], b[s]) for s in seeds]


def _outputs(rec: Mapping[str, Any]) -> Mapping[str, Any]:
    outputs = rec.get("test_outputs") or {}
    if "y_true" not in outputs and "per_image" not in outputs:
        raise DataError(
            f"record {rec.get('record_id', '?')} has no per-sample test outputs",
            "re-run the evaluation; paired comparisons need test_outputs",
        )
    return outputs


def _paired_samples(
    a_records, b_records, names: list[str], n_resamples: int, seed: int, per_class: bool = False
) -> tuple[np.ndarray, np.ndarray, int, dict[str, Any]]:
    """(K, R + 1) mean-over-seeds deltas A - B, column 0 = point estimate (unit weights)."""
    pairs = _pairs(a_records, b_records)
    first = _outputs(pairs[0][0])
    segmentation = "y_true" not in first
    rng = np.random.default_rng(seed)
    if segmentation:
        n = len(next(iter(first["per_image"].values())))
        boot = resample_weights(None, n, n_resamples, rng, stratify=False)
    else:
        y0 = np.asarray(first["y_true"])
        boot = resample_weights(y0, len(y0), n_resamples, rng, stratify=np.ndim(y0) == 1)
    weights = np.vstack([np.ones((1, boot.shape[1])), boot])
    deltas = []
    info: dict[str, Any] = {}
    for rec_a, rec_b in pairs:
        values = []
        for rec in (rec_a, rec_b):
            out = _outputs(rec)
            if segmentation:
                per_image = out.get("per_image")
                if per_image is None or len(next(iter(per_image.values()))) != boot.shape[1]:
                    raise DataError("paired records evaluate different test images", None)
                if per_class:
                    raise ConfigError("per-class deltas need classification records", None)
                missing = [m for m in names if m not in per_image]
                if missing:
                    raise ConfigError(
                        f"segmentation records have no per-image {', '.join(missing)}",
                        f"compare one of {', '.join(sorted(per_image))}",
                    )
                values.append(
                    np.stack([_weighted_mean(weights, np.asarray(per_image[m], float)) for m in names])
                )
                continue
            if not np.array_equal(np.asarray(out["y_true"]), np.asarray(first["y_true"])):
                raise DataError(
                    f"records {rec_a.get('record_id', '?')} and {rec.get('record_id', '?')} have different "
                    "test labels",
                    "compare runs on the same dataset, split and image size",
                )
            ds = rec.get("dataset", {})
            counts = ds.get("train_class_counts")
            task = ds.get("task", "binary")
            inp = prepare_classification(
                out["y_true"], out["y_score"], task, num_classes=ds.get("num_classes")
            )
            if task == "multilabel":
                raise ConfigError("paired bootstrap of multilabel records is not supported", None)
            got = _vectorised_metrics(inp, weights, [] if per_class else names, counts)
            if per_class:
                values.append(got["recall"].T)
                info["class_names"] = ds.get("class_names")
            else:
                values.append(np.stack([got[m] for m in names]))
        deltas.append(values[0] - values[1])
    with np.errstate(invalid="ignore"):
        mean_delta = np.nanmean(np.stack(deltas), axis=0) if len(deltas) > 1 else deltas[0]
    return mean_delta, weights, len(pairs), info


def _p_value(delta: float, boot: np.ndarray) -> float:
    boot = boot[np.isfinite(boot)]
    if not np.isfinite(delta) or boot.size == 0:
        return math.nan
    if delta > 0:
        share = np.mean(boot <= 0)
    elif delta < 0:
        share = np.mean(boot >= 0)
    else:
        return 1.0
    return float(min(1.0, 2.0 * share))


def paired_bootstrap(
    a_records: Sequence[Mapping[str, Any]],
    b_records: Sequence[Mapping[str, Any]],
    metric: str,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Is A better than B on ``metric``? Records are paired by seed and must share the test set.

    Test indices are resampled jointly (the same resample for A, B and every seed), the per-seed
    deltas A - B averaged; ``p_value`` is the two-sided bootstrap p: twice the share of resampled
    deltas on the other side of 0 (clipped to 1; 0 means below 1 / n_resamples), and 1 when the
    delta is exactly 0. Segmentation records use ``per_image`` values (mean over images).

    Returns ``{"delta", "ci95", "p_value", "n_pairs"}``."""
    mean_delta, _, n_pairs, _ = _paired_samples(a_records, b_records, [metric], n_resamples, seed)
    delta, boot = float(mean_delta[0, 0]), mean_delta[0, 1:]
    return {
        "delta": delta,
        "ci95": _percentile_ci(boot, confidence),
        "p_value": _p_value(delta, boot),
        "n_pairs": n_pairs,
    }


def paired_class_deltas(
    a_records: Sequence[Mapping[str, Any]],
    b_records: Sequence[Mapping[str, Any]],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Which class gained: per-class recall deltas A - B with the same paired bootstrap.

    Returns ``{"delta": [C], "ci95": [[lo, hi]] * C, "p_value": [C], "class_names", "n_pairs"}``."""
    mean_delta, _, n_pairs, info = _paired_samples(
        a_records, b_records, [], n_resamples, seed, per_class=True
    )
    deltas = [float(x) for x in mean_delta[:, 0]]
    return {
        "delta": deltas,
        "ci95": [list(_percentile_ci(row[1:], confidence)) for row in mean_delta],
        "p_value": [_p_value(d, row[1:]) for d, row in zip(deltas, mean_delta)],
        "class_names": info.get("class_names"),
        "n_pairs": n_pairs,
    }


def significance_marker(p: float | None) -> str:
    """``***`` p < 0.001, ``**`` p < 0.01, ``*`` p < 0.05, else ``""`` (also for None/nan)."""
    if p is None or not math.isfinite(p):
        return ""
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    if p < 0.05:
        return "*"
    return ""


def ranks_with_ties(entries: Sequence[Mapping[str, Any]], *, higher_is_better: bool = True) -> list[int]:
    """Rank entries (``{"value" or "mean": x, "ci95": (lo, hi)}``), tying those whose CIs overlap.

    An entry's rank is 1 + the number of entries whose CI lies entirely on the better side of its
    own CI, so the best entry and every entry overlapping it share rank 1 and a rank never depends
    on input order. A missing/nan CI counts as the point value. Returned in input order."""
    intervals = []
    for e in entries:
        value = e.get("value", e.get("mean"))
        value = math.nan if value is None else float(value)
        ci = e.get("ci95")
        lo, hi = (value, value) if not ci or ci[0] is None or ci[1] is None else (float(ci[0]), float(ci[1]))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo = hi = value
        intervals.append((lo, hi) if higher_is_better else (-hi, -lo))
    ranks = []
    for lo_i, hi_i in intervals:
        if not math.isfinite(lo_i):  # no value: after every entry that has one
            ranks.append(1 + sum(math.isfinite(lo) for lo, _ in intervals))
            continue
        ranks.append(1 + sum(1 for lo_j, _ in intervals if math.isfinite(lo_j) and lo_j > hi_i))
    return ranks
