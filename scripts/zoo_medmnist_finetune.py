"""A zoo entry finetuned with the official MedMNIST recipe, against scratch with the same recipe.

The zoo's ``cpu`` budget finetunes with the short ``quick`` recipe; this script runs the issue's
headline comparison at the full ``medmnist`` preset (Adam 1e-3, x0.1 at 50 % / 75 % of 100 epochs,
batch 128, best epoch by validation AUC): the entry's backbone (``finetune``) and the same
architecture at random init (``scratch``), same seeds, through ``eval_suite`` as a library. The
two arms are separate commands so two processes can run them side by side (one core each); each
seed's record is written when it finishes, and a re-run skips the seeds already recorded.

``report`` pairs the arms by seed and writes ``medmnist_finetune.json`` into the entry's record
folder (``reports/zoo/<budget>/<entry>/``), where ``hfssl zoo table`` reads it:

    python scripts/zoo_medmnist_finetune.py run vicreg-resnet18-breastmnist28 --arm finetune --threads 1 &
    python scripts/zoo_medmnist_finetune.py run vicreg-resnet18-breastmnist28 --arm scratch --threads 1 &
    wait
    python scripts/zoo_medmnist_finetune.py report vicreg-resnet18-breastmnist28 --records reports/zoo
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_RESULTS = Path.home() / ".cache" / "hfssl" / "zoo-medmnist-finetune"
HARDWARE_FILE = "hardware.json"  # where each arm ran (read by ``report``)
METRICS = ("balanced_accuracy", "auc", "accuracy", "macro_f1", "minority_recall", "mcc")


def _config(
    entry: str, arm: str, seeds: list[int], results: Path, data_dir: str | None, epochs: int | None
) -> Any:
    from eval_suite.runner import EvalConfig, baseline_config
    from hfssl.zoo import load_manifest

    spec = load_manifest().get(entry)
    cfg = EvalConfig(
        checkpoint=f"zoo:{entry}",
        dataset=spec.dataset,
        image_size=[spec.image_size],
        protocol="finetune",
        preset="medmnist",
        epochs=epochs,
        seeds=seeds,
        results_dir=str(results / arm),
        data_dir=data_dir,
    )
    # scratch: the runner's own baseline of this config (same recipe, random init)
    return baseline_config(dataclasses.replace(cfg, compare_to="scratch")) if arm == "scratch" else cfg


def _records(cfg: Any) -> list[dict[str, Any]]:
    from eval_suite.runner import evaluate

    return evaluate(cfg)  # every seed recorded already is read back, not recomputed


def run(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    records = _records(
        _config(args.entry, args.arm, args.seeds, Path(args.results), args.data_dir, args.epochs)
    )
    for r in records:
        m = r["metrics"]
        print(
            f"{args.arm} seed {r['seed']}: ACC {m['accuracy']:.4f} AUC {m['auc']:.4f} "
            f"bal. acc {m['balanced_accuracy']:.4f}"
        )
    seconds = time.perf_counter() - t0
    print(f"{args.arm}: {len(records)} seeds in {seconds:.0f} s")
    from hfssl.training.runtime import hardware_description
    from hfssl.utils.io import write_json_atomic

    where = {"hardware": hardware_description(torch.device("cpu"), 1), "threads": torch.get_num_threads()}
    write_json_atomic(Path(args.results) / args.arm / HARDWARE_FILE, where)


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in METRICS:
        values = [float(r["metrics"][metric]) for r in records]
        out[metric] = {
            "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "per_seed": values,
        }
    out["seeds"] = [int(r["seed"]) for r in records]
    out["train_seconds"] = [float(r.get("timings", {}).get("train_s", 0.0) or 0.0) for r in records]
    return out


def report(args: argparse.Namespace) -> Path:
    from eval_suite.runner import compare
    from eval_suite.zoo_table import OFFICIAL_FINETUNE_FILE, SCRATCH_PARITY
    from hfssl.utils.io import write_json_atomic
    from hfssl.zoo import load_manifest

    load_manifest().get(args.entry)  # unknown name -> the manifest's one-line error
    results = Path(args.results)
    arms = {
        arm: _records(_config(args.entry, arm, args.seeds, results, args.data_dir, args.epochs))
        for arm in ("finetune", "scratch")
    }
    deltas = {m: compare(arms["finetune"], arms["scratch"], m) for m in ("balanced_accuracy", "auc")}
    for d in deltas.values():
        d.pop("class_deltas", None)
    beats = any(d["ci95"][0] > 0 for d in deltas.values())
    first = arms["finetune"][0]
    payload = {
        "entry": args.entry,
        "recipe": "medmnist",
        "recipe_params": first["protocol"]["params"],
        # the finetuned weights: MODEL_ZOO.md flags the report once the entry is rebuilt with others
        "weights_sha256": first["checkpoint"].get("content_hash"),
        "where": {arm: _read(results / arm / HARDWARE_FILE) for arm in arms},
        "finetune": _summary(arms["finetune"]),
        "scratch": _summary(arms["scratch"]),
        "paired_delta": deltas,
        "beats_scratch": beats,
        "scratch_parity": {k: {"mean": v[0], "sd": v[1]} for k, v in SCRATCH_PARITY.items()},
        # the seeds are part of the result: the command reproduces exactly this report
        "command": " ".join(
            [
                "python scripts/zoo_medmnist_finetune.py",
                "report",
                args.entry,
                "--seeds",
                *map(str, args.seeds),
            ]
        ),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = Path(args.records) / args.budget / args.entry / OFFICIAL_FINETUNE_FILE
    write_json_atomic(out, payload)
    f, s = payload["finetune"], payload["scratch"]
    print(
        f"finetune ACC {f['accuracy']['mean']:.3f}±{f['accuracy']['sd']:.3f} "
        f"AUC {f['auc']['mean']:.3f}±{f['auc']['sd']:.3f}; "
        f"scratch ACC {s['accuracy']['mean']:.3f}±{s['accuracy']['sd']:.3f} "
        f"AUC {s['auc']['mean']:.3f}±{s['auc']['sd']:.3f}"
    )
    for m, d in deltas.items():
        print(f"paired Δ {m}: {d['delta']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
    print(f"written {out}")
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "report"):
        p = sub.add_parser(name)
        p.add_argument("entry", help="zoo entry name (its checkpoint must be built or cached: zoo:NAME)")
        p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
        p.add_argument("--results", default=str(DEFAULT_RESULTS), help="result records, one folder per arm")
        p.add_argument("--data-dir", default=None)
        p.add_argument("--epochs", type=int, default=None, help="override the preset's 100 (smoke runs)")
        if name == "run":
            p.add_argument("--arm", choices=("finetune", "scratch"), required=True)
            p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
        else:
            p.add_argument("--records", default="reports/zoo", help="the zoo's record folder")
            p.add_argument("--budget", default="cpu")
    args = parser.parse_args(argv)
    from hfssl.errors import HfsslError

    try:
        run(args) if args.command == "run" else report(args)
    except HfsslError as err:
        print(f"zoo_medmnist_finetune: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
