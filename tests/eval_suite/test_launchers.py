"""Launchers: a study through submitit's local executor (real subprocesses, the submission path used on
Slurm) gives the same REPORT.md as ``--launcher local``; a killed job is the only one re-run; nothing is
submitted twice; the multi-node sbatch script is checked as text.

Time budget: the default tests here share one module fixture: the smoke preset end to end through
submitit (two pretraining jobs, then two evaluation jobs of which one is killed; 32 s), the re-run (one
evaluation job; 13 s), then ``--launcher local`` on the same checkpoint store (evaluations only, in this
process; 6 s): 51-58 s in all on the 2-core development CPU at a load average of 9-10 (each job is a
fresh Python importing torch). ``slow``: a local run pretraining into a store of its own gives the same
report (about 2 s after the fixture), and a two-process ``accelerate launch`` pretraining (about 30 s).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit")

from eval_suite.launchers import (  # noqa: E402
    ClusterOptions,
    JobsFailed,
    Ledger,
    SubmititLauncher,
    Task,
    ledger_path,
    make_launcher,
    parse_slurm_extra,
    slurm_setup_lines,
)
from hfssl.errors import ConfigError  # noqa: E402

STUDY = "transfer"
KILLED = "breastmnist/rot"


def tiny_smoke():
    """The smoke preset at its smallest: test backbone, one pretraining step, 32 rows."""
    from eval_suite.studies.base import STUDY_PRESETS

    return dataclasses.replace(
        STUDY_PRESETS["smoke"],
        backbone_2d="test_resnet",
        pretrain_steps=1,
        pretrain_batch=8,
        max_train_samples=32,
        max_eval_samples=32,
        n_bootstrap=50,
        methods=("rot",),
    )


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _kill_job_when_running(ledger: Path, label_suffix: str, found: dict, stop: threading.Event) -> None:
    """SIGKILL the job of ``label_suffix`` (its submitit controller and the task process under it)
    once the task process runs."""
    while not stop.is_set():
        for ev in Ledger(ledger).events():
            if ev.get("state") == "submitted" and str(ev.get("label", "")).endswith(label_suffix):
                pid = int(ev["job_id"])
                deadline = time.monotonic() + 60
                while not _children(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                for child in _children(pid):
                    os.kill(child, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
                found["job_id"] = ev["job_id"]
                return
        time.sleep(0.05)


def _status(out: Path, capsys) -> str:
    from hfssl.cli.main import main

    capsys.readouterr()
    assert main(["study", "status", str(out)]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """The smoke preset end to end through submitit's local executor, with a checkpoint store of its
    own: its two pretrainings and two evaluations are jobs, and one evaluation job is killed; then the
    re-run of the same command; then ``--launcher local`` on the same store (the store's point: one
    pretraining per spec), which therefore only evaluates, in this process."""
    from eval_suite.studies import run_study
    from eval_suite.studies.base import STUDY_PRESETS

    root = tmp_path_factory.mktemp("launchers")
    store = root / "store"
    common = {"preset": "smoke", "datasets": ["breastmnist"], "checkpoint_store": store, "plots": False}
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(STUDY_PRESETS, "smoke", tiny_smoke())
        sub = root / "submitit"
        options = ClusterOptions(cluster="local", max_parallel=2, poll_s=0.2)
        found: dict = {}
        stop = threading.Event()
        killer = threading.Thread(
            target=_kill_job_when_running, args=(ledger_path(sub), KILLED, found, stop), daemon=True
        )
        killer.start()
        t0 = time.perf_counter()
        with pytest.raises(JobsFailed) as failed:
            run_study(
                STUDY,
                out_dir=sub,
                cache_dir=str(root / "cache-s"),
                launcher=make_launcher("submitit", options),
                **common,
            )
        t_first = time.perf_counter() - t0
        stop.set()
        killer.join()
        ledger_after_kill = Ledger(ledger_path(sub)).events()
        mtimes = {p.name: p.stat().st_mtime_ns for p in (sub / "results").glob("*.json")}
        markers = sorted(p.name for p in (sub / "cells").glob("*.json"))
        t0 = time.perf_counter()
        again = run_study(
            STUDY,
            out_dir=sub,
            cache_dir=str(root / "cache-s"),
            launcher=make_launcher("submitit", options),
            **common,
        )
        t_again = time.perf_counter() - t0
        checkpoints = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
        t0 = time.perf_counter()
        local = run_study(STUDY, out_dir=root / "local", cache_dir=str(root / "cache-l"), **common)
        t_local = time.perf_counter() - t0
    return {
        "root": root,
        "store": store,
        "checkpoints": checkpoints,
        "local": local,
        "sub": sub,
        "failed": failed.value,
        "killed_job": found.get("job_id"),
        "ledger_after_kill": ledger_after_kill,
        "mtimes": mtimes,
        "markers": markers,
        "again": again,
        "times": (t_first, t_again, t_local),
    }


def _without_timing(text: str) -> str:
    return re.sub(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d", "Generated <time>", text)


def test_submitit_report_equals_local_report(runs):
    local = (runs["root"] / "local" / "REPORT.md").read_text()
    sub = (runs["sub"] / "REPORT.md").read_text()
    assert "Generated <time>" in _without_timing(local)
    assert _without_timing(sub) == _without_timing(local)
    assert runs["local"].grid.computed == ["breastmnist/scratch", KILLED]
    # same records, bit for bit (the record id covers checkpoint, data, protocol and seed)
    local_ids = sorted(p.name for p in (runs["root"] / "local" / "results").glob("*.json"))
    assert sorted(p.name for p in (runs["sub"] / "results").glob("*.json")) == local_ids
    # the local run evaluated the checkpoints the submitit jobs pretrained: none written again
    assert {p.name: p.stat().st_mtime_ns for p in runs["store"].iterdir()} == runs["checkpoints"]
    assert len(runs["checkpoints"]) == 2  # rot, and the architecture donor of the scratch cell


def test_killed_job_fails_alone_and_the_rerun_finishes_only_it(runs):
    assert runs["killed_job"], "the killer never saw the job"
    assert "1 of 4 jobs" in str(runs["failed"]) and KILLED in str(runs["failed"])
    # after the kill: the other cell finished, the killed one did not
    assert len(runs["markers"]) == 1 and runs["markers"][0].startswith("breastmnist_scratch")
    again = runs["again"].grid
    assert again.computed == [KILLED] and again.skipped == ["breastmnist/scratch"]
    # the finished cell's records were not rewritten
    assert {
        n: m
        for n, m in ((p.name, p.stat().st_mtime_ns) for p in (runs["sub"] / "results").glob("*.json"))
        if n in runs["mtimes"]
    } == runs["mtimes"]
    # the ledger: the first run pretrains in jobs, then evaluates once each checkpoint exists; the
    # re-run submits only the killed cell (its checkpoint is in the store); nothing is submitted twice
    first = [e for e in runs["ledger_after_kill"] if e["state"] == "submitted"]
    assert [e["kind"] for e in first] == ["pretrain", "pretrain", "eval", "eval"]
    events = Ledger(ledger_path(runs["sub"])).events()
    rerun = [e for e in events[len(runs["ledger_after_kill"]) :] if e["state"] == "submitted"]
    assert [(e["kind"], e["label"].split(":", 1)[1]) for e in rerun] == [("eval", KILLED)]
    evals = [e["label"].split(":", 1)[1] for e in events if e["state"] == "submitted" and e["kind"] == "eval"]
    assert sorted(evals) == sorted(["breastmnist/scratch", KILLED, KILLED])
    failed = [e for e in events if e["state"] == "failed"]
    assert len(failed) == 1 and failed[0]["job_id"] == runs["killed_job"]
    done = [e for e in events if e["state"] == "done"]
    assert len(done) == 4 and all(e["seconds"] > 0 for e in done)  # 2 pretrainings, 2 evaluations
    log = [json.loads(line) for line in (runs["sub"] / "run_log.jsonl").read_text().splitlines()]
    last = log[-1]["run"]
    assert {e["cell"]: e["event"] for e in log if e["run"] == last} == {
        "breastmnist/scratch": "skipped",
        KILLED: "computed",
    }
    assert (runs["sub"] / "submitit" / "logs" / runs["killed_job"]).is_dir()


def test_status_lists_cells_with_state_and_wall_time(runs, capsys):
    text = _status(runs["sub"], capsys)
    assert text.startswith("2 done, 0 running, 0 queued, 0 failed (of 2 cells)")
    assert re.search(r"cell time so far: \d+\.\d min", text.splitlines()[1])
    rows = {line.split()[0]: line for line in text.splitlines()[4:] if line.strip()}
    assert set(rows) == {"breastmnist/scratch", KILLED}
    assert all(re.search(r"done\s+\d+ s", row) for row in rows.values())
    local = _status(runs["root"] / "local", capsys)
    assert local.startswith("2 done, 0 running, 0 queued, 0 failed")


def test_status_shows_a_killed_job_as_failed(tmp_path, capsys):
    """The ledger and grid.json of a run whose job was killed -> failed, with the log's last lines."""
    out = tmp_path / "s"
    (out / "cells").mkdir(parents=True)
    (out / "grid.json").write_text(
        json.dumps(
            {
                "grid_version": 2,
                "cells": [{"cell": "a/rot", "marker": "a_rot-0123456789.json", "pretrain": None}],
            }
        )
    )
    logs = out / "submitit" / "logs" / "4242"
    logs.mkdir(parents=True)
    (logs / "4242_0_log.err").write_text(
        "Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n"
    )
    ledger = Ledger(ledger_path(out))
    base = {"key": "eval/x/a_rot-0123456789.json", "label": "s:a/rot", "kind": "eval", "job_id": "4242"}
    ledger.append({**base, "state": "submitted", "cluster": "local", "host": "elsewhere"})
    text = _status(out, capsys)
    assert text.startswith("0 done, 0 running, 0 queued, 1 failed")
    assert "killed or pre-empted" in text and "CUDA out of memory" in text


def test_a_live_job_of_an_earlier_driver_is_waited_for_not_resubmitted(tmp_path):
    """A ledger entry whose job still runs: the driver waits for its result and submits nothing."""
    done_file = tmp_path / "result"
    code = "import sys, time, pathlib; time.sleep(1.0); pathlib.Path(sys.argv[1]).write_text('x')"
    proc = subprocess.Popen([sys.executable, "-c", code, str(done_file), "submitit"])  # looks like a job
    deadline = time.monotonic() + 30
    while b"submitit" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():  # until exec'd: a job
        assert time.monotonic() < deadline, "the fake job did not start"
        time.sleep(0.01)
    try:
        ledger = Ledger(ledger_path(tmp_path))
        ledger.append(
            {
                "key": "t",
                "label": "t",
                "kind": "eval",
                "job_id": str(proc.pid),
                "cluster": "local",
                "host": os.uname().nodename,
                "state": "running",
            }
        )
        task = Task("t", "eval", "t", fn=lambda: None, is_done=done_file.exists)
        launcher = SubmititLauncher(ClusterOptions(cluster="local", poll_s=0.1))
        launcher.run([task], tmp_path)
    finally:
        proc.wait()
    states = [e["state"] for e in Ledger(ledger_path(tmp_path)).events()]
    assert states == ["running", "done"]  # no "submitted": nothing was submitted again
    assert done_file.exists()


def test_multinode_sbatch_script(tmp_path, monkeypatch):
    """The sbatch text submitit generates for a 2-node x 8-GPU pretraining: nodes, tasks, GPUs, and
    the accelerate command with rank / address / port taken from Slurm's variables."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "scontrol").write_text(
        '#!/bin/sh\n[ "$1 $2" = "show hostnames" ] && printf "gpu-a17\\ngpu-a18\\n"\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    options = ClusterOptions(
        cluster="slurm", partition="gpu", nodes=2, gpus_per_job=8, cpus_per_job=32, timeout_min=2880,
        max_parallel=4, slurm_extra=parse_slurm_extra(["account=proj", "constraint=a100"]),
    )  # fmt: skip
    launcher = SubmititLauncher(options)
    pretrain = Task("p", "pretrain", "p", fn=lambda: None, is_done=lambda: False, multi_process=True)
    text = launcher._executor(tmp_path, pretrain)._executor._make_submission_file_text("CMD", "uid")
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --cpus-per-task=32",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=2880",
        "#SBATCH --account=proj",
        "#SBATCH --constraint=a100",
    ):
        assert line in text.splitlines(), (line, text)
    assert (
        'export HFSSL_MAIN_PROCESS_IP="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"' in text
    )
    assert 'HFSSL_MAIN_PROCESS_PORT="$(( 20000 + SLURM_JOB_ID % 20000 ))"' in text
    launch = next(ln for ln in text.splitlines() if ln.startswith("export HFSSL_ACCELERATE_LAUNCH="))
    for part in (
        "-m accelerate.commands.launch",
        "--num_machines 2",
        "--num_processes 16",
        "--multi_gpu",
        '--machine_rank "${SLURM_NODEID:-0}"',
        '--main_process_ip "${HFSSL_MAIN_PROCESS_IP:-127.0.0.1}"',
        "--rdzv_backend static",
    ):
        assert part in launch, (part, launch)
    assert text.index("HFSSL_ACCELERATE_LAUNCH") < text.index("srun")  # set up before the tasks start
    # what node 1 of job 123456 runs: the setup lines, then its task expands the command
    setup = "\n".join(ln for ln in slurm_setup_lines(2, 8, python="python") if not ln.startswith("#"))
    script = f'{setup}\nSLURM_NODEID=1 bash -c "$HFSSL_ACCELERATE_LAUNCH"\n'
    fake_launch = tmp_path / "python"
    fake_launch.write_text('#!/bin/sh\necho "$@"\n')
    fake_launch.chmod(0o755)
    env = {
        **os.environ,
        "SLURM_JOB_NODELIST": "gpu-a[17-18]",
        "SLURM_JOB_ID": "123456",
        "PATH": f"{tmp_path}:{bin_dir}:{os.environ['PATH']}",
    }
    argv = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert argv[argv.index("--machine_rank") + 1] == "1"
    assert argv[argv.index("--main_process_ip") + 1] == "gpu-a17"
    assert argv[argv.index("--main_process_port") + 1] == str(20000 + 123456 % 20000)
    # evaluation jobs: one node, one GPU, no accelerate setup
    evaluation = Task("e", "eval", "e", fn=lambda: None, is_done=lambda: False)
    text = launcher._executor(tmp_path, evaluation)._executor._make_submission_file_text("CMD", "uid")
    assert "#SBATCH --nodes=1" in text and "#SBATCH --gpus-per-node=1" in text and "ACCELERATE" not in text


def test_pretrain_argv_keeps_the_global_batch(tmp_path):
    from eval_suite.studies.grid import CheckpointStore, PretrainSpec
    from hfssl.cli.pretrain import parse_args

    spec = PretrainSpec(
        method="simclr", backbone="resnet18", batch_size=256, backbone_kwargs={"drop_rate": 0.1}
    )
    argv = CheckpointStore(tmp_path).pretrain_argv(spec, str(tmp_path / "o"), data_dir=None, world=16)
    model, data, args = parse_args(argv)
    assert args.per_device_train_batch_size == 16 and args.max_steps == spec.max_steps
    assert model.backbone_kwargs == {"drop_rate": 0.1} and data.dataset == spec.dataset
    with pytest.raises(ConfigError, match="does not split over 3"):
        CheckpointStore(tmp_path).pretrain_argv(spec, "o", data_dir=None, world=3)


@pytest.mark.slow
def test_a_local_run_with_its_own_store_gives_the_same_report(runs, tmp_path):
    """``--launcher local`` pretraining in this process (a store of its own) and the submitit run whose
    jobs pretrained: the same REPORT.md (the pretraining is deterministic whoever runs it)."""
    from eval_suite.studies import run_study
    from eval_suite.studies.base import STUDY_PRESETS

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(STUDY_PRESETS, "smoke", tiny_smoke())
        run_study(
            STUDY, preset="smoke", out_dir=tmp_path / "l", datasets=["breastmnist"], checkpoint_store=tmp_path / "store",
            cache_dir=str(tmp_path / "c"), plots=False,
        )  # fmt: skip
    sub = (runs["sub"] / "REPORT.md").read_text()
    assert _without_timing((tmp_path / "l" / "REPORT.md").read_text()) == _without_timing(sub)


@pytest.mark.slow
def test_two_process_pretraining_lands_in_the_store(tmp_path, monkeypatch, data_dir):
    """What a pretraining job with --gpus-per-job 2 runs: accelerate launch with 2 processes (gloo on a
    CPU-only machine), the spec's global batch split over them, the result renamed into the store."""
    import socket

    from eval_suite.studies.grid import CheckpointStore, PretrainSpec, pretrain_task

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HFSSL_MAIN_PROCESS_PORT", str(port))
    monkeypatch.setenv("HFSSL_JOB_NODES", "1")
    monkeypatch.setenv("HFSSL_JOB_GPUS", "2")
    spec = PretrainSpec(method="rot", backbone="test_resnet", max_steps=2, batch_size=8)
    pretrain_task(spec, str(tmp_path / "store"), str(tmp_path / "out"), str(data_dir), "auto")
    store = CheckpointStore(tmp_path / "store")
    assert store.has(spec) and not list((tmp_path / "store").glob(".tmp-*"))
    args = json.loads((store.folder(spec) / "training_args.json").read_text())
    assert args["per_device_train_batch_size"] == 4 and args["num_processes"] == 2
    assert args["total_batch_size"] == spec.batch_size  # the spec's global batch: its store key holds
    assert not list((tmp_path / "out" / "status").glob("*.json"))  # no task left "running"


def test_a_submission_slurm_refuses_is_one_line_with_slurms_message(tmp_path, monkeypatch, capsys):
    """sbatch accepts the --test-only probe but refuses the real submission (e.g. a job limit): the
    error names Slurm's reason; nothing is recorded as submitted."""
    from eval_suite.studies import run_study
    from eval_suite.studies.base import STUDY_PRESETS

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    refuse = "sbatch: error: QOSMaxSubmitJobPerUserLimit"
    (bin_dir / "sbatch").write_text(
        f'#!/bin/sh\ncase "$*" in *--test-only*) exit 0;; esac\necho "{refuse}" >&2\nexit 1\n'
    )
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setitem(STUDY_PRESETS, "smoke", tiny_smoke())
    launcher = make_launcher("submitit", ClusterOptions(cluster="slurm", partition="gpu"))
    capsys.readouterr()
    with pytest.raises(ConfigError, match=f"submitting 2 job\\(s\\) failed: {refuse}"):
        run_study(
            STUDY,
            out_dir=tmp_path / "s",
            datasets=["breastmnist"],
            checkpoint_store=tmp_path / "st",
            launcher=launcher,
        )
    assert refuse not in capsys.readouterr().err  # said once, in the error, not echoed as well
    assert not [e for e in Ledger(ledger_path(tmp_path / "s")).events() if e.get("state") == "submitted"]
