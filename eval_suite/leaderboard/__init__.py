"""The leaderboard: collect evaluation records and model-card results, rank checkpoints per
dataset × protocol × data regime × policy, and write ``leaderboard.md``, ``leaderboard.csv``, a
self-contained ``leaderboard.html`` and PNG plots. Records of corrupted test splits
(``--corruption``) are not ranked; they make the robustness section (``robustness``).

    from eval_suite.leaderboard import make_leaderboard
    report = make_leaderboard(["results/", "org/my-ssl-model"], "leaderboard/")

Submodules: ``collect`` (inputs → run sets), ``table`` (ranking, ties, delta vs scratch),
``render_md`` (Markdown + CSV), ``render_html``, ``plots``. Heavy imports stay inside functions.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LeaderboardReport:
    """What ``make_leaderboard`` wrote and what it skipped."""

    out_dir: Path
    markdown: Path
    csv: Path
    html: Path
    plots: list = field(default_factory=list)
    leaderboard: object | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [self.markdown, self.csv, self.html, *(p.path for p in self.plots)]


def make_leaderboard(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    metric: str | None = None,
    ordinal_metric: str = "qwk",
    plots: bool = True,
    title: str = "hfssl leaderboard",
    n_resamples: int = 1000,
    revision: str | None = None,
    token: str | bool | None = None,
) -> LeaderboardReport:
    """Collect ``inputs`` (results folders, record files, card folders/files, Hub repo ids), rank,
    and write the Markdown, CSV and HTML leaderboards (+ plots) into ``out_dir``.

    Malformed or partial inputs are listed in ``report.problems`` (and in the outputs), never fatal.
    Raises ``DataError`` when nothing usable was found.
    """
    from eval_suite.leaderboard.collect import collect
    from eval_suite.leaderboard.plots import make_plots
    from eval_suite.leaderboard.render_html import render_html
    from eval_suite.leaderboard.render_md import render_csv, render_markdown
    from eval_suite.leaderboard.robustness import (
        robustness_entries,
        robustness_html,
        robustness_markdown,
        robustness_plots,
    )
    from eval_suite.leaderboard.table import build_leaderboard
    from hfssl.errors import DataError
    from hfssl.utils.io import atomic_path, ensure_dir

    collection = collect(inputs, revision=revision, token=token)
    lb = build_leaderboard(collection, metric=metric, n_resamples=n_resamples, ordinal_metric=ordinal_metric)
    if not lb.groups:
        detail = f"; {len(lb.problems)} problem(s), first: {lb.problems[0]}" if lb.problems else ""
        raise DataError(
            f"no usable evaluation results in {', '.join(map(str, inputs))}{detail}",
            "run 'hfssl evaluate ... --results-dir DIR' first, or pass a folder/card/repo with results",
        )
    out = Path(out_dir)
    ensure_dir(out, "--out folder")
    plot_infos = make_plots(lb, out) if plots else []
    # corrupted-test records (--corruption): a robustness section + metric-vs-severity plots
    robust = robustness_entries(
        collection.records,
        metric=metric if metric in ("balanced_accuracy", "auc", "accuracy") else "balanced_accuracy",
    )
    if plots:
        plot_infos += robustness_plots(robust, out)
    md, csv_path, html = out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard.html"
    page = render_html(lb, plots=plot_infos, title=title)
    if robust:
        page = page.replace("</body>", robustness_html(robust) + "\n</body>", 1)
    texts = {
        md: render_markdown(lb, plots=plot_infos, title=title)
        + ("\n" + robustness_markdown(robust) if robust else ""),
        csv_path: render_csv(lb),
        html: page,
    }
    # all three written to temporary files first: a failure (full disk) leaves none of them half-updated
    with contextlib.ExitStack() as stack:
        for path, text in texts.items():
            stack.enter_context(atomic_path(path)).write_text(text, encoding="utf-8")
    return LeaderboardReport(out, md, csv_path, html, plot_infos, lb, list(lb.problems))


__all__ = ["make_leaderboard", "LeaderboardReport"]
