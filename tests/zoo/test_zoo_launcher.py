"""``hfssl zoo build --launcher submitit``: the tiny zoo's entry built through submitit's local executor
(one job per pretraining and evaluation cell) equals the in-process build; status lists its jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hfssl.cli.main import main

pytest.importorskip("submitit")

TINY = Path(__file__).with_name("tiny_zoo.yaml")


def _results(entry: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((entry / "eval_results").rglob("*.json")):
        rec = json.loads(path.read_text())
        out[path.relative_to(entry).as_posix()] = (
            rec["metrics"]["overall"] if "overall" in rec["metrics"] else rec["metrics"]
        )
    return out


@pytest.mark.slow
def test_zoo_build_through_submitit_equals_the_local_build(tmp_path, monkeypatch, capsys, data_dir):
    monkeypatch.setenv("HFSSL_ZOO_MANIFEST", str(TINY))
    local, sub = tmp_path / "local", tmp_path / "sub"
    assert main(["zoo", "build", "rot-tiny", "--store", str(local)]) == 0
    argv = ["zoo", "build", "rot-tiny", "--store", str(sub), "--launcher", "submitit"]
    assert main([*argv, "--submitit-cluster", "local", "--max-parallel", "2"]) == 0
    entry = sub / "cpu" / "rot-tiny"
    assert (entry / "zoo_entry.json").is_file() and not (sub / "cpu" / ".work" / "rot-tiny").exists()
    assert _results(entry) == _results(local / "cpu" / "rot-tiny")
    ledger = [json.loads(line) for line in (sub / "cpu" / "submitit" / "jobs.jsonl").read_text().splitlines()]
    submitted = [e for e in ledger if e["state"] == "submitted"]
    assert sum(e["kind"] == "pretrain" for e in submitted) == 2  # the entry and the baselines' donor
    assert sum(e["kind"] == "eval" for e in submitted) == 6  # linear, knn, finetune + their baselines
    capsys.readouterr()
    assert main(["zoo", "status", "rot-tiny", "--store", str(sub)]) == 0
    out = capsys.readouterr().out
    assert "built" in out and "4 done" in out  # the entry's own jobs: pretraining + 3 evaluations
    info = json.loads((entry / "zoo_entry.json").read_text())
    assert info["evaluation_seconds"] > 0 and info["pretraining"]["wall_seconds"] > 0
    # a second build submits nothing
    assert main([*argv, "--submitit-cluster", "local"]) == 0
    again = [json.loads(line) for line in (sub / "cpu" / "submitit" / "jobs.jsonl").read_text().splitlines()]
    assert len(again) == len(ledger)


def test_zoo_status_lists_an_entrys_jobs_and_their_failures(tmp_path, monkeypatch, capsys):
    from eval_suite.launchers import Ledger, ledger_path

    monkeypatch.setenv("HFSSL_ZOO_MANIFEST", str(TINY))
    store = tmp_path / "store"
    (store / "cpu" / ".work" / "rot-tiny").mkdir(parents=True)
    ledger = Ledger(ledger_path(store / "cpu"))
    far = {"cluster": "slurm", "host": "login1"}  # no sacct here: a queued Slurm job cannot be confirmed
    ledger.append(
        {"key": "zoo-pretrain/cpu/rot-tiny", "label": "rot-tiny:pretrain", "kind": "pretrain"}
        | far
        | {"job_id": "11", "state": "submitted"}
    )
    ledger.append({"key": "zoo-pretrain/cpu/rot-tiny", "job_id": "11", "state": "done", "seconds": 5.0})
    ledger.append(
        {
            "key": "eval/w/linear",
            "label": "rot-tiny:linear",
            "kind": "eval",
            "job_id": "12",
            "state": "failed",
        }
        | {
            "error": "RuntimeError: CUDA error: out of memory",
            "tail": ["Traceback", "RuntimeError: CUDA error: out of memory"],
        }
    )
    ledger.append(
        {"key": "eval/w/knn", "label": "rot-tiny:knn", "kind": "eval", "job_id": "13", "state": "submitted"}
        | far
    )
    capsys.readouterr()
    assert main(["zoo", "status", "rot-tiny", "simclr-tiny", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("rot-tiny "))
    assert "partial" in row and "1 done, 1 failed, 1 lost" in row
    assert "rot-tiny:linear (job 12): RuntimeError: CUDA error: out of memory" in out
    assert "rot-tiny:knn (job 13): the job is gone" in out
    assert next(line for line in out.splitlines() if line.startswith("simclr-tiny ")).split()[1] == "missing"
