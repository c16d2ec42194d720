"""The four studies with the smoke preset, and kill-and-resume through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval_suite.studies import STUDY_NAMES, get_study, run_study
from eval_suite.studies.base import AGREE, CANT_TELL, DISAGREE, get_preset
from hfssl.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def _check_report(out: Path, claims) -> str:
    text = (out / "REPORT.md").read_text()
    assert "## Verdicts" in text and "How verdicts are decided" in text
    for claim in claims:
        assert claim.verdict in (AGREE, DISAGREE, CANT_TELL)
        assert f"### {claim.key}: **{claim.verdict}**" in text
    return text


@pytest.mark.parametrize("name", STUDY_NAMES)
def test_every_study_builds_a_consistent_grid(name):
    for preset in ("smoke", "cpu", "paper"):
        cells = get_study(name).build(get_preset(preset), None, None)
        ids = [c.cell_id for c in cells]
        assert len(ids) == len(set(ids)) and ids
        assert all(c.baseline in ids for c in cells if c.baseline)


def test_bad_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown study"):
        run_study("nope", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown datasets"):
        run_study("imbalance", out_dir=tmp_path, datasets=["drive"])
    with pytest.raises(ConfigError, match="unknown method"):
        run_study("imbalance", out_dir=tmp_path, methods=["no_such_method"])


def test_imbalance_smoke_breastmnist(sandbox):
    outcome = run_study("imbalance", preset="smoke", out_dir=sandbox["out"], datasets=["breastmnist"])
    assert len(outcome.grid.computed) == 8  # 4 ratios x (rot + scratch)
    text = _check_report(sandbox["out"], outcome.claims)
    assert "| rot | 50:1 |" in text and "Δ minority recall" in text
    records = list((sandbox["out"] / "results").glob("*.json"))
    ratios = {json.loads(p.read_text())["regime"]["imbalance_ratio"] for p in records}
    assert ratios == {"balanced", "natural", "10", "50"}


@pytest.mark.parametrize("name", STUDY_NAMES)
def test_full_smoke_study(sandbox, name):
    # the smoke preset's promise: every study end to end (and a no-op re-run) in under two minutes
    # all together (56 s for the four on the 2-core development CPU)
    outcome = run_study(name, preset="smoke", out_dir=sandbox["out"])
    _check_report(sandbox["out"], outcome.claims)
    assert not outcome.grid.skipped
    again = run_study(name, preset="smoke", out_dir=sandbox["out"])
    assert not again.grid.computed


def test_kill_and_resume(sandbox):
    """SIGKILL a study after its first cell finished; the re-run recomputes no finished cell."""
    out = sandbox["out"]
    cmd = [
        sys.executable,
        "-m",
        "hfssl",
        "study",
        "transfer",
        "--preset",
        "smoke",
        "--datasets",
        "breastmnist",
        "--methods",
        "rot",
        "simclr",
        "--out",
        str(out),
        "--no-plots",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells_dir = out / "cells"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if cells_dir.is_dir() and any(cells_dir.glob("*.json")):
            break
        time.sleep(0.2)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {json.loads(p.read_text())["cell"] for p in cells_dir.glob("*.json")}
    assert finished, "the first cell never finished"
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    log = [json.loads(line) for line in (out / "run_log.jsonl").read_text().splitlines()]
    last_run = log[-1]["run"]
    rerun = {e["cell"]: e["event"] for e in log if e["run"] == last_run}
    assert all(rerun[c] == "skipped" for c in finished)
    assert set(rerun) == {"breastmnist/scratch", "breastmnist/rot", "breastmnist/simclr"}
    if killed:
        assert any(v == "computed" for v in rerun.values())
    # records that existed before the re-run were not rewritten
    assert {
        n: m
        for n, m in ((p.name, p.stat().st_mtime_ns) for p in (out / "results").glob("*.json"))
        if n in mtimes
    } == mtimes
    assert "no-universal-task" in (out / "REPORT.md").read_text()
    assert not list(sandbox["store"].glob(".tmp-*")) or killed  # a killed pretraining may leave a temp dir
