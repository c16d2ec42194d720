"""``hfssl study NAME --preset smoke|cpu|paper --out DIR``: one of the paper's four studies.

Runs the study's pretrain -> evaluate grid (in this process, or one submitit job per pretraining /
evaluation with ``--launcher submitit``; resumable: finished cells are skipped, pretrained
checkpoints are shared through the checkpoint store) and writes ``DIR/REPORT.md`` (each claim with
agree / disagree / can't tell and the CIs behind it) plus the leaderboard (md, csv, html, plots).
"""

from __future__ import annotations

from dataclasses import dataclass, field

STUDIES = ("imbalance", "architecture", "transfer", "policies")


@dataclass
class StudyArgs:
    """Options of ``hfssl study``."""

    out: str | None = field(default=None, metadata={"help": "output folder (default: studies/NAME-PRESET)"})
    preset: str = field(
        default="smoke",
        metadata={
            "help": "smoke (minutes, a plumbing check), cpu (about an hour per study), paper (GPU scale)"
        },
    )
    datasets: list[str] | None = field(
        default=None, metadata={"help": "restrict to these datasets: breastmnist adrenalmnist3d drive"}
    )
    methods: list[str] | None = field(
        default=None, metadata={"help": "pretext methods (default: the preset's, e.g. rot simclr ae for cpu)"}
    )
    checkpoint_store: str | None = field(
        default=None,
        metadata={
            "help": "shared pretrained checkpoints (default: $HFSSL_CHECKPOINT_STORE, else "
            "~/.cache/hfssl/checkpoints)"
        },
    )
    data_dir: str | None = field(default=None, metadata={"help": "data root (default: $HFSSL_DATA_DIR)"})
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "feature cache (default: $HFSSL_EVAL_CACHE or ~/.cache/hfssl/features)"},
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:1, mps"})
    plots: bool = field(default=True, metadata={"help": "write leaderboard plots (--no-plots to skip)"})


def run_status(argv: list[str]) -> int:
    """``hfssl study status OUT``: every cell of a study folder as done / running / queued / failed."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="hfssl study status",
        description="List the cells of a study's output folder as done / running / queued / failed, with wall "
        "times, job ids and the last log lines of failures (local and submitit runs alike).",
    )
    parser.add_argument("out", metavar="OUT", help="the study's --out folder")

    def one_line_error(message: str) -> None:
        print(
            f"hfssl study: error: {' '.join(message.split())} (fix: see 'hfssl study status --help')",
            file=sys.stderr,
        )
        raise SystemExit(2)

    parser.error = one_line_error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    from eval_suite.studies.grid import format_status, grid_status

    print(format_status(grid_status(args.out)))
    return 0


def run(argv: list[str]) -> int:
    if argv[:1] == ["status"]:
        return run_status(argv[1:])
    from hfssl.cli.launch import LauncherArgs, launcher_from_args
    from hfssl.errors import ConfigError
    from hfssl.utils.args import make_parser, parse

    parser = make_parser(
        "hfssl study",
        "Run one of the paper's four studies (imbalance, architecture, transfer, policies) as a resumable "
        "pretrain -> evaluate grid and write DIR/REPORT.md: each claim of Zhang et al. (2023) with agree / "
        "disagree / can't tell, decided from paired-bootstrap confidence intervals, plus a leaderboard (md, csv, "
        "html, plots). Kill it and run the same command again: finished cells are not recomputed.",
        [StudyArgs, LauncherArgs],
        examples=[
            "hfssl study imbalance --preset smoke --out studies/imbalance-smoke",
            "hfssl study imbalance --preset cpu --out reports/imbalance-cpu",
            "hfssl study transfer --preset cpu --methods rot simclr ae --out reports/transfer-cpu",
            "hfssl study policies --preset cpu --datasets breastmnist --out studies/policies",
            "hfssl study architecture --preset paper --device cuda --out studies/architecture  "
            "(see scripts/run_study.sh)",
            "hfssl study imbalance --preset paper --out studies/imbalance --launcher submitit --slurm-partition gpu "
            "--gpus-per-job 1 --max-parallel 32   (one Slurm job per pretraining / evaluation)",
            "hfssl study status studies/imbalance   (cells done / running / queued / failed)",
        ],
    )
    parser.add_argument("name", metavar="NAME", help=f"the study: {', '.join(STUDIES)}")
    args, launch_args, extra = parse(parser, argv)
    name = extra.name
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r}", f"use one of: {', '.join(STUDIES)} (or: status OUT)")
    launcher = launcher_from_args(launch_args)
    from eval_suite.studies import run_study

    out = args.out or f"studies/{name}-{args.preset}"
    outcome = run_study(
        name,
        preset=args.preset,
        out_dir=out,
        datasets=args.datasets,
        methods=args.methods,
        checkpoint_store=args.checkpoint_store,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        device=args.device,
        plots=args.plots,
        launcher=launcher,
    )
    grid = outcome.grid
    print(f"\nstudy {name} ({args.preset}): {len(grid.computed)} cells computed, {len(grid.skipped)} reused")
    width = max(len(c.key) for c in outcome.claims)
    for claim in outcome.claims:
        print(f"  {claim.key:<{width}}  {claim.verdict:<10}  {claim.reason}")
    print(f"report: {outcome.report}")
    return 0
