"""Frozen-feature precision: do bf16 features (the CPU ``extract`` default) probe like fp32 ones?

On CPUs where bf16 is the faster path (``CPU_BF16_FASTER`` in :mod:`hfssl.training.runtime`) the
evaluation suite extracts frozen features under bf16 autocast. ``tests/eval_suite/
test_bf16_features.py`` checks that choice on one random-init ResNet-18; the zoo's probes also
run trained ResNets, ViTs (MAE) and 3D U-Net encoders, and the random-init ViT-Tiny baseline's
linear balanced accuracy moved from 0.700 (Intel, fp32 features) to 0.624 (AMD, bf16 features)
between two zoo builds. This script measures, per checkpoint, what the precision alone changes:

1. **Feature agreement**: the test split embedded with the fp32 plan and with the default
   (resolved) plan on the same weights: cosine similarity per image (mean, min), the relative
   L2 error of the whole feature matrix, and that error against the features' spread over the
   images (the centred matrix's norm), which is what a probe has to separate the classes with.
2. **Probes**: ``eval_suite.runner.evaluate`` with the ``linear`` and ``knn`` protocols, 3 seeds,
   once with ``mixed_precision=no`` and once with ``auto`` (what users run), each from an empty
   feature cache: accuracy, AUC, balanced accuracy (seed means), the linear probe's chosen C per
   seed and the wall time (extraction included).

One JSON line per checkpoint and precision goes to ``benchmarks/results/feature_precision.jsonl``
with the CPU model, thread count, load average and date. Items: ``SPEC@DATASET:SIZE`` (a
checkpoint) or ``SPEC@DATASET:SIZE:random`` (its architecture at random init, seed 0 as in the
zoo's baselines)::

    python benchmarks/feature_precision.py                       # the default items below
    python benchmarks/feature_precision.py --item zoo:mae-vit-tiny-p4-breastmnist28@breastmnist:28:random
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from knn_lift import cpu_model  # noqa: E402

DEFAULT_ITEMS = [
    "zoo:mae-vit-tiny-p4-breastmnist28@breastmnist:28:random",
    "zoo:mae-vit-tiny-p4-breastmnist28@breastmnist:28",
    "zoo:vicreg-resnet18-breastmnist28@breastmnist:28:random",
    "zoo:vicreg-resnet18-breastmnist28-long@breastmnist:28",
    "zoo:rot-unet3d-adrenalmnist3d28@adrenalmnist3d:28",
]
METRICS = ("accuracy", "auc", "balanced_accuracy")


def parse_item(text: str) -> tuple[str, str, int, bool]:
    spec, _, where = text.rpartition("@")
    parts = where.split(":")
    if not spec or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "random"):
        raise SystemExit(
            f"error: item {text!r} is not SPEC@DATASET:SIZE[:random]; e.g. zoo:NAME@breastmnist:28"
        )
    return spec, parts[0], int(parts[1]), len(parts) == 3


def feature_agreement(spec: str, dataset: str, size: int, random_init: bool, data_dir: str | None) -> dict:
    """Cosine similarity and relative error of the default-plan test features against fp32 ones."""
    import numpy as np
    import torch

    from eval_suite.features import extract_features
    from eval_suite.protocols.base import runtime_plan
    from hfssl.data import load_source
    from hfssl.hub import load_feature_extractor

    test = load_source(dataset, image_size=size, data_dir=data_dir)["test"]
    torch.manual_seed(0)  # the random-init weights of seed 0, as the zoo's baselines
    extractor = load_feature_extractor(spec, random_init=random_init)
    feats = {}
    for precision in ("no", "auto"):
        plan = runtime_plan(extractor, "cpu", "extract", precision, None)
        feats[plan.mixed_precision], _ = extract_features(extractor, test, plan=plan)
    resolved = next(p for p in feats if p != "no") if len(feats) > 1 else "no"
    a, b = feats["no"].astype(np.float64), feats[resolved].astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    centred = a - a.mean(0)
    return {
        "resolved_precision": resolved,
        "feature_dim": int(a.shape[1]),
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
        "relative_l2_error": float(np.linalg.norm(a - b) / (np.linalg.norm(a) + 1e-12)),
        # against the features' spread over the images (what a probe separates classes with): a
        # near-constant embedding can agree to 1e-5 in cosine and still lose its signal in the noise
        "error_to_spread": float(np.linalg.norm(a - b) / (np.linalg.norm(centred) + 1e-12)),
    }


def probes(spec, dataset, size, random_init, precision, seeds, data_dir) -> dict:
    from eval_suite.results import record_precision
    from eval_suite.runner import EvalConfig, evaluate

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="feature-precision-") as tmp:
        for protocol in ("linear", "knn"):
            t0 = time.perf_counter()
            records = evaluate(
                EvalConfig(
                    checkpoint=spec,
                    dataset=dataset,
                    image_size=[size],
                    protocol=protocol,
                    seeds=list(seeds),
                    random_init=random_init,
                    mixed_precision=precision,
                    results_dir=f"{tmp}/results",
                    cache_dir=f"{tmp}/cache-{protocol}",  # empty: the wall time includes extraction
                    data_dir=data_dir,
                    device="cpu",
                )
            )
            row = {m: sum(r["metrics"][m] for r in records) / len(records) for m in METRICS}
            row["wall_s"] = round(time.perf_counter() - t0, 1)
            row["features_precision"] = record_precision(records[0])
            if protocol == "linear":
                row["C"] = [r["fit"].get("C") for r in records]
            out[protocol] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--item", action="append", help="SPEC@DATASET:SIZE[:random] (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-dir", default=os.environ.get("HFSSL_DATA_DIR"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "feature_precision.jsonl"))
    args = parser.parse_args()

    import torch

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for text in args.item or DEFAULT_ITEMS:
        spec, dataset, size, random_init = parse_item(text)
        agreement = feature_agreement(spec, dataset, size, random_init, args.data_dir)
        for precision in ("no", "auto"):
            load = os.getloadavg()[0]
            row = {
                "item": text,
                "precision_asked": precision,
                "seeds": list(args.seeds),
                **probes(spec, dataset, size, random_init, precision, args.seeds, args.data_dir),
                "agreement_vs_fp32": agreement,
                "cpu": cpu_model(),
                "torch_threads": torch.get_num_threads(),
                "loadavg_1min_at_start": load,
                "date": time.strftime("%Y-%m-%d"),
            }
            with out.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, sort_keys=True) + "\n")
            lin, knn = row["linear"], row["knn"]
            print(
                f"{text} [{precision} -> {lin['features_precision']}]: linear acc {lin['accuracy']:.3f} "
                f"AUC {lin['auc']:.3f} bal.acc {lin['balanced_accuracy']:.3f} C {lin['C']} ({lin['wall_s']} s); "
                f"kNN bal.acc {knn['balanced_accuracy']:.3f} AUC {knn['auc']:.3f} ({knn['wall_s']} s); "
                f"features cos mean {agreement['cosine_mean']:.4f} min {agreement['cosine_min']:.4f}, "
                f"rel. L2 {agreement['relative_l2_error']:.4f}, error/spread {agreement['error_to_spread']:.4f}"
            )


if __name__ == "__main__":
    main()
