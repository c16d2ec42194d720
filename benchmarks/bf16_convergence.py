"""Does bf16 autocast pretrain as well as fp32? The kNN-lift runs in both precisions, same seeds.

The trainer may only default to bf16 on CPUs with native bf16 if it converges like fp32. This
script reruns the settings of ``tests/training/test_knn_lift.py`` (ROT and SimCLR on BreastMNIST
28 px, ``test_resnet``, 3 seeds, centred kNN monitor on the validation split) through the
``hfssl pretrain`` command line with ``--mixed-precision no`` and ``--mixed-precision bf16`` and
appends one JSON line per run (final kNN accuracy, random-init accuracy, wall time, CPU model,
native-bf16 flag, memory format) to ``benchmarks/results/bf16_convergence.jsonl``. Runs already
in that file for this CPU are skipped, so a killed run resumes. ``--summary`` prints mean and
standard deviation per method and precision and the bf16 - fp32 difference.

    python benchmarks/bf16_convergence.py                     # 12 runs, one thread each
    python benchmarks/bf16_convergence.py --summary
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "bf16_convergence.jsonl"

COMMON = [
    "--backbone", "test_resnet", "--dataset", "breastmnist", "--warmup-ratio", "0.05",
    "--weight-decay", "1e-4", "--logging-steps", "50", "--eval-strategy", "steps", "--eval-steps", "50",
    "--save-strategy", "no", "--report-to", "none", "--disable-tqdm", "true",
]  # fmt: skip
SETTINGS = {  # identical to tests/training/test_knn_lift.py
    "simclr": ["--method", "simclr", "--method-kwargs", '{"temperature": 0.5}', "--learning-rate", "3e-3",
               "--per-device-train-batch-size", "128", "--max-steps", "250"],
    "rot": ["--method", "rot", "--learning-rate", "1e-3", "--per-device-train-batch-size", "64",
            "--max-steps", "150"],
}  # fmt: skip


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), "")
    except OSError:
        return ""


def native_bf16() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def done_runs() -> set[tuple[str, str, str, int]]:
    if not RESULTS.is_file():
        return set()
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    return {(r["cpu"], r["method"], r["precision"], r["seed"]) for r in rows if "knn_accuracy_fp32_eval" in r}


def fp32_knn_accuracy(backbone_dir: Path) -> float:
    """The monitor's centred kNN accuracy (k 20, T 0.07, train bank -> validation) of an exported
    backbone, computed in fp32: the monitor of a bf16 run scores under autocast, so its own figure
    mixes bf16 training with bf16 evaluation; this one isolates training."""
    import torch
    from transformers import AutoModel

    import hfssl  # noqa: F401  (registers the Auto classes)
    from hfssl.data import load_source, to_tensor_batch
    from hfssl.training.monitor import online_knn_metrics, online_knn_scores

    torch.set_num_threads(1)
    backbone = AutoModel.from_pretrained(backbone_dir).eval()
    dsd = load_source("breastmnist", image_size=28)
    bank_x, bank_y = to_tensor_batch(dsd["train"][:])
    query_x, query_y = to_tensor_batch(dsd["validation"][:])
    with torch.no_grad():
        bank, _ = backbone.forward_features(bank_x)
        query, _ = backbone.forward_features(query_x)
    scores = online_knn_scores(bank, bank_y, query, num_classes=2, k=20, temperature=0.07, center=True)
    return online_knn_metrics(scores.argmax(1), query_y, 2)["knn_accuracy"]


def run_one(method: str, precision: str, seed: int, channels_last: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*COMMON, *SETTINGS[method], "--seed", str(seed), "--output-dir", tmp,
                "--mixed-precision", precision]  # fmt: skip
        if channels_last is not None:
            argv += ["--channels-last", channels_last]
        env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HFSSL_DISABLE_PROGRESS_BARS="1")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hfssl.pretrain", *argv], check=True, env=env)
        wall = time.perf_counter() - start
        lines = [json.loads(ln) for ln in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in lines if "knn_accuracy" in r]
        args = json.loads((Path(tmp) / "training_args.json").read_text())
        fp32_eval = fp32_knn_accuracy(Path(tmp) / "backbone")
    return {
        "knn_accuracy_fp32_eval": round(fp32_eval, 6),
        "method": method,
        "precision": precision,
        "seed": seed,
        "knn_accuracy_init": evals[0]["knn_accuracy"],
        "knn_accuracy": evals[-1]["knn_accuracy"],
        "steps": evals[-1]["step"],
        "wall_s": round(wall, 1),
        "resolved": {k: args.get(k) for k in ("mixed_precision", "channels_last") if k in args}
        or args.get("runtime"),
    }


def summary() -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    for cpu in sorted({r["cpu"] for r in rows}):
        print(f"CPU: {cpu}")
        for method in SETTINGS:
            means = {}
            for precision in ("no", "bf16"):
                acc = [
                    r["knn_accuracy_fp32_eval"]
                    for r in rows
                    if (r["cpu"], r["method"], r["precision"]) == (cpu, method, precision)
                    and "knn_accuracy_fp32_eval" in r
                ]
                init = [
                    r["knn_accuracy_init"]
                    for r in rows
                    if (r["cpu"], r["method"], r["precision"]) == (cpu, method, precision)
                    and "knn_accuracy_fp32_eval" in r
                ]
                if not acc:
                    continue
                sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
                means[precision] = statistics.mean(acc)
                print(f"  {method:7s} {precision:5s} n={len(acc)} init {statistics.mean(init):.3f} -> "
                      f"{means[precision]:.3f} +- {sd:.3f}  {acc}")  # fmt: skip
            if len(means) == 2:
                print(f"  {method:7s} bf16 - fp32 = {means['bf16'] - means['no']:+.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--precisions", nargs="+", default=["no", "bf16"], choices=["no", "bf16"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--channels-last", default=None, help="force true/false (default: the trainer's)")
    parser.add_argument("--summary", action="store_true", help="print the table of recorded runs and exit")
    args = parser.parse_args()
    if args.summary:
        summary()
        return
    cpu, native = cpu_model(), native_bf16()
    done = done_runs()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for method in args.methods:
        for seed in args.seeds:
            for precision in args.precisions:
                if (cpu, method, precision, seed) in done:
                    continue
                row = run_one(method, precision, seed, args.channels_last)
                row.update(cpu=cpu, native_bf16=native, date=time.strftime("%Y-%m-%d"))
                with open(RESULTS, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row, sort_keys=True) + "\n")
                print(json.dumps(row, sort_keys=True), flush=True)
    summary()


if __name__ == "__main__":
    main()
