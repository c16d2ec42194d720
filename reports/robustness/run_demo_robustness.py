"""Robustness of the demo's checkpoints (ROT, SimCLR, scratch) on BreastMNIST 28 px under the
ultrasound corruptions (``--corruption all``), linear probe and finetuning, 3 seeds.

The demo's grid (``eval_suite.studies.demo``: resnet10t, 250 pretraining steps at batch 32, the
``quick`` recipe for 12 epochs) with ``corruption="all"`` added to every cell: each seed's probe /
finetuned network is trained once and scored on the clean and the 35 corrupted test splits.
Writes OUT/results (records), OUT/robustness.md (eval_suite.robustness, mCE vs scratch) and
OUT/leaderboard (with the robustness table and plot). Re-running reuses finished cells.

    OMP_NUM_THREADS=1 HFSSL_DATA_DIR=/data python reports/robustness/run_demo_robustness.py OUT
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(out: str) -> None:
    import torch

    from eval_suite.leaderboard import make_leaderboard
    from eval_suite.results import load_records
    from eval_suite.robustness import format_markdown, summarise
    from eval_suite.studies.demo import DemoSettings, demo_cells
    from eval_suite.studies.grid import CheckpointStore, run_grid
    from hfssl.utils.io import write_text_atomic

    torch.set_num_threads(1)
    root = Path(out)
    cells = demo_cells(DemoSettings())
    for cell in cells:
        cell.eval["corruption"] = "all"
    t0 = time.perf_counter()
    run_grid(
        cells,
        root,
        store=CheckpointStore(root / "checkpoints"),
        cache_dir=str(root / "features"),
        device="cpu",
        title="demo robustness",
    )
    records, problems = load_records(root / "results")
    text = format_markdown(summarise(records, metric="balanced_accuracy"))
    text += "\n" + format_markdown(summarise(records, metric="auc"))
    write_text_atomic(root / "robustness.md", text)
    make_leaderboard([root / "results"], root / "leaderboard", title="demo robustness")
    print(text)
    print(f"{len(records)} records, {len(problems)} problems, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "robustness-demo")
