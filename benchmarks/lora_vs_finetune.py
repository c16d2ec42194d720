"""LoRA vs full finetuning of a tiny ViT on BreastMNIST 28 px: trainable share, balanced accuracy,
AUC and time, per seed (issue 17, part 3).

The backbone is timm's ViT-Tiny (``vit_tiny_patch16_224``: width 192, 3 heads) cut to 6 blocks with
7 px patches at 28 px (16 tokens + class token), one input channel - small enough for a dozen runs
of 15 epochs on a 2-core CPU - at random init seeded per seed, so finetune and LoRA of one seed start
from the same weights. ``--checkpoint SPEC`` starts from another backbone instead - e.g. the
``backbone`` folder of an ``hfssl pretrain --method mae`` run of that architecture - and ``--label``
names the start in every row (``random`` by default), so random-init and pretrained comparisons
share the JSONL and ``--summary`` groups by (label, run). Both train with the
MedMNIST recipe (Adam, x0.1 at 50 %/75 % of the epochs, best epoch by validation AUC) through
``hfssl evaluate``'s runner. Runs: ``finetune`` (lr 1e-3, the MedMNIST recipe), ``finetune-0.1x``
(lr 1e-4, the usual ViT finetuning lr), ``lora`` (rank r, alpha 2r, on the fused ``qkv`` projection
of every block, lr 1e-3) and ``lora-10x`` (lr 1e-2). One JSON line per run is appended to
``benchmarks/results/lora_vs_finetune.jsonl``; ``--summary`` prints the table of the report.

    OMP_NUM_THREADS=2 python benchmarks/lora_vs_finetune.py --epochs 15 --seeds 0 1 2
    OMP_NUM_THREADS=2 python benchmarks/lora_vs_finetune.py --epochs 15 --seeds 0 1 2 --runs finetune-0.1x
    OMP_NUM_THREADS=2 python benchmarks/lora_vs_finetune.py --epochs 15 --seeds 0 1 2 \
        --checkpoint /tmp/mae-tiny/backbone --label mae-300
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

SPEC = "timm:vit_tiny_patch16_224?img_size=28&patch_size=7&in_chans=1&depth=6"
OUT = Path(__file__).parent / "results" / "lora_vs_finetune.jsonl"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or "unknown"


def _label(row: dict) -> str:
    """The start a row was measured from; rows written before ``--label`` existed are random init."""
    return row.get("label") or ("random" if row.get("spec") == SPEC else str(row.get("spec")))


# one-sided 95 % quantiles of Student's t (df 1-10): a 90 % two-sided interval, i.e. the two
# one-sided tests (TOST) of equivalence at the 5 % level
_T95 = [6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812]


def _ci90(values: list[float]) -> tuple[float, float, float]:
    """Mean and 90 % t-interval of paired differences (needs >= 2 values)."""
    import math
    import statistics

    n = len(values)
    mean = statistics.mean(values)
    t = _T95[n - 2] if n - 1 <= len(_T95) else 1.645
    half = t * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - half, mean + half


def summarise(
    path: Path = OUT, margin: float = 0.05, baseline: str = "finetune", seeds: list[int] | None = None
) -> str:
    """Markdown table of the JSONL: mean ± std over seeds per (label, run), and the paired (same
    seed, same label) difference to full finetuning (run ``baseline``); below it, the 90 % t-interval of each paired
    difference, whether its lower end is above -``margin`` (non-inferiority at the 5 % level: the
    issue's "within a margin of full finetuning") and whether it lies inside ±``margin``
    (equivalence by two one-sided tests). ``seeds``: only those seeds (default: all)."""
    import statistics

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_run: dict[tuple[str, str], dict[int, dict]] = {}
    for row in rows:
        if seeds is not None and row["seed"] not in seeds:
            continue
        # a rerun of a seed replaces it
        by_run.setdefault((_label(row), row["run"]), {})[row["seed"]] = row

    def ms(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {sd:.3f}"

    lines = [
        f"| init | run | lr | trainable params (share) | seeds | balanced accuracy | AUC | Δ bal. acc. vs {baseline} "
        f"| Δ AUC vs {baseline} | train time (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    for (label, name), seeds in by_run.items():
        # deltas are against full finetuning (by default at the MedMNIST lr) from the same start
        base = by_run.get((label, baseline), {})
        runs = [seeds[s] for s in sorted(seeds)]
        paired = [s for s in sorted(seeds) if s in base]
        d_bacc = [seeds[s]["balanced_accuracy"] - base[s]["balanced_accuracy"] for s in paired]
        d_auc = [seeds[s]["auc"] - base[s]["auc"] for s in paired]
        first = runs[0]
        lines.append(
            f"| {label} | {name} | {first['lr']:g} | {first['params_trainable']:,} of {first['params_total']:,} "
            f"({first['params_trainable_percent']:.2f} %) | {len(runs)} | "
            f"{ms([r['balanced_accuracy'] for r in runs])} | {ms([r['auc'] for r in runs])} | "
            f"{ms(d_bacc) if name != baseline and d_bacc else '–'} | "
            f"{ms(d_auc) if name != baseline and d_auc else '–'} | {ms([r['train_s'] for r in runs])} |"
        )
        if name != baseline and len(paired) >= 2:
            parts = []
            for metric, diffs in (("bal. acc.", d_bacc), ("AUC", d_auc)):
                mean, lo, hi = _ci90(diffs)
                noninferior = "yes" if lo > -margin else "no"
                equivalent = "yes" if -margin < lo and hi < margin else "no"
                parts.append(
                    f"Δ {metric} {mean:+.3f}, 90 % CI [{lo:+.3f}, {hi:+.3f}] "
                    f"(not worse by {margin:g}: {noninferior}; within ±{margin:g}: {equivalent})"
                )
            notes.append(f"- {label} / {name} vs {baseline}, {len(paired)} paired seeds: " + "; ".join(parts))
    return "\n".join(lines + ([""] + notes if notes else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="seeds to run (default 0 1 2); with --summary: to show",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="full-finetune learning rate")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--runs", nargs="+", default=["finetune", "lora", "lora-10x"])
    parser.add_argument(
        "--checkpoint",
        default=SPEC,
        help="backbone to start from (any hfssl checkpoint spec; default: the random-init tiny ViT)",
    )
    parser.add_argument(
        "--label",
        default=None,
        help="name of the start, recorded in each row and grouped by in --summary "
        "(default: 'random' for the default --checkpoint, else the spec)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--summary", action="store_true", help="print the table of --out and stop")
    parser.add_argument(
        "--baseline", default="finetune", help="run the --summary's paired differences are taken against"
    )
    parser.add_argument(
        "--margin", type=float, default=0.05, help="equivalence margin for --summary's paired intervals"
    )
    args = parser.parse_args()
    if args.summary:
        print(summarise(args.out, args.margin, args.baseline, args.seeds))
        return
    args.seeds = args.seeds or [0, 1, 2]

    label = args.label or ("random" if args.checkpoint == SPEC else args.checkpoint)
    init = (
        "random (seeded; the same weights for finetune and lora of a seed)"
        if args.checkpoint == SPEC
        else f"pretrained: {args.checkpoint} (the same weights for every run)"
    )

    import torch

    from eval_suite.runner import EvalConfig, evaluate

    runs = {
        "finetune": {"protocol": "finetune", "lr": args.lr},
        "finetune-0.1x": {"protocol": "finetune", "lr": 0.1 * args.lr},
        "lora": {"protocol": "lora", "lr": args.lr},
        "lora-10x": {"protocol": "lora", "lr": 10 * args.lr},
    }
    work = Path(tempfile.mkdtemp(prefix="lora-bench-"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for name in args.runs:
            run = runs[name]
            cfg = EvalConfig(
                checkpoint=args.checkpoint,
                dataset="breastmnist",
                image_size=[28],
                protocol=run["protocol"],
                seeds=[seed],
                preset="medmnist",
                epochs=args.epochs,
                lr=run["lr"],
                lora_rank=args.rank,
                lora_alpha=2.0 * args.rank,
                results_dir=str(work / name),
                n_bootstrap=200,
            )
            t0 = time.perf_counter()
            record = evaluate(cfg)[0]
            row = {
                "date": time.strftime("%Y-%m-%d"),
                "run": name,
                "protocol": run["protocol"],
                "lr": run["lr"],
                "lora_rank": args.rank if run["protocol"] == "lora" else None,
                "seed": seed,
                "epochs": args.epochs,
                "spec": args.checkpoint,
                "label": label,
                "init": init,
                **{f"params_{k}": v for k, v in record["parameters"].items()},
                "balanced_accuracy": record["metrics"]["balanced_accuracy"],
                "auc": record["metrics"]["auc"],
                "best_epoch": record["fit"].get("best_epoch"),
                "train_s": record["timings"].get("train_s"),
                "wall_s": time.perf_counter() - t0,
                "runtime": record["fit"].get("runtime"),
                "machine": _cpu(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(
                json.dumps(
                    {
                        k: row[k]
                        for k in (
                            "label",
                            "run",
                            "seed",
                            "params_trainable_percent",
                            "balanced_accuracy",
                            "auc",
                            "train_s",
                        )
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
