"""SIGKILL during ``hfssl evaluate``, between two seeds and inside one: the finished seeds' records
are complete, no partial record exists, and the re-run computes only the missing seeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from eval_suite.results import validate_record

ROOT = Path(__file__).resolve().parents[2]


def _evaluate(ckpt: Path, tmp: Path, seeds: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hfssl",
        "evaluate",
        "--checkpoint",
        str(ckpt),
        "--protocol",
        "finetune",  # trains: each seed takes long enough to be killed inside
        "--seeds",
        *seeds,
        "--epochs",
        "6",
        "--max-train-samples",
        "32",
        "--max-eval-samples",
        "32",
        "--n-bootstrap",
        "10",
        "--results-dir",
        str(tmp / "results"),
        "--cache-dir",
        str(tmp / "cache"),
    ]


def _records(folder: Path) -> dict[str, Path]:
    """Record files by name (a killed atomic write can leave only a hidden ``.<name>.*.tmp``)."""
    return {p.name: p for p in folder.glob("*.json") if not p.name.startswith(".")} if folder.is_dir() else {}


def _stderr_reader(proc: subprocess.Popen) -> bytearray:
    """Collect the child's stderr in the background (progress bars: ``finetune seed 1: ... loss=``)."""
    buf = bytearray()

    def pump() -> None:
        while chunk := proc.stderr.read1(4096):
            buf.extend(chunk)

    threading.Thread(target=pump, daemon=True).start()
    return buf


@pytest.mark.parametrize(
    "where", [pytest.param("between-seeds", marks=pytest.mark.slow), "inside-a-seed"]
)  # ~45 s each (two CLI runs load the data); the between-seeds case runs with -m slow
def test_killed_evaluate_keeps_finished_seeds_and_reruns_only_the_missing(tmp_path, data_dir, where):
    from hfssl import HfsslConfig, HfsslModel

    ckpt = tmp_path / "ck"
    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(ckpt)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HFSSL_DATA_DIR": str(data_dir)}
    env.pop("HFSSL_DISABLE_PROGRESS_BARS", None)  # the progress bar says when seed 1 trains
    results = tmp_path / "results"
    proc = subprocess.Popen(
        _evaluate(ckpt, tmp_path, ["0", "1"]), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    err = _stderr_reader(proc)

    def ready() -> bool:
        if where == "between-seeds":  # as soon as seed 0's record lands
            return bool(_records(results))
        return b"loss=" in err.partition(b"finetune seed 1:")[2]  # seed 1 has trained a step

    try:
        deadline = time.monotonic() + 240
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"

    first = _records(results)
    assert len(first) == 1, sorted(first)  # seed 0 finished, seed 1 did not
    ((name, path),) = first.items()
    record = json.loads(path.read_text(encoding="utf-8"))
    assert validate_record(record) == [] and record["seed"] == 0
    stamp, content = path.stat().st_mtime_ns, path.read_bytes()

    rerun = subprocess.run(
        _evaluate(ckpt, tmp_path, ["0", "1"]), env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"seed 0: record {name[:12]} exists" in rerun.stderr  # seed 0 skipped, not recomputed
    assert path.stat().st_mtime_ns == stamp and path.read_bytes() == content
    done = _records(results)
    assert len(done) == 2 and name in done
    seeds = sorted(json.loads(p.read_text(encoding="utf-8"))["seed"] for p in done.values())
    assert seeds == [0, 1]
    for p in done.values():
        assert validate_record(json.loads(p.read_text(encoding="utf-8"))) == []
