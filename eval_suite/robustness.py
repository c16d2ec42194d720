"""Corruption robustness from result records: metric per corruption and severity, mean over
corruptions, corruption error relative to a baseline (mCE), and per-class recall under corruption.

Records come from ``hfssl evaluate --corruption ...`` (one clean record and one record per
corruption x severity per seed, ``record["corruption"] = {name, severity, seed}``). Records are
grouped like the leaderboard groups them (checkpoint x dataset x protocol family x regime x policy x
recipe); within a setting the baseline is the named checkpoint (``baseline=``: display name, spec
or content hash) or, by default, the setting's scratch / random-init run; a setting without one
takes the baseline of the same data, regime and policy under another protocol (the ``scratch``
protocol that ``--compare-to scratch`` runs for a linear probe).

Definitions (Hendrycks & Dietterich, ICLR 2019, "Benchmarking neural network robustness to common
corruptions and perturbations"), with error ``E = 1 - metric`` (balanced accuracy by default, as
the data are imbalanced; AUC works the same way):

* ``CE_c = sum_s E_{s,c}(model) / sum_s E_{s,c}(baseline)`` over severities ``s = 1..5``;
* ``mCE = mean_c CE_c`` (below 1: more robust than the baseline);
* ``relative mCE`` = mean_c of ``sum_s (E_{s,c} - E_clean)`` over the same for the baseline (the
  degradation alone, not the clean error);
* ``mean corrupted`` = the metric averaged over every corruption and severity.

Every value is the mean over the seeds that have it. ``summarise`` returns :class:`RobustnessEntry`
objects; ``format_markdown`` renders them (used by the leaderboard and ``hfssl evaluate``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hfssl.errors import ConfigError

__all__ = [
    "RobustnessEntry",
    "corruption_errors",
    "format_markdown",
    "has_corruptions",
    "summarise",
]


@dataclass
class RobustnessEntry:
    """One checkpoint in one setting under corruption (means over seeds)."""

    checkpoint: str
    checkpoint_id: str
    is_baseline: bool
    setting: Any  # eval_suite.leaderboard.collect.Setting
    metric: str
    clean: float | None
    by_severity: dict[str, dict[int, float]]  # corruption -> severity -> metric
    clean_recall: list[float] | None = None
    recall: dict[str, dict[int, list[float]]] = field(
        default_factory=dict
    )  # corruption -> severity -> per class
    class_names: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    baseline: str | None = None  # the baseline's display name
    ce: dict[str, float] = field(default_factory=dict)
    mce: float | None = None
    relative_mce: float | None = None

    @property
    def corruptions(self) -> list[str]:
        return list(self.by_severity)

    def per_corruption(self) -> dict[str, float]:
        """Metric averaged over the severities of each corruption."""
        return {c: _mean(v.values()) for c, v in self.by_severity.items()}

    @property
    def mean_corrupted(self) -> float | None:
        values = [x for sev in self.by_severity.values() for x in sev.values()]
        return _mean(values) if values else None

    def severity_curve(self) -> dict[int, float]:
        """Metric per severity averaged over corruptions (severity 0 = clean)."""
        out: dict[int, float] = {} if self.clean is None else {0: self.clean}
        for s in range(1, 6):
            values = [sev[s] for sev in self.by_severity.values() if s in sev]
            if values:
                out[s] = _mean(values)
        return out

    def recall_by_severity(self) -> dict[int, list[float]]:
        """Per-class recall per severity averaged over corruptions (0 = clean): which class collapses
        first as the corruption grows."""
        out: dict[int, list[float]] = {} if self.clean_recall is None else {0: list(self.clean_recall)}
        for s in range(1, 6):
            rows = [sev[s] for sev in self.recall.values() if s in sev]
            if rows:
                out[s] = [_mean(col) for col in zip(*rows)]
        return out


def _mean(values: Iterable[float]) -> float:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else math.nan


def has_corruptions(records: Iterable[Mapping[str, Any]]) -> bool:
    return any(r.get("corruption") for r in records)


def corruption_errors(
    model: Mapping[str, Mapping[int, float]],
    baseline: Mapping[str, Mapping[int, float]],
    model_clean: float | None = None,
    baseline_clean: float | None = None,
) -> tuple[dict[str, float], float | None, float | None]:
    """``(CE per corruption, mCE, relative mCE)`` from metric values (errors are ``1 - metric``),
    over the corruptions and severities both have. Relative mCE needs both clean values; a baseline
    without degradation (or error) gives ``nan`` for that corruption."""
    ce: dict[str, float] = {}
    rel: list[float] = []
    for c, sev in model.items():
        shared = [s for s in sev if s in baseline.get(c, {})]
        if not shared:
            continue
        err_m = sum(1.0 - sev[s] for s in shared)
        err_b = sum(1.0 - baseline[c][s] for s in shared)
        ce[c] = err_m / err_b if err_b > 0 else math.nan
        if model_clean is not None and baseline_clean is not None:
            deg_m = sum((1.0 - sev[s]) - (1.0 - model_clean) for s in shared)
            deg_b = sum((1.0 - baseline[c][s]) - (1.0 - baseline_clean) for s in shared)
            rel.append(deg_m / deg_b if deg_b > 0 else math.nan)
    mce = _mean(ce.values()) if ce else None
    relative = _mean(rel) if rel else None
    return ce, mce, relative


def _order(name: str) -> tuple[int, str]:
    """Report order: ``hfssl.data.corruptions.CORRUPTIONS`` (the modality tables' order), then by name."""
    from hfssl.data.corruptions import CORRUPTIONS

    return (CORRUPTIONS.index(name), name) if name in CORRUPTIONS else (len(CORRUPTIONS), name)


def _recall(record: Mapping[str, Any]) -> list[float] | None:
    recall = (record.get("metrics") or {}).get("per_class", {})
    recall = recall.get("recall") if isinstance(recall, Mapping) else None
    return [float("nan") if v is None else float(v) for v in recall] if recall else None


def summarise(
    records: Sequence[Mapping[str, Any]],
    metric: str = "balanced_accuracy",
    baseline: str | None = None,
) -> list[RobustnessEntry]:
    """One :class:`RobustnessEntry` per (checkpoint, setting) that has corrupted records, with CE /
    mCE against ``baseline`` (display name, spec or content hash of a checkpoint in the same
    setting; default the setting's scratch / random-init checkpoint). ``ConfigError`` when a named
    baseline has no corrupted records anywhere."""
    from eval_suite.leaderboard.collect import checkpoint_identity, params_hash, setting_from_record

    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in records:
        _, ident, _ = checkpoint_identity(r)
        params = (r.get("protocol") or {}).get("params")
        key = (ident, setting_from_record(r), params_hash(params))
        groups.setdefault(key, []).append(r)
    entries: list[RobustnessEntry] = []
    for (ident, setting, _params), members in groups.items():
        if not has_corruptions(members):
            continue
        name, _, is_base = checkpoint_identity(members[0])
        values: dict[tuple[str, int], list[float]] = {}
        recalls: dict[tuple[str, int], list[list[float]]] = {}
        clean_vals: list[float] = []
        clean_recalls: list[list[float]] = []
        for r in members:
            value = (r.get("metrics") or {}).get(metric)
            value = None if value is None else float(value)
            c = r.get("corruption")
            if c:
                k = (str(c["name"]), int(c["severity"]))
                if value is not None:
                    values.setdefault(k, []).append(value)
                if _recall(r):
                    recalls.setdefault(k, []).append(_recall(r))  # type: ignore[arg-type]
            else:
                if value is not None:
                    clean_vals.append(value)
                if _recall(r):
                    clean_recalls.append(_recall(r))  # type: ignore[arg-type]
        by_sev: dict[str, dict[int, float]] = {}
        for (c, s), vals in sorted(values.items(), key=lambda kv: (_order(kv[0][0]), kv[0][1])):
            by_sev.setdefault(c, {})[s] = _mean(vals)
        rec: dict[str, dict[int, list[float]]] = {}
        for (c, s), rows in recalls.items():
            rec.setdefault(c, {})[s] = [_mean(col) for col in zip(*rows)]
        entries.append(
            RobustnessEntry(
                checkpoint=name,
                checkpoint_id=ident,
                is_baseline=is_base,
                setting=setting,
                metric=metric,
                clean=_mean(clean_vals) if clean_vals else None,
                by_severity=by_sev,
                clean_recall=[_mean(col) for col in zip(*clean_recalls)] if clean_recalls else None,
                recall=rec,
                class_names=[str(x) for x in (members[0].get("dataset") or {}).get("class_names") or []],
                seeds=sorted({int(r.get("seed", 0)) for r in members}),
            )
        )
    if baseline is not None and not any(_matches(e, baseline, records) for e in entries):
        names = sorted({e.checkpoint for e in entries})
        raise ConfigError(
            f"baseline {baseline!r} has no corrupted records", f"use one of: {', '.join(names) or '(none)'}"
        )
    for e in entries:
        base = _find_baseline(e, entries, baseline, records)
        if base is None or base is e:
            continue
        e.baseline = base.checkpoint
        e.ce, e.mce, e.relative_mce = corruption_errors(e.by_severity, base.by_severity, e.clean, base.clean)
    entries.sort(key=lambda e: (str(e.setting), not e.is_baseline, e.checkpoint))
    return entries


def _matches(entry: RobustnessEntry, wanted: str, records: Sequence[Mapping[str, Any]]) -> bool:
    if wanted in (entry.checkpoint, entry.checkpoint_id):
        return True
    from eval_suite.leaderboard.collect import checkpoint_identity

    for r in records:
        ck = r.get("checkpoint") or {}
        if checkpoint_identity(r)[1] == entry.checkpoint_id and wanted in (
            ck.get("spec"),
            ck.get("content_hash"),
        ):
            return True
    return False


def _find_baseline(
    entry: RobustnessEntry,
    entries: Sequence[RobustnessEntry],
    wanted: str | None,
    records: Sequence[Mapping[str, Any]],
) -> RobustnessEntry | None:
    same = [e for e in entries if e.setting == entry.setting]
    # no baseline in the same protocol (``--compare-to scratch`` on a linear probe trains the
    # ``scratch`` protocol): the baseline of the same data, regime and policy under any protocol
    near = [e for e in entries if e.setting.without_protocol() == entry.setting.without_protocol()]
    for pool in (same, near):
        if wanted is not None:
            found = [e for e in pool if _matches(e, wanted, records)]
        else:
            found = [e for e in pool if e.is_baseline]
        if found:
            return found[0]
    return None


# ------------------------------------------------------------------------------------- rendering


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _short(name: str) -> str:
    return name.replace("_", " ")


def format_markdown(entries: Sequence[RobustnessEntry], *, heading: str = "###") -> str:
    """Markdown: per setting a table (clean, each corruption averaged over severities, mean
    corrupted, mCE and relative mCE vs the baseline), a metric-per-severity table, and the per-class
    recall per severity (averaged over corruptions)."""
    lines: list[str] = []
    settings: dict[Any, list[RobustnessEntry]] = {}
    for e in entries:
        settings.setdefault(e.setting, []).append(e)
    for setting, group in settings.items():
        metric = group[0].metric
        corruptions = list(dict.fromkeys(c for e in group for c in e.corruptions))
        base = next((e.baseline for e in group if e.baseline), None)
        title = f"{setting.dataset_label}, {setting.protocol}, {setting.regime_label}, {setting.policy}"
        lines += [f"{heading} Robustness: {title}", ""]
        lines.append(
            f"{metric.replace('_', ' ')} on the clean and corrupted test split (each corruption: mean over "
            f"severities 1-5; means over seeds); mCE / relative mCE vs {base or 'no baseline'} "
            "(Hendrycks & Dietterich 2019; below 1 = more robust)."
        )
        lines.append("")
        head = ["checkpoint", "clean", *(_short(c) for c in corruptions), "mean corrupted", "mCE", "rel. mCE"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        for e in group:
            per = e.per_corruption()
            cells = [
                e.checkpoint + (" (baseline)" if base == e.checkpoint else ""),
                _f(e.clean),
                *(_f(per.get(c)) for c in corruptions),
                _f(e.mean_corrupted),
                _f(e.mce),
                _f(e.relative_mce),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"{metric.replace('_', ' ')} per severity (mean over corruptions):", ""]
        lines.append("| checkpoint | clean | 1 | 2 | 3 | 4 | 5 |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for e in group:
            curve = e.severity_curve()
            lines.append("| " + " | ".join([e.checkpoint, *(_f(curve.get(s)) for s in range(6))]) + " |")
        if any(e.recall_by_severity() for e in group):
            lines += ["", "Per-class recall per severity (mean over corruptions):", ""]
            lines.append("| checkpoint | class | clean | 1 | 2 | 3 | 4 | 5 |")
            lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
            for e in group:
                rec = e.recall_by_severity()
                n = max((len(v) for v in rec.values()), default=0)
                for k in range(n):
                    cname = e.class_names[k] if k < len(e.class_names) else str(k)
                    cells = [_f(rec[s][k]) if s in rec and k < len(rec[s]) else "–" for s in range(6)]
                    lines.append(f"| {e.checkpoint} | {cname} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
