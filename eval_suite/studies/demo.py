"""``hfssl demo``: the README's main job, end to end in minutes on a laptop CPU.

Pretrains two methods of different families (ROT, predictive; SimCLR, contrastive) briefly on
BreastMNIST 28 px, evaluates them and the scratch baseline with the linear probe and finetuning
(3 seeds, every imbalance-aware metric), and writes a leaderboard (md, csv, html, plots) into the
output folder. It is a grid (``eval_suite.studies.grid``), so re-running reuses every finished
pretraining and evaluation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval_suite.studies.grid import Cell, CheckpointStore, GridResult, PretrainSpec, run_grid


@dataclass
class DemoSettings:
    """Scale of the demo (defaults: under 10 minutes on a 2-core CPU)."""

    methods: tuple[str, ...] = ("rot", "simclr")
    backbone: str = "resnet10t"  # ResNet-18 fits the 10 minutes only on an idle CPU: --backbone resnet18
    pretrain_steps: int = 250
    pretrain_batch: int = 32
    epochs: int = 12
    seeds: tuple[int, ...] = (0, 1, 2)
    max_train_samples: int | None = None


def demo_cells(settings: DemoSettings) -> list[Cell]:
    specs = {
        m: PretrainSpec(
            method=m,
            backbone=settings.backbone,
            dataset="breastmnist",
            image_size=28,
            max_steps=settings.pretrain_steps,
            batch_size=settings.pretrain_batch,
        )
        for m in settings.methods
    }
    common: dict[str, Any] = {
        "dataset": "breastmnist",
        "image_size": 28,
        "seeds": list(settings.seeds),
        "max_train_samples": settings.max_train_samples,
    }
    recipe = {"preset": "quick", "epochs": settings.epochs}
    donor = specs[settings.methods[0]]
    cells = [
        Cell("linear/scratch", donor, {**common, "protocol": "linear", "random_init": True}),
        Cell("finetune/scratch", donor, {**common, **recipe, "protocol": "scratch"}),
    ]
    for m, spec in specs.items():
        cells.append(
            Cell(f"linear/{m}", spec, {**common, "protocol": "linear"}, name=m, baseline="linear/scratch")
        )
        cells.append(
            Cell(
                f"finetune/{m}",
                spec,
                {**common, **recipe, "protocol": "finetune"},
                name=m,
                baseline="finetune/scratch",
            )
        )
    return cells


def run_demo(
    out_dir: str | os.PathLike = "hfssl-demo",
    *,
    settings: DemoSettings | None = None,
    checkpoint_store: str | os.PathLike | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    device: str = "auto",
    plots: bool = True,
) -> tuple[GridResult, Any]:
    """Run (or resume) the demo; return the grid result and the leaderboard report."""
    from eval_suite.leaderboard import make_leaderboard

    settings = settings or DemoSettings()
    out = Path(out_dir)
    store = CheckpointStore(checkpoint_store or out / "checkpoints")
    grid = run_grid(
        demo_cells(settings),
        out,
        store=store,
        data_dir=data_dir,
        cache_dir=cache_dir or str(out / "features"),
        device=device,
        title="hfssl demo",
    )
    report = make_leaderboard(
        [out / "results"], out / "leaderboard", plots=plots, title="hfssl demo: SSL vs scratch"
    )
    return grid, report
