"""The paper's four studies as resumable pretrain -> evaluate grids (``hfssl study NAME``).

    from eval_suite.studies import run_study
    outcome = run_study("imbalance", preset="smoke", out_dir="studies/imbalance")

Studies: ``imbalance``, ``architecture``, ``transfer``, ``policies`` (one module each: grid
``build`` + claims ``assess``). Machinery: ``grid`` (checkpoint store, cells, resumable runner),
``base`` (presets, comparisons, the verdict rule), ``report`` (REPORT.md), who runs the cells
(``eval_suite.launchers``: this process, or submitit jobs on Slurm), ``parity`` (baseline
parity with MedMNIST v2), ``demo`` (``hfssl demo``). Heavy imports stay inside functions.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfssl.errors import ConfigError

STUDY_NAMES = ("imbalance", "architecture", "transfer", "policies")


def get_study(name: str):
    """The :class:`~eval_suite.studies.base.Study` called ``name``."""
    if name not in STUDY_NAMES:
        raise ConfigError(f"unknown study {name!r}", f"use one of: {', '.join(STUDY_NAMES)}")
    return importlib.import_module(f"eval_suite.studies.{name}").STUDY


@dataclass
class StudyOutcome:
    """What ``run_study`` produced."""

    report: Path
    claims: list[Any]
    grid: Any


def run_study(
    name: str,
    *,
    preset: str = "smoke",
    out_dir: str | os.PathLike,
    datasets: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    checkpoint_store: str | os.PathLike | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    device: str = "auto",
    plots: bool = True,
    launcher: Any | None = None,
) -> StudyOutcome:
    """Run (or resume) study ``name`` and write ``out_dir/REPORT.md`` + leaderboard.

    ``launcher`` (:func:`eval_suite.launchers.make_launcher`): who runs the grid's jobs; default
    this process. The report is the same whoever ran the cells."""
    from eval_suite.studies.base import get_preset
    from eval_suite.studies.grid import CheckpointStore, run_grid
    from eval_suite.studies.report import write_report

    study = get_study(name)
    chosen = get_preset(preset)
    if methods is not None:
        from hfssl.pretext import list_pretext_tasks

        known = list_pretext_tasks()
        bad = [m for m in methods if m not in known]
        if bad or not methods:
            raise ConfigError(
                f"unknown method(s): {', '.join(bad) or '(none given)'}", f"use some of: {', '.join(known)}"
            )
    cells = study.build(chosen, datasets, methods)
    if not cells:
        raise ConfigError(
            f"the {name} study has no cells for these datasets/methods", "widen --datasets/--methods"
        )
    out = Path(out_dir)
    grid = run_grid(
        cells,
        out,
        store=CheckpointStore(checkpoint_store),
        data_dir=data_dir,
        cache_dir=cache_dir,
        device=device,
        title=f"study {name}",
        launcher=launcher,
    )
    report, claims = write_report(out, study, chosen, grid, leaderboard_plots=plots)
    return StudyOutcome(report=report, claims=claims, grid=grid)


__all__ = ["STUDY_NAMES", "StudyOutcome", "get_study", "run_study"]
