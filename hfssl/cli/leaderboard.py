"""``hfssl leaderboard INPUT... --out DIR``: rank evaluated checkpoints.

Inputs are results folders (``hfssl evaluate --results-dir``), record ``.json`` files, model cards
(a ``README.md`` or a checkpoint folder holding one) and Hub repo ids (the card is fetched through
the normal Hub cache). Writes ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard.html`` and
``plots/*.png`` into ``--out``, prints the Markdown tables, and reports every skipped input.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass
class LeaderboardArgs:
    """Options of ``hfssl leaderboard``."""

    out: str = field(default="leaderboard", metadata={"help": "output folder (created if missing)"})
    metric: str | None = field(
        default=None,
        metadata={
            "help": "ranking metric (default: balanced_accuracy for classification, dice for segmentation, "
            "--ordinal-metric for graded labels)"
        },
    )
    ordinal_metric: str = field(
        default="qwk",
        metadata={"help": "ranking metric of ordinal (graded) settings: qwk or balanced_accuracy"},
    )
    plots: bool = field(default=True, metadata={"help": "write the PNG plots (--no-plots to skip them)"})
    title: str = field(default="hfssl leaderboard", metadata={"help": "title of the Markdown and HTML pages"})
    n_resamples: int = field(
        default=1000, metadata={"help": "bootstrap resamples for the paired comparison with scratch"}
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision for repo-id inputs"})
    quiet: bool = field(default=False, metadata={"help": "do not print the Markdown tables"})


def run(argv: list[str]) -> int:
    from hfssl.errors import ConfigError
    from hfssl.utils.args import make_parser, parse

    parser = make_parser(
        "hfssl leaderboard",
        "Rank evaluated checkpoints per dataset × protocol × data regime × policy (mean ± CI over seeds,"
        " ties within CI, delta vs scratch with significance) and write Markdown, CSV, HTML and plots.",
        [LeaderboardArgs],
        examples=[
            "hfssl leaderboard results/ --out leaderboard/",
            "hfssl leaderboard results/ --metric auc --out lb_auc/",
            "hfssl leaderboard results/ ./ckpt_simclr/ org/hfssl-byol-breastmnist --out leaderboard/",
            "hfssl leaderboard results/ --out leaderboard/ --no-plots --quiet",
        ],
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="RESULTS_DIR_OR_REPO_ID",
        help="results folders, record .json files, model cards / checkpoint folders, or Hub repo ids",
    )
    args, extra = parse(parser, argv)
    if not extra.inputs:
        raise ConfigError(
            "no inputs given", "pass at least one results folder, record file, card folder or Hub repo id"
        )
    from eval_suite.leaderboard import make_leaderboard

    report = make_leaderboard(
        extra.inputs,
        args.out,
        metric=args.metric,
        ordinal_metric=args.ordinal_metric,
        plots=args.plots,
        title=args.title,
        n_resamples=args.n_resamples,
        revision=args.revision,
    )
    lb = report.leaderboard
    if not args.quiet:
        print(
            report.markdown.read_text(encoding="utf-8").split("\n## Plots")[0].split("\n## Skipped inputs")[0]
        )
    n_entries = sum(len(g.entries) for g in lb.groups)
    print(
        f"leaderboard: {n_entries} results in {len(lb.groups)} settings from {lb.n_records} records and "
        f"{lb.n_card_rows} card results; wrote {report.markdown}, {report.csv}, {report.html} "
        f"and {len(report.plots)} plots"
    )
    if report.problems:
        print(f"leaderboard: skipped {len(report.problems)} malformed or partial inputs:", file=sys.stderr)
        for p in report.problems:
            print(f"  - {p}", file=sys.stderr)
    return 0
