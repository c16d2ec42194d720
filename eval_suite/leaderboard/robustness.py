"""The leaderboard's robustness section: records from ``hfssl evaluate --corruption ...``.

The ranked tables hold clean-test results only (``collect`` leaves corrupted records out of the
run sets); this module turns the corrupted ones into, per setting, a table (clean, each corruption
averaged over severities, mean corrupted, mCE and relative mCE vs the setting's baseline - see
``eval_suite.robustness``) in Markdown and HTML, and a plot of the metric vs severity (0 = clean),
one line per checkpoint.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval_suite.robustness import RobustnessEntry, format_markdown, has_corruptions, summarise


def robustness_entries(
    records: Sequence[Mapping[str, Any]], metric: str = "balanced_accuracy", baseline: str | None = None
) -> list[RobustnessEntry]:
    """Robustness entries of the records (empty when none is corrupted)."""
    return summarise(records, metric=metric, baseline=baseline) if has_corruptions(records) else []


def _by_setting(entries: Sequence[RobustnessEntry]) -> dict[Any, list[RobustnessEntry]]:
    out: dict[Any, list[RobustnessEntry]] = {}
    for e in entries:
        out.setdefault(e.setting, []).append(e)
    return out


def robustness_plots(entries: Sequence[RobustnessEntry], out_dir: str | os.PathLike) -> list:
    """One PNG per setting: the metric (mean over corruptions) vs severity, a line per checkpoint."""
    from eval_suite.leaderboard.plots import PlotInfo, _slug, plot_metric_curves

    out_dir = Path(out_dir)
    infos = []
    for setting, group in _by_setting(entries).items():
        series = {
            e.checkpoint: [
                (float(s), v, None, None) for s, v in e.severity_curve().items() if math.isfinite(v)
            ]
            for e in group
        }
        series = {k: v for k, v in series.items() if v}
        if not series:
            continue
        metric = group[0].metric
        title = (
            f"{setting.dataset_label}, {setting.protocol}: {metric.replace('_', ' ')} vs corruption severity"
        )
        path = (
            out_dir
            / "plots"
            / f"robustness-{_slug(f'{setting.dataset_label}-{setting.protocol}-{setting.regime_label}-{setting.policy}')}.png"
        )
        plot_metric_curves(
            series, path, xlabel="severity (0 = clean; mean over corruptions)", metric=metric, title=title
        )
        infos.append(
            PlotInfo(
                path=path,
                relpath=path.relative_to(out_dir).as_posix(),
                title=title,
                kind="robustness",
                dataset=setting.dataset_label,
                protocol=setting.protocol,
                regime=setting.regime_label,
            )
        )
    return infos


def robustness_markdown(entries: Sequence[RobustnessEntry]) -> str:
    """The ``## Robustness`` section (empty string without entries)."""
    if not entries:
        return ""
    return "## Robustness under corruption\n\n" + format_markdown(entries, heading="###")


def _cell(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"


def robustness_html(entries: Sequence[RobustnessEntry]) -> str:
    """The robustness tables as an HTML ``<section>`` (empty string without entries)."""
    if not entries:
        return ""
    parts = ['<section id="robustness"><h2>Robustness under corruption</h2>']
    for setting, group in _by_setting(entries).items():
        corruptions = list(dict.fromkeys(c for e in group for c in e.corruptions))
        base = next((e.baseline for e in group if e.baseline), None)
        metric = group[0].metric.replace("_", " ")
        title = f"{setting.dataset_label}, {setting.protocol}, {setting.regime_label}, {setting.policy}"
        parts.append(f"<h3>{html.escape(title)}</h3>")
        parts.append(
            f"<p>{html.escape(metric)}: clean, each corruption (mean over severities 1-5), mean corrupted; "
            f"mCE / relative mCE vs {html.escape(base or 'no baseline')} (below 1 = more robust).</p>"
        )
        head = [
            "checkpoint",
            "clean",
            *(c.replace("_", " ") for c in corruptions),
            "mean corrupted",
            "mCE",
            "rel. mCE",
        ]
        parts.append(
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>"
        )
        for e in group:
            per = e.per_corruption()
            cells = [
                _cell(e.clean),
                *(_cell(per.get(c)) for c in corruptions),
                _cell(e.mean_corrupted),
                _cell(e.mce),
                _cell(e.relative_mce),
            ]
            cls = ' class="baseline"' if base == e.checkpoint else ""
            parts.append(
                f"<tr{cls}><td>{html.escape(e.checkpoint)}</td>"
                + "".join(f"<td>{c}</td>" for c in cells)
                + "</tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</section>")
    return "\n".join(parts)
