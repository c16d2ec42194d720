"""Do the newer pretext methods learn on real data? kNN lift over random init, against SimCLR's.

Reruns the setting of ``tests/training/test_knn_lift.py`` (BreastMNIST 28 px, ``test_resnet``,
centred kNN monitor, k 20, on the 78 validation images) through the ``hfssl pretrain`` command
line for SimCLR (the baseline), VICReg, Barlow Twins and DINO with SimCLR's budget (250 steps,
batch 128, lr 3e-3, same seeds), and for ``distill`` with the seed's SimCLR backbone as the
teacher (``--method-kwargs '{"teacher": FOLDER}'``). One JSON line per run (method, seed, random-
init and final kNN accuracy, steps, wall time, CPU model, date; distill also the teacher's score)
is appended to ``benchmarks/results/knn_lift.jsonl``. Runs already recorded for this CPU are
skipped, so a killed run resumes. The SimCLR backbones (distill's teachers) are kept under
``--work-dir``; a missing one is retrained (same seed) before its distill run.

Claims checked by ``--summary``: mean lift (final - init) of each method >= SimCLR's mean lift;
distill's mean kNN accuracy >= 90 % of its teachers' mean.

    python benchmarks/knn_lift.py --jobs 2              # 15 runs, one thread each, 2 at a time
    python benchmarks/knn_lift.py --summary
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "knn_lift.jsonl"

COMMON = [
    "--backbone", "test_resnet", "--dataset", "breastmnist", "--warmup-ratio", "0.05",
    "--weight-decay", "1e-4", "--logging-steps", "50", "--eval-strategy", "steps", "--eval-steps", "50",
    "--save-strategy", "no", "--report-to", "none", "--disable-tqdm", "true",
]  # fmt: skip
BUDGET = ["--learning-rate", "3e-3", "--per-device-train-batch-size", "128", "--max-steps", "250"]
SETTINGS = {  # SimCLR's setting of tests/training/test_knn_lift.py; the same budget for every method
    "simclr": ["--method", "simclr", "--method-kwargs", '{"temperature": 0.5}', *BUDGET],
    "vicreg": ["--method", "vicreg", *BUDGET],
    "barlow_twins": ["--method", "barlow_twins", *BUDGET],
    "dino": ["--method", "dino", *BUDGET],
    "distill": ["--method", "distill", *BUDGET],  # + the teacher (the seed's SimCLR backbone)
}
DISTILL_TARGET = 0.9  # student >= 90 % of the teacher's kNN accuracy
_LOCK = threading.Lock()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), "")
    except OSError:
        return ""


def rows() -> list[dict]:
    if not RESULTS.is_file():
        return []
    return [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]


def pretrain(argv: list[str], out: Path) -> tuple[list[dict], float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HFSSL_DISABLE_PROGRESS_BARS="1")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "hfssl.pretrain", *argv, "--output-dir", str(out)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    lines = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    return [r for r in lines if "knn_accuracy" in r], wall


def teacher_dir(work: Path, seed: int) -> Path:
    return work / f"simclr_s{seed}" / "backbone"


def run_one(method: str, seed: int, work: Path) -> dict:
    argv = [*COMMON, *SETTINGS[method], "--seed", str(seed)]
    extra: dict = {}
    if method == "distill":
        teacher = teacher_dir(work, seed)
        if not teacher.is_dir():  # retrain the seed's SimCLR backbone (same setting, same seed)
            evals, _ = pretrain([*COMMON, *SETTINGS["simclr"], "--seed", str(seed)], teacher.parent)
        teacher_score = next(
            (r["knn_accuracy"] for r in rows() if (r["method"], r["seed"]) == ("simclr", seed)), None
        )
        argv += ["--method-kwargs", json.dumps({"teacher": str(teacher)})]
        extra = {"teacher": f"simclr seed {seed}", "teacher_knn_accuracy": teacher_score}
    if method == "simclr":  # keep the backbone: distill's teacher
        out = work / f"simclr_s{seed}"
        shutil.rmtree(out, ignore_errors=True)
        evals, wall = pretrain(argv, out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            evals, wall = pretrain(argv, Path(tmp))
    assert evals[0]["step"] == 0, evals[0]
    return {
        "method": method,
        "seed": seed,
        "knn_accuracy_init": evals[0]["knn_accuracy"],
        "knn_accuracy": evals[-1]["knn_accuracy"],
        "knn_curve": [[r["step"], r["knn_accuracy"]] for r in evals],
        "steps": evals[-1]["step"],
        "wall_s": round(wall, 1),
        **extra,
    }


def summary() -> None:
    data = rows()
    for cpu in sorted({r["cpu"] for r in data}):
        print(f"CPU: {cpu}")
        by = {m: [r for r in data if (r["cpu"], r["method"]) == (cpu, m)] for m in SETTINGS}
        lift = {}
        for method, rs in by.items():
            if not rs:
                continue
            rs = sorted(rs, key=lambda r: r["seed"])
            init = statistics.mean(r["knn_accuracy_init"] for r in rs)
            final = statistics.mean(r["knn_accuracy"] for r in rs)
            lift[method] = final - init
            per = ", ".join(f"s{r['seed']} {r['knn_accuracy_init']:.3f}->{r['knn_accuracy']:.3f}" for r in rs)
            print(
                f"  {method:12s} n={len(rs)} mean {init:.3f} -> {final:.3f} (lift {lift[method]:+.3f}) | {per}"
            )
        base = lift.get("simclr")
        for method in ("vicreg", "barlow_twins", "dino"):
            if method in lift and base is not None:
                ok = "PASS" if lift[method] >= base else "FAIL"
                print(f"  {method}: lift {lift[method]:+.3f} vs SimCLR {base:+.3f} -> {ok}")
        students = [r for r in by["distill"] if r.get("teacher_knn_accuracy") is not None]
        if students:
            s = statistics.mean(r["knn_accuracy"] for r in students)
            t = statistics.mean(r["teacher_knn_accuracy"] for r in students)
            ok = "PASS" if s >= DISTILL_TARGET * t else "FAIL"
            print(f"  distill: student {s:.3f} vs teacher {t:.3f} = {s / t:.1%} (target >= 90 %) -> {ok}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    parser.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "hfssl_knn_lift"))
    parser.add_argument("--summary", action="store_true", help="print the table of recorded runs and exit")
    args = parser.parse_args()
    if args.summary:
        summary()
        return
    cpu, work = cpu_model(), Path(args.work_dir)
    done = {(r["cpu"], r["method"], r["seed"]) for r in rows()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    todo = [(m, s) for m in args.methods for s in args.seeds if (cpu, m, s) not in done]
    # distill needs its teacher's recorded score: run it after the SimCLR runs
    todo.sort(key=lambda ms: ms[0] == "distill")
    first = [ms for ms in todo if ms[0] != "distill"]
    last = [ms for ms in todo if ms[0] == "distill"]

    def job(ms: tuple[str, int]) -> None:
        row = run_one(*ms, work)
        row.update(cpu=cpu, date=time.strftime("%Y-%m-%d"))
        with _LOCK, open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
        print(json.dumps(row, sort_keys=True), flush=True)

    for batch in (first, last):
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(job, batch))
    summary()


if __name__ == "__main__":
    main()
