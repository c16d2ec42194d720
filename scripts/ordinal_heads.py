"""Ordinal heads on the graded test bed: 3 heads x {scratch finetune, linear probe of an SSL checkpoint}
x 3 seeds -> ``reports/ordinal/ordinal_heads.json`` and a markdown table (``ordinal_heads.md``).

The experiment behind ``hfssl.models.DEFAULT_ORDINAL_HEAD``. CPU-cheap: resnet10t at 28 px on
``graded:breastmnist`` (BreastMNIST images with a synthetic lesion whose size is the grade, grade
frequencies 486/128/206/194/66), the ``quick`` finetune recipe for a few epochs, one thread.

    OMP_NUM_THREADS=1 python scripts/ordinal_heads.py --checkpoint /tmp/ord/rot/backbone \\
        --epochs 8 --results-dir /tmp/ord/records

The SSL checkpoint: ``python -m hfssl.pretrain --method rot --backbone resnet10t --dataset breastmnist
--max-steps 150 --output-dir /tmp/ord/rot --report-to none --save-strategy no``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HEADS = ("regression", "classification", "cumulative")
METRICS = ("qwk", "balanced_accuracy", "min_recall", "mae", "auc", "ece")


def summary(records: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for name in METRICS:
        if name == "min_recall":
            values = [min(r["metrics"]["per_class"]["recall"]) for r in records]
        else:
            values = [r["metrics"].get(name) for r in records]
        values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if values:
            out[name] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "per_seed": values,
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="SSL checkpoint folder for the linear probe")
    parser.add_argument("--backbone-spec", default="timm:resnet10t?in_chans=1", help="scratch architecture")
    parser.add_argument("--dataset", default="graded:breastmnist")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--results-dir", default="/tmp/ord/records")
    parser.add_argument("--out", default="reports/ordinal")
    args = parser.parse_args()

    from eval_suite.runner import EvalConfig, evaluate

    settings = {
        "scratch": dict(
            checkpoint=args.backbone_spec, protocol="scratch", preset="quick", epochs=args.epochs
        ),
        "linear_ssl": dict(checkpoint=args.checkpoint, protocol="linear"),
    }
    rows = []
    for setting, kw in settings.items():
        for head in HEADS:
            t0 = time.perf_counter()
            cfg = EvalConfig(
                dataset=args.dataset,
                ordinal_head=head,
                seeds=args.seeds,
                batch_size=32,
                n_bootstrap=200,
                results_dir=args.results_dir,
                cache_dir=str(Path(args.results_dir) / "cache"),
                device="cpu",
                **kw,
            )
            records = evaluate(cfg)
            row = {
                "setting": setting,
                "head": head,
                "metrics": summary(records),
                "wall_s": time.perf_counter() - t0,
            }
            row["record_ids"] = [r["record_id"] for r in records]
            row["thresholds"] = [r.get("fit", {}).get("thresholds") for r in records]
            rows.append(row)
            print(setting, head, {k: round(v["mean"], 3) for k, v in row["metrics"].items()}, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": args.dataset,
        "checkpoint": args.checkpoint,
        "scratch_backbone": args.backbone_spec,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "host": platform.platform(),
        "rows": rows,
    }
    (out / "ordinal_heads.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "| setting | head | QWK | balanced acc | min grade recall | MAE | macro-AUC | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row["metrics"]

        def cell(k: str, m: dict = m) -> str:
            return f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" if k in m else "—"

        lines.append(
            f"| {row['setting']} | {row['head']} | {cell('qwk')} | {cell('balanced_accuracy')} | "
            f"{cell('min_recall')} | {cell('mae')} | {cell('auc')} | {cell('ece')} |"
        )
    (out / "ordinal_heads.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
