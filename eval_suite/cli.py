"""``hfssl evaluate`` / ``python -m eval_suite``: evaluate any checkpoint and print a compact table.

The options are the fields of :class:`eval_suite.runner.EvalConfig` (``--help`` lists them); records
go to ``--results-dir`` (one JSON file per seed). The table shows, per metric, the mean ± std over
seeds and the 95 % bootstrap CI on the test set (averaged over seeds); with ``--compare-to scratch``
also the paired difference, its CI, the p-value and the per-class recall deltas.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

PROG = "hfssl evaluate"
DESCRIPTION = (
    "Evaluate a checkpoint (hfssl folder, Hub repo, timm:NAME ...) on a medical dataset with a protocol "
    "(linear, knn, finetune, warmup, frozen, scratch, lora, segmentation), a data regime (label fraction, "
    "imbalance ratio) and a policy (sampler, loss, augmentation, mixup), over several seeds."
)
EXAMPLES = (
    "hfssl evaluate --checkpoint outputs/simclr/backbone --protocol linear --seeds 0 1 2",
    "hfssl evaluate --checkpoint timm:resnet18 --protocol knn --knn-k 20",
    "hfssl evaluate --checkpoint outputs/simclr/backbone --protocol finetune --preset medmnist "
    "--seeds 0 1 2 --compare-to scratch",
    "hfssl evaluate --checkpoint CKPT --protocol finetune --imbalance-ratio 50 --sampler resample:1 "
    "--loss focal --augment S3 --mixup 0.2",
    "hfssl evaluate --checkpoint CKPT --protocol finetune --label-fraction 0.1 --preset quick",
    "hfssl evaluate --checkpoint CKPT3D --dataset adrenalmnist3d --protocol warmup --warmup-epochs 10",
    "hfssl evaluate --checkpoint CKPT --dataset drive --protocol segmentation --no-skip-connections",
    "hfssl evaluate --checkpoint CKPT --protocol linear --corruption all --seeds 0 1 2",
    "hfssl evaluate --checkpoint CKPT --protocol finetune --corruption speckle_noise:3,jpeg_compression",
    "hfssl evaluate --checkpoint CKPT --protocol finetune --augment corrupt:0.5",
    "hfssl evaluate --checkpoint facebook/dinov2-small --input-size auto --protocol linear --seeds 0 1 2",
    "hfssl evaluate --checkpoint microsoft/rad-dino --input-size auto --protocol lora --lora-rank 8 "
    "--lr 1e-2 --save-adapter adapters/rad-dino-breast",
    "hfssl evaluate --checkpoint CKPT --protocol linear --image-size 28 64 128 224",
    "python -m eval_suite --config eval.yaml --seeds 0 1 2 3 4",
)


def build_parser():
    from eval_suite.runner import EvalConfig
    from hfssl.utils.args import make_parser

    return make_parser(PROG, DESCRIPTION, [EvalConfig], EXAMPLES)


def _fmt(x: Any, digits: int = 3) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def format_table(records: list[dict[str, Any]], comparison: dict[str, Any] | None = None) -> str:
    """Per metric: mean ± std over seeds, the seeds' t-interval, and the mean test bootstrap CI."""
    from eval_suite.stats import metric_bounds, summarise

    if not records:
        return "(no records)"
    first = records[0]
    head = (
        f"{first['checkpoint'].get('name', first['checkpoint']['spec'])} on {first['dataset']['name']} "
        f"({first['dataset'].get('image_size')}), protocol {first['protocol']['name']}, "
        f"regime {first['regime']}, policy {first['policy']}, seeds {[r['seed'] for r in records]}"
    )
    if first["dataset"].get("resize", "none") != "none":
        head += f", input {first['dataset']['input_size']} px ({first['dataset']['resize']})"
    counts = first.get("parameters")
    if counts:
        head += f", trainable parameters {counts['trainable']:,} of {counts['total']:,} ({counts['trainable_percent']:.2f} %)"
    names = [k for k, v in first["metrics"].items() if not isinstance(v, (dict, list))]
    rows = [("metric", "mean ± std", "95% CI (seeds)", "95% CI (test bootstrap)")]
    for name in names:
        values = [float(r["metrics"][name]) for r in records]
        s = summarise(values, metric_bounds(name))
        ci_seeds = s.get("ci95")
        ci_seeds_text = (
            "-"
            if not ci_seeds or any(v is None for v in ci_seeds)
            else (f"[{_fmt(ci_seeds[0])}, {_fmt(ci_seeds[1])}]")
        )
        boots = [r.get("ci95", {}).get(name) for r in records]
        boots = [b for b in boots if b]
        boot_text = (
            f"[{_fmt(sum(b[0] for b in boots) / len(boots))}, {_fmt(sum(b[1] for b in boots) / len(boots))}]"
            if boots
            else "-"
        )
        rows.append((name, f"{_fmt(s['mean'])} ± {_fmt(s['std'])}", ci_seeds_text, boot_text))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [head, ""] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    recall = [r["metrics"].get("per_class", {}).get("recall") for r in records]
    if all(recall) and recall:
        classes = first["dataset"].get("class_names") or [str(i) for i in range(len(recall[0]))]
        mean_recall = [sum(rc[i] for rc in recall) / len(recall) for i in range(len(recall[0]))]
        lines.append(
            "per-class recall: " + ", ".join(f"{c}: {_fmt(v)}" for c, v in zip(classes, mean_recall))
        )
    if comparison:
        lines += ["", format_comparison(comparison, first["dataset"].get("class_names"))]
    return "\n".join(lines)


def format_comparison(comparison: dict[str, Any], class_names: list[str] | None = None) -> str:
    ci = comparison.get("ci95") or [float("nan"), float("nan")]
    text = (
        f"vs baseline ({comparison.get('n_pairs')} paired seeds): delta {comparison['metric']} "
        f"{float(comparison['delta']):+.3f}, 95% CI [{_fmt(ci[0])}, {_fmt(ci[1])}], p = {_fmt(comparison['p_value'])}"
    )
    deltas = comparison.get("class_deltas")
    if deltas:
        items = _class_delta_items(deltas, class_names)
        if items:
            text += "\nper-class recall delta: " + ", ".join(items)
    return text


def _class_delta_items(deltas: Any, class_names: list[str] | None) -> list[str]:
    """Render ``paired_class_deltas`` output whether it is a list or a dict of per-class entries."""
    if isinstance(deltas, dict) and "delta" in deltas and isinstance(deltas["delta"], list):
        values = deltas["delta"]
        pvals = deltas.get("p_value") or [None] * len(values)
        entries = list(zip(range(len(values)), values, pvals))
    elif isinstance(deltas, dict):
        entries = [
            (
                k,
                v.get("delta") if isinstance(v, dict) else v,
                v.get("p_value") if isinstance(v, dict) else None,
            )
            for k, v in deltas.items()
        ]
    else:
        entries = [
            (
                i,
                d.get("delta") if isinstance(d, dict) else d,
                d.get("p_value") if isinstance(d, dict) else None,
            )
            for i, d in enumerate(deltas)
        ]
    items = []
    for key, delta, p in entries:
        name = (
            class_names[key] if isinstance(key, int) and class_names and key < len(class_names) else str(key)
        )
        items.append(f"{name}: {float(delta):+.3f}" + (f" (p {_fmt(p)})" if p is not None else ""))
    return items


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the evaluation (+ baseline), print the table; return the exit code."""
    from hfssl.utils.args import parse

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    (config, *_) = parse(parser, argv)
    from eval_suite.runner import evaluate_with_comparison

    records, baseline, comparison = evaluate_with_comparison(config)
    clean = [r for r in records if not r.get("corruption")]
    by_size: dict[Any, list[dict[str, Any]]] = {}  # a resolution sweep: one table per image size
    for record in clean:
        by_size.setdefault(str(record["dataset"].get("image_size")), []).append(record)
    print("\n\n".join(format_table(group, comparison) for group in by_size.values()))
    if len(clean) != len(records):  # --corruption: robustness summary (mCE vs --compare-to's baseline)
        from eval_suite.robustness import format_markdown, summarise

        print("\n" + format_markdown(summarise(records + (baseline or []))))
    print(f"\n{len(records)} record(s) in {config.results_dir}")
    return 0
