"""Build the leaderboard: group run sets by setting, summarise a metric, rank with ties, compare
with scratch.

For each ``Setting`` (dataset × protocol × data regime × policy) and the ranking metric:

* **mean ± std over seeds** and a **95 % CI**: over seeds (``stats.summarise``, t-interval) when
  there are ≥ 2 seeds, else the record's bootstrap CI over test samples;
* **rank**: by mean, best first; entries whose CIs overlap share a rank (``stats.ranks_with_ties``) and
  are marked as ties, so a leaderboard never claims an order the data do not support;
* **delta vs scratch**: the paired bootstrap difference against the setting's scratch/random-init
  baseline (same seeds, same test samples: ``stats.paired_bootstrap``), its CI, p-value and
  significance marker (``stats.significance_marker``). Card-only results carry no per-sample outputs,
  so their delta is the difference of means and significance comes from the card when it kept it.
  ``warmup``/``frozen`` settings compare with the ``scratch`` baseline of the same dataset, regime
  and policy (scratch is the finetune recipe from random init).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eval_suite.leaderboard.collect import Collection, MetricSummary, RunSet, Setting, record_metric
from hfssl.errors import ConfigError, HfsslError

BASELINE_FALLBACK_PROTOCOLS = {"warmup", "frozen"}


@dataclass
class Entry:
    """One leaderboard row: a checkpoint's ranking-metric result in one setting."""

    setting: Setting
    metric: str
    checkpoint: str
    is_baseline: bool
    source: str
    mean: float
    std: float | None
    n_seeds: int
    ci_low: float | None
    ci_high: float | None
    ci_kind: str
    rank: int = 0
    tied: bool = False
    baseline: str | None = None
    delta: float | None = None
    delta_ci_low: float | None = None
    delta_ci_high: float | None = None
    p_value: float | None = None
    marker: str = ""
    note: str = ""
    trainable_params: int | None = None
    """Parameters the protocol trained (records' ``parameters`` block; ``None`` when not recorded)."""
    total_params: int | None = None
    runset: RunSet | None = field(default=None, repr=False, compare=False)

    @property
    def trainable_percent(self) -> float | None:
        if self.trainable_params is None or not self.total_params:
            return None
        return 100.0 * self.trainable_params / self.total_params

    @property
    def rank_label(self) -> str:
        """'1', or '=2' for a tie within CI."""
        return f"={self.rank}" if self.tied else str(self.rank)

    def as_row(self) -> dict[str, Any]:
        """Flat row (CSV/HTML/tests): every number at full precision."""
        s = self.setting
        return {
            "dataset": s.dataset,
            "image_size": s.image_size,
            "task": s.task,
            "protocol": s.protocol,
            "label_fraction": s.label_fraction,
            "imbalance_ratio": s.imbalance_ratio,
            "policy": s.policy,
            "metric": self.metric,
            "rank": self.rank,
            "tied": self.tied,
            "checkpoint": self.checkpoint,
            "is_baseline": self.is_baseline,
            "mean": self.mean,
            "std": self.std,
            "n_seeds": self.n_seeds,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "ci_kind": self.ci_kind,
            "baseline": self.baseline,
            "delta": self.delta,
            "delta_ci_low": self.delta_ci_low,
            "delta_ci_high": self.delta_ci_high,
            "p_value": self.p_value,
            "significance": self.marker,
            "source": self.source,
            "note": self.note,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
        }


@dataclass
class Group:
    """The ranked entries of one setting for one metric."""

    setting: Setting
    metric: str
    higher_is_better: bool
    entries: list[Entry]

    @property
    def title(self) -> str:
        s = self.setting
        return f"{s.dataset_label} · {s.protocol} · {s.regime_label} · {s.policy}"


@dataclass
class Leaderboard:
    groups: list[Group]
    problems: list[str]
    n_records: int
    n_card_rows: int
    collection: Collection | None = field(default=None, repr=False)

    def rows(self) -> list[dict[str, Any]]:
        return [e.as_row() for g in self.groups for e in g.entries]


ORDINAL_RANK_METRICS = ("qwk", "balanced_accuracy")


def _default_metric(setting: Setting, ordinal_metric: str = "qwk") -> str:
    from eval_suite.metrics import DEFAULT_RANK_METRIC

    if setting.task == "ordinal":
        return ordinal_metric
    return DEFAULT_RANK_METRIC[setting.kind]


def _higher_is_better(metric: str) -> bool:
    from eval_suite.metrics import HIGHER_IS_BETTER

    return bool(HIGHER_IS_BETTER.get(metric, True))


def summarise_runset(rs: RunSet, metric: str) -> MetricSummary | None:
    """The metric's summary over a run set's seeds (``None`` when no seed has it)."""
    if not rs.records:
        return rs.summary.get(metric)
    from eval_suite.stats import metric_bounds, summarise

    pairs = [(r, record_metric(r, metric)) for r in rs.records]
    pairs = [(r, v) for r, v in pairs if v is not None]
    if not pairs:
        return None
    values = [v for _, v in pairs]
    s = summarise(values, metric_bounds(metric))
    n = int(s["n"])
    if n >= 2:
        ci = s.get("ci95")
        return MetricSummary(float(s["mean"]), _float(s.get("std")), n, _pair(ci), "seeds")
    ci = (pairs[0][0].get("ci95") or {}).get(metric)
    return MetricSummary(float(s["mean"]), None, 1, _pair(ci), "bootstrap" if ci is not None else "")


def _float(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _pair(ci: Any) -> tuple[float, float] | None:
    if ci is None:
        return None
    lo, hi = _float(ci[0]), _float(ci[1])
    return None if lo is None or hi is None else (lo, hi)


def build_leaderboard(
    collection: Collection,
    *,
    metric: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    ordinal_metric: str = "qwk",
) -> Leaderboard:
    """Rank every setting's run sets by ``metric`` (default: balanced accuracy / Dice by task;
    ``ordinal_metric`` -- ``qwk`` or ``balanced_accuracy`` -- for graded labels)."""
    if ordinal_metric not in ORDINAL_RANK_METRICS:
        raise ConfigError(
            f"unknown ordinal ranking metric {ordinal_metric!r}",
            f"use one of: {', '.join(ORDINAL_RANK_METRICS)}",
        )
    by_setting: dict[Setting, list[RunSet]] = {}
    for rs in collection.runsets:
        by_setting.setdefault(rs.setting, []).append(rs)
    groups: list[Group] = []
    unknown_metric = True
    for setting in sorted(by_setting, key=_setting_sort_key):
        m = metric or _default_metric(setting, ordinal_metric)
        hib = _higher_is_better(m)
        entries = []
        for rs in by_setting[setting]:
            summary = summarise_runset(rs, m)
            if summary is None:
                continue
            unknown_metric = False
            entries.append(
                Entry(
                    setting=setting,
                    metric=m,
                    checkpoint=rs.checkpoint,
                    is_baseline=rs.is_baseline,
                    source=rs.source,
                    mean=summary.mean,
                    std=summary.std,
                    n_seeds=summary.n,
                    ci_low=summary.ci95[0] if summary.ci95 else None,
                    ci_high=summary.ci95[1] if summary.ci95 else None,
                    ci_kind=summary.ci_kind,
                    runset=rs,
                    **_parameter_counts(rs),
                )
            )
        if not entries:
            continue
        _rank(entries, hib)
        baseline = _find_baseline(setting, entries, by_setting)
        if baseline is not None:
            for e in entries:
                if e.runset is not baseline:
                    _compare(e, baseline, m, n_resamples=n_resamples, seed=seed)
        groups.append(Group(setting, m, hib, entries))
    if metric and unknown_metric and collection.runsets:
        raise ConfigError(
            f"no collected result has the metric {metric!r}",
            "use a metric named in eval_suite/README.md (e.g. balanced_accuracy, auc, macro_f1, dice)",
        )
    return Leaderboard(
        groups, list(collection.problems), collection.n_records, collection.n_card_rows, collection
    )


def _parameter_counts(rs: RunSet) -> dict[str, int | None]:
    """Trainable / total parameters of a run set's records (the same for every seed of a run)."""
    for record in rs.records:
        counts = record.get("parameters")
        if isinstance(counts, dict) and "trainable" in counts:
            total = counts.get("total")
            return {
                "trainable_params": int(counts["trainable"]),
                "total_params": None if total is None else int(total),
            }
    return {"trainable_params": None, "total_params": None}


def _setting_sort_key(s: Setting) -> tuple:
    return (
        s.dataset,
        str(s.image_size or 0).zfill(8),
        s.protocol,
        -s.label_fraction,
        s.imbalance_ratio,
        s.policy,
    )


def _rank(entries: list[Entry], higher_is_better: bool) -> None:
    """Sort best first and set ranks; overlapping CIs share a rank (``stats.ranks_with_ties``)."""
    from eval_suite.stats import ranks_with_ties

    sign = -1.0 if higher_is_better else 1.0
    entries.sort(key=lambda e: (sign * e.mean, e.checkpoint))
    ranks = ranks_with_ties(
        [{"mean": e.mean, "ci95": None if e.ci_low is None else (e.ci_low, e.ci_high)} for e in entries],
        higher_is_better=higher_is_better,
    )
    counts: dict[int, int] = {}
    for r in ranks:
        counts[int(r)] = counts.get(int(r), 0) + 1
    for e, r in zip(entries, ranks):
        e.rank = int(r)
        e.tied = counts[int(r)] > 1


def _find_baseline(
    setting: Setting, entries: Sequence[Entry], by_setting: dict[Setting, list[RunSet]]
) -> RunSet | None:
    """The setting's scratch/random-init run set (or, for warmup/frozen, the finetune group's)."""
    candidates = [e.runset for e in entries if e.is_baseline and e.runset is not None]
    if not candidates and setting.protocol in BASELINE_FALLBACK_PROTOCOLS:
        for other, runsets in by_setting.items():
            if other.protocol == "finetune" and other.without_protocol() == setting.without_protocol():
                candidates = [rs for rs in runsets if rs.is_baseline]
                break
    if not candidates:
        return None
    # Several baselines: prefer the same recipe (protocol params) as the entries, then the most
    # seeds, then the name (deterministic).
    params = {e.runset.extras.get("params") for e in entries if e.runset is not None and not e.is_baseline}
    return sorted(
        candidates,
        key=lambda rs: (rs.extras.get("params") not in params, -max(len(rs.records), 1), rs.checkpoint),
    )[0]


def _compare(entry: Entry, baseline: RunSet, metric: str, *, n_resamples: int, seed: int) -> None:
    from eval_suite.stats import paired_bootstrap, significance_marker

    entry.baseline = baseline.checkpoint
    rs = entry.runset
    assert rs is not None
    if rs.records and baseline.records:
        try:
            res = paired_bootstrap(rs.records, baseline.records, metric, n_resamples=n_resamples, seed=seed)
        except (
            HfsslError,
            ValueError,
            KeyError,
        ) as exc:  # no common seeds / different test sets / no outputs
            entry.note = f"paired bootstrap unavailable ({exc}); delta is the difference of means"
        else:
            entry.delta = _float(res["delta"])
            ci = _pair(res.get("ci95"))
            entry.delta_ci_low, entry.delta_ci_high = ci if ci else (None, None)
            entry.p_value = _float(res.get("p_value"))
            entry.marker = significance_marker(entry.p_value) if entry.p_value is not None else ""
            return
    base = summarise_runset(baseline, metric)
    if base is None:
        return
    # Card-only (or unpaired) results: difference of means; significance only if the card kept it.
    entry.delta = entry.mean - base.mean
