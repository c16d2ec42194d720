"""Evaluation speed: cached-feature linear probe vs re-running the backbone, and a full 5-seed evaluation.

Part 1 trains the same torch linear layer (same init, same batches, ``--epochs`` epochs) on a frozen
ResNet-18 (28 px, small stem, random init) two ways: (a) embeddings extracted once and cached, then
the epochs run on the cached features; (b) the backbone re-run on every batch of every epoch (what a
probe without a cache does). It prints both wall times, the speed ratio (target >= 5x) and the test
accuracy/AUC of both, which must be equal (eval-mode features are deterministic).

Part 2 times ``eval_suite.runner.evaluate`` for the ``linear`` and ``knn`` protocols of one ResNet-18
checkpoint on BreastMNIST 28 px with 5 seeds and all metrics + bootstrap CIs, starting from an empty
feature cache (target: under 60 s on a 2-core CPU).

Usage::

    python benchmarks/eval_speed.py [--epochs 20] [--seeds 0 1 2 3 4] [--data-dir DIR] [--device cpu]
                                    [--parts 1 2]

``--parts 2`` re-times only the full evaluation (part 1's no-cache run takes about ten minutes);
parts not run keep their previous numbers in the JSON file.
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
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _probe(train_batches, test_x, test_y, epochs: int, embed, dim: int, seed: int = 0):
    """Train a linear layer with Adam on ``embed(batch)``; return (seconds, accuracy, auc)."""
    import torch
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(seed)
    head = torch.nn.Linear(dim, 2)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for x, y in train_batches:
            with torch.no_grad():
                z = embed(x)
            loss = torch.nn.functional.cross_entropy(head(z), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        proba = head(embed(test_x)).softmax(1).numpy()
    seconds = time.perf_counter() - t0
    return (
        seconds,
        float((proba.argmax(1) == test_y.numpy()).mean()),
        float(roc_auc_score(test_y.numpy(), proba[:, 1])),
    )


def part1(folder: str, data_dir: str | None, epochs: int, device: str) -> dict:
    import torch

    from hfssl.data import load_source, make_dataloader
    from hfssl.hub import load_feature_extractor

    dsd = load_source("breastmnist", image_size=28, data_dir=data_dir)
    extractor = load_feature_extractor(folder).eval().to(device)
    batches = [
        (b["pixel_values"].to(device), b["labels"]) for b in make_dataloader(dsd["train"], batch_size=128)
    ]
    test = next(iter(make_dataloader(dsd["test"], batch_size=len(dsd["test"]))))
    test_x, test_y = test["pixel_values"].to(device), test["labels"]

    def backbone(x):
        return extractor.embed(x).cpu()

    # (b) no cache: the backbone runs on every batch of every epoch
    slow_s, slow_acc, slow_auc = _probe(batches, test_x, test_y, epochs, backbone, extractor.embed_dim)
    # (a) cache: embed once (timed), then the epochs see cached features
    t0 = time.perf_counter()
    with torch.no_grad():
        cached = [(backbone(x), y) for x, y in batches]
        test_z = backbone(test_x)
    extract_s = time.perf_counter() - t0
    fast_s, fast_acc, fast_auc = _probe(cached, test_z, test_y, epochs, lambda z: z, extractor.embed_dim)
    fast_total = extract_s + fast_s
    return {
        "epochs": epochs,
        "no_cache_s": slow_s,
        "cached_s": fast_total,
        "speedup": slow_s / fast_total,
        "no_cache_test": {"accuracy": slow_acc, "auc": slow_auc},
        "cached_test": {"accuracy": fast_acc, "auc": fast_auc},
    }


def part2(folder: str, data_dir: str | None, seeds: list[int], device: str) -> dict:
    from eval_suite.runner import EvalConfig, evaluate

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for protocol in ("linear", "knn"):
            t = time.perf_counter()
            records = evaluate(
                EvalConfig(
                    checkpoint=folder,
                    protocol=protocol,
                    seeds=seeds,
                    data_dir=data_dir,
                    results_dir=f"{tmp}/results",
                    cache_dir=f"{tmp}/cache",
                    device=device,
                )
            )
            out[protocol] = {
                "wall_s": time.perf_counter() - t,
                "balanced_accuracy": [r["metrics"]["balanced_accuracy"] for r in records],
                "metrics": sorted(records[0]["metrics"]),
            }
        out["total_wall_s"] = time.perf_counter() - t0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "eval_speed.json"))
    parser.add_argument("--parts", type=int, nargs="+", choices=[1, 2], default=[1, 2])
    args = parser.parse_args()

    import torch

    from hfssl.models import HfsslConfig, HfsslModel

    folder = tempfile.mkdtemp(prefix="eval-speed-resnet18-")
    torch.manual_seed(0)
    HfsslModel(HfsslConfig(backbone="resnet18", in_chans=1, image_size=28)).save_pretrained(folder)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    result["torch_threads"] = torch.get_num_threads()
    # other work on the machine slows every number here: record how busy it was
    result["loadavg_1min_at_start"] = os.getloadavg()[0]
    if 1 in args.parts:
        result["part1"] = p1 = part1(folder, args.data_dir, args.epochs, args.device)
        print(
            f"linear probe, {p1['epochs']} epochs: no cache {p1['no_cache_s']:.1f} s, cached "
            f"{p1['cached_s']:.1f} s (extraction included) -> {p1['speedup']:.1f}x faster; test acc/AUC no "
            f"cache {p1['no_cache_test']['accuracy']:.4f}/{p1['no_cache_test']['auc']:.4f}, cached "
            f"{p1['cached_test']['accuracy']:.4f}/{p1['cached_test']['auc']:.4f}"
        )
    if 2 in args.parts:
        result["part2"] = p2 = part2(folder, args.data_dir, args.seeds, args.device)
        print(
            f"full evaluation of one ResNet-18 on BreastMNIST 28 px, {len(args.seeds)} seeds, all metrics + "
            f"CIs: linear {p2['linear']['wall_s']:.1f} s + knn {p2['knn']['wall_s']:.1f} s = "
            f"{p2['total_wall_s']:.1f} s"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
