"""MedMNIST parity check: scratch ResNet-18 (28 px, small stem) with the official recipe on BreastMNIST.

The MedMNIST v2 paper reports test ACC 0.863 / AUC 0.901 for ResNet-18 (28) on BreastMNIST
(Adam 1e-3, x0.1 at epochs 50 and 75 of 100, batch 128, best epoch by validation AUC). This script
runs ``eval_suite``'s ``scratch`` protocol with the ``medmnist`` preset for several seeds and logs,
after every epoch, the validation AUC and - whenever it is a new best - the test ACC/AUC of that
epoch's weights, so an interrupted run still says where it stood. Results go to
``benchmarks/results/baseline_parity.jsonl`` (one JSON line per event).

    python scripts/baseline_parity.py --seeds 0 1 2 [--epochs 100] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "baseline_parity.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()

    import torch

    from eval_suite.metrics import compute_classification_metrics
    from eval_suite.protocols.finetune import Recipe, predict, run_finetune
    from hfssl.data import class_counts, load_source, make_dataloader, read_labels
    from hfssl.hub import load_feature_extractor
    from hfssl.models import HfsslConfig, HfsslModel

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def log(event: dict) -> None:
        with out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")
        print(json.dumps(event), flush=True)

    dsd = load_source("breastmnist", image_size=28, data_dir=args.data_dir)
    counts = list(class_counts(read_labels(dsd["train"]), 2).values())
    test_loader = make_dataloader(dsd["test"], batch_size=256)
    folder = tempfile.mkdtemp(prefix="parity-resnet18-")
    HfsslModel(HfsslConfig(backbone="resnet18", in_chans=1, image_size=28)).save_pretrained(folder)
    recipe = Recipe.from_preset("medmnist", epochs=args.epochs)
    log(
        {"event": "start", "recipe": recipe.params(), "threads": torch.get_num_threads(), "time": time.time()}
    )
    for seed in args.seeds:
        torch.manual_seed(seed)
        extractor = load_feature_extractor(folder, random_init=True)
        t0 = time.perf_counter()

        def on_epoch(
            entry: dict, model: torch.nn.Module, is_best: bool, seed: int = seed, t0: float = t0
        ) -> None:
            event = {"event": "epoch", "seed": seed, **entry, "elapsed_s": round(time.perf_counter() - t0, 1)}
            if is_best:
                y_true, y_score = predict(model, test_loader, "binary", "cpu")
                m = compute_classification_metrics(
                    y_true, y_score, task="binary", metrics=["accuracy", "auc"]
                )
                event.update(test_acc_of_best=m["accuracy"], test_auc_of_best=m["auc"])
            log(event)

        y_true, y_score, info = run_finetune(
            extractor,
            dsd["train"],
            dsd["validation"],
            dsd["test"],
            mode="scratch",
            task="binary",
            num_classes=2,
            train_class_counts=counts,
            recipe=recipe,
            policy={"sampler": "none", "loss": "ce", "augment": "none", "mixup": 0.0},
            seed=seed,
            on_epoch=on_epoch,
        )
        m = compute_classification_metrics(y_true, y_score, task="binary", train_class_counts=counts)
        log(
            {
                "event": "seed_done",
                "seed": seed,
                "best_epoch": info["best_epoch"],
                "test_accuracy": m["accuracy"],
                "test_auc": m["auc"],
                "balanced_accuracy": m["balanced_accuracy"],
                "train_s": info["train_s"],
            }
        )


if __name__ == "__main__":
    main()
