"""Markdown (terminal and Hub README) and CSV renderings of a ``Leaderboard``.

Markdown shows numbers to 4 decimals; the CSV keeps full precision (``repr`` of the floats), so a
spreadsheet or a test can compare it exactly with the JSON records.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence

from eval_suite.leaderboard.collect import format_fraction
from eval_suite.leaderboard.table import Entry, Leaderboard

DIGITS = 4
CSV_COLUMNS = [
    "dataset",
    "image_size",
    "task",
    "protocol",
    "label_fraction",
    "imbalance_ratio",
    "policy",
    "metric",
    "rank",
    "tied",
    "checkpoint",
    "is_baseline",
    "mean",
    "std",
    "n_seeds",
    "ci_low",
    "ci_high",
    "ci_kind",
    "baseline",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "significance",
    "source",
    "note",
    "trainable_params",
    "total_params",
]


def fmt(value: float | None, digits: int = DIGITS, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def params_text(e: Entry) -> str:
    """``75,266 (1.37 %)``: trainable parameters and their share of the model; ``–`` if unknown."""
    if e.trainable_params is None:
        return "–"
    share = e.trainable_percent
    return f"{e.trainable_params:,}" + (f" ({share:.3g} %)" if share is not None else "")


def mean_text(e: Entry) -> str:
    return fmt(e.mean) if e.std is None else f"{fmt(e.mean)} ± {fmt(e.std)}"


def ci_text(e: Entry) -> str:
    if e.ci_low is None or e.ci_high is None:
        return "–"
    return f"[{fmt(e.ci_low)}, {fmt(e.ci_high)}]"


def delta_ci_text(e: Entry) -> str:
    if e.delta_ci_low is None or e.delta_ci_high is None:
        return "–"
    return f"[{fmt(e.delta_ci_low, signed=True)}, {fmt(e.delta_ci_high, signed=True)}]"


def delta_text(e: Entry) -> str:
    if e.is_baseline:
        return "baseline"
    if e.delta is None:
        return "–"
    note = " †" if e.note else ""
    return f"{fmt(e.delta, signed=True)}{(' ' + e.marker) if e.marker else ''}{note}"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_text(text: str) -> str:
    """A name from a record or card (untrusted) as literal Markdown text: no raw HTML, one line."""
    return html.escape(" ".join(str(text).split()), quote=False)


def render_markdown(lb: Leaderboard, *, plots: Sequence = (), title: str = "Leaderboard") -> str:
    """The whole leaderboard as Markdown: one ranked table per setting, legend, plots, problems."""
    lines = [f"# {title}", ""]
    lines.append(
        f"{sum(len(g.entries) for g in lb.groups)} results in {len(lb.groups)} settings, from "
        f"{lb.n_records} result records and {lb.n_card_rows} model-card results"
        + (f"; {len(lb.problems)} inputs skipped (listed at the end)." if lb.problems else ".")
    )
    lines += [
        "",
        "Ranked by the mean over seeds (best first). `=k` marks a tie: entries whose 95 % CIs overlap share a"
        " rank. CI: t-interval over seeds when there are ≥ 2 seeds, else bootstrap over test samples."
        " Δ vs scratch: paired bootstrap difference against the same-seed scratch baseline;"
        " significance `*` p<0.05, `**` p<0.01, `***` p<0.001.",
        "",
    ]
    for g in lb.groups:
        s = g.setting
        lines.append(f"## {_md_text(f'{s.dataset_label} · {s.protocol} · {s.regime_label}')}")
        lines.append("")
        policy = " ".join(s.policy.replace("`", "'").split())  # a code span: no backtick may end it
        lines.append(
            f"policy: `{policy}` · metric: **{_md_text(g.metric)}** "
            f"({'higher' if g.higher_is_better else 'lower'} is better)"
        )
        lines.append("")
        lines.append(
            f"| rank | checkpoint | {_md_cell(_md_text(g.metric))} (mean ± std) | 95% CI | seeds | Δ vs scratch | Δ 95% CI | p | trainable params |"
        )
        lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for e in g.entries:
            name = _md_text(f"{e.checkpoint} (baseline)" if e.is_baseline else e.checkpoint)
            dci = delta_ci_text(e)
            cells = [
                e.rank_label,
                name,
                mean_text(e),
                ci_text(e),
                str(e.n_seeds),
                delta_text(e),
                dci,
                fmt_p(e.p_value),
                params_text(e),
            ]
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        lines.append("")
        lines += [f"† {_md_text(e.checkpoint)}: {_md_text(e.note)}" for e in g.entries if e.note]
        if any(e.note for e in g.entries):
            lines.append("")
    if plots:
        lines += ["## Plots", ""]
        for p in plots:
            title = _md_text(p.title).replace("[", "\\[").replace("]", "\\]")
            lines += [f"### {title}", "", f"![{title}]({p.relpath})", ""]
    if lb.problems:
        lines += [f"## Skipped inputs ({len(lb.problems)})", ""]
        lines += [f"- {_md_text(p)}" for p in lb.problems]
        lines.append("")
    return "\n".join(lines)


def render_csv(lb: Leaderboard) -> str:
    """One row per leaderboard entry, full-precision numbers, empty cells for missing values."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in lb.rows():
        writer.writerow({k: _csv_value(row.get(k)) for k in CSV_COLUMNS})
    return buf.getvalue()


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return v


__all__ = ["render_markdown", "render_csv", "CSV_COLUMNS", "format_fraction"]
