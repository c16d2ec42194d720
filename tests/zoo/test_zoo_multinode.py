"""``hfssl zoo build --launcher submitit --gpus-per-job 8 --nodes 2``: a zoo entry's pretraining job takes
the studies' multi-node path (one task per node, ``accelerate launch`` with rank / address / port from
Slurm's environment) into the entry's resumable pretraining folder, and node 0 writes
``pretrain_done.json`` so that the build then finishes the entry as before.

Default tests (about 3 s): the generated sbatch text of the entry's jobs, and a pretraining job run on
"node 1" and "node 0" with a fake ``accelerate`` (what each node launches, parsed by accelerate's and
hfssl.pretrain's own parsers). ``slow``: a real two-process pretraining job (gloo on CPU) that
``build_entry`` then finishes into the store.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("submitit")

from eval_suite.launchers import (  # noqa: E402
    ClusterOptions,
    SubmititLauncher,
    make_launcher,
    slurm_setup_lines,
)
from hfssl.errors import ConfigError  # noqa: E402

TINY = Path(__file__).with_name("tiny_zoo.yaml")
JOB_ID = "123456"
FAKE_PYTHON = """#!{python}
# stands in for the python that runs accelerate launch: records what this node launches and, on the
# main node, leaves what a finished run leaves (the outputs pretrain_done.json is read from)
import json, os, sys
from pathlib import Path
argv = sys.argv[1:]
rank = argv[argv.index("--machine_rank") + 1]
Path(os.environ["FAKE_RECORD"], f"node{{rank}}.json").write_text(json.dumps(argv))
config = json.loads(Path(argv[argv.index("--config") + 1]).read_text())
out = Path(config["output_dir"])
if rank == "0":
    (out / "backbone").mkdir(parents=True, exist_ok=True)
    (out / "training_args.json").write_text(json.dumps({{"train_runtime": 7.5, "hardware": "16 x fake"}}))
    logs = [{{"step": 0, "knn_acc": 0.5}}, {{"step": 1, "loss": 1.4}}, {{"step": 2, "loss": 1.2}}]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in logs))
"""


def _entry(name: str = "rot-tiny"):
    from hfssl.zoo import load_manifest

    return load_manifest(TINY).get(name)


def _fake_slurm(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\nexit 0\n")  # accepts the --test-only probe
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "scontrol").write_text(
        '#!/bin/sh\n[ "$1 $2" = "show hostnames" ] && printf "gpu-a17\\ngpu-a18\\n"\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir


def test_zoo_entry_jobs_for_2_nodes_x_8_gpus(tmp_path, monkeypatch):
    """The sbatch text of an entry's pretraining job: 2 nodes, one task each, 8 GPUs each, and the
    accelerate command with rank / address / port from Slurm's variables; its evaluation jobs and the
    baselines' architecture donor stay one process on at most one GPU."""
    from eval_suite.zoo import entry_tasks
    from hfssl.zoo import ZooStore

    monkeypatch.setenv("PATH", f"{_fake_slurm(tmp_path)}:{os.environ['PATH']}")
    options = ClusterOptions(cluster="slurm", partition="gpu", nodes=2, gpus_per_job=8, timeout_min=2880)
    launcher = SubmititLauncher(options)
    tasks = entry_tasks(_entry(), "cpu", ZooStore(tmp_path / "store"), None, "auto", launcher)
    pretrain = next(t for t in tasks if t.key == "zoo-pretrain/cpu/rot-tiny")
    assert pretrain.multi_process and pretrain.fn.func.__name__ == "pretrain_job"
    text = launcher._executor(tmp_path, pretrain)._executor._make_submission_file_text("CMD", "uid")
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --partition=gpu",
    ):
        assert line in text.splitlines(), (line, text)
    assert (
        'export HFSSL_MAIN_PROCESS_IP="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"' in text
    )
    assert 'HFSSL_MAIN_PROCESS_PORT="$(( 20000 + SLURM_JOB_ID % 20000 ))"' in text
    launch = next(ln for ln in text.splitlines() if ln.startswith("export HFSSL_ACCELERATE_LAUNCH="))
    for part in (
        "--num_machines 2",
        "--num_processes 16",
        "--multi_gpu",
        '--machine_rank "${SLURM_NODEID:-0}"',
        '--main_process_ip "${HFSSL_MAIN_PROCESS_IP:-127.0.0.1}"',
        '--main_process_port "${HFSSL_MAIN_PROCESS_PORT:-29500}"',
    ):
        assert part in launch, (part, launch)
    assert text.index("HFSSL_ACCELERATE_LAUNCH") < text.index("srun")
    others = [t for t in tasks if t is not pretrain]
    assert {t.kind for t in others} == {"pretrain", "eval"}  # the donor pretraining and the cells
    for task in others:
        assert not task.multi_process
        text = launcher._executor(tmp_path, task)._executor._make_submission_file_text("CMD", "uid")
        assert "#SBATCH --nodes=1" in text and "#SBATCH --gpus-per-node=1" in text
        assert "ACCELERATE" not in text


def _node_env(tmp_path: Path, monkeypatch, bin_dir: Path, node: int) -> None:
    """This process as the task of node ``node`` of job JOB_ID, after the sbatch setup lines ran."""
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable))
    fake.chmod(0o755)
    setup = "\n".join(slurm_setup_lines(2, 8, python=str(fake)))
    env = {**os.environ, "SLURM_JOB_NODELIST": "gpu-a[17-18]", "SLURM_JOB_ID": JOB_ID}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    shown = subprocess.run(
        ["bash", "-c", f"{setup}\nenv -0"], env=env, capture_output=True, text=True, check=True
    ).stdout
    exported = dict(item.split("=", 1) for item in shown.split("\0") if item.startswith("HFSSL_"))
    for key, value in exported.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SLURM_NODEID", str(node))
    monkeypatch.setenv("SLURM_JOB_ID", JOB_ID)
    monkeypatch.setenv("HFSSL_JOB_NODES", "2")  # what the launcher sets in a multi-process job
    monkeypatch.setenv("HFSSL_JOB_GPUS", "8")


def test_each_node_of_a_zoo_pretraining_job_launches_accelerate(tmp_path, monkeypatch):
    """pretrain_job on node 1, then on node 0 (fake accelerate): each launches hfssl.pretrain with its
    rank, the first host and the job's port, on the entry's recipe with its budget, the global batch
    split over 16 processes; only node 0 writes pretrain_done.json, from the run's files."""
    from accelerate.commands.launch import launch_command_parser

    from eval_suite.zoo import PRETRAIN_DONE, _pretrain_overrides, pretrain_job
    from hfssl.cli.pretrain import parse_args
    from hfssl.training import arguments_from_recipe

    monkeypatch.setattr("eval_suite.zoo._has_cuda", lambda: True)  # the nodes of a GPU job
    bin_dir = _fake_slurm(tmp_path)
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("FAKE_RECORD", str(record))
    entry = _entry()
    out = tmp_path / "store" / "cpu" / ".work" / entry.name / "pretrain"
    expected_overrides, _ = _pretrain_overrides(entry, "cpu", out, "/data", "auto")
    _, _, single = arguments_from_recipe(entry.recipe_path(), expected_overrides)
    for node in (1, 0):
        _node_env(tmp_path, monkeypatch, bin_dir, node)
        pretrain_job(entry, "cpu", str(out), "/data", "auto")
        argv = json.loads((record / f"node{node}.json").read_text())
        assert argv[:2] == ["-m", "accelerate.commands.launch"]
        args = launch_command_parser().parse_args(argv[2:])
        assert args.machine_rank == node and args.num_machines == 2 and args.num_processes == 16
        assert args.main_process_ip == "gpu-a17" and args.main_process_port == 20000 + int(JOB_ID) % 20000
        assert args.module and args.training_script == "hfssl.pretrain"
        model, data, targs = parse_args(args.training_script_args)
        assert (model.method, model.backbone, data.dataset, data.data_dir) == (
            "rot",
            "test_resnet",
            "breastmnist",
            "/data",
        )
        assert targs.output_dir == str(out) and targs.max_steps == single.max_steps == 2
        assert (
            targs.per_device_train_batch_size * 16 == single.per_device_train_batch_size
        )  # global batch kept
        assert targs.sync_batchnorm and targs.save_strategy == "steps" and targs.resume_from is None
        same = {f.name for f in dataclasses.fields(targs)} - {
            "per_device_train_batch_size", "sync_batchnorm", "overwrite_output_dir",
        }  # fmt: skip
        assert {n: getattr(targs, n) for n in same} == {n: getattr(single, n) for n in same}
        assert (out / PRETRAIN_DONE).is_file() == (node == 0)  # node 1 leaves it to node 0
    done = json.loads((out / PRETRAIN_DONE).read_text())
    assert done["global_step"] == 2 and done["last_logs"]["loss"] == 1.2
    assert done["knn_monitor"] == [{"step": 0, "knn_acc": 0.5}] and done["hardware"] == "16 x fake"
    assert done["overrides"] == entry.overrides("cpu") and not done["resumed"]
    # the job again (re-run, requeue): the pretraining is done, nothing is launched
    (record / "node0.json").unlink()
    pretrain_job(entry, "cpu", str(out), "/data", "auto")
    assert not (record / "node0.json").exists()


def test_a_resubmitted_job_resumes_and_a_batch_that_does_not_split_is_refused(tmp_path, monkeypatch, capsys):
    from eval_suite.zoo import check_distributed, distributed_config
    from hfssl.cli.main import main

    entry = _entry()
    out = tmp_path / "pretrain"
    checkpoint = out / "checkpoints" / "checkpoint-1"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    values, resumed = distributed_config(entry, "cpu", out, None, "auto", 16)
    assert resumed and values["resume_from"] == "latest" and "overwrite_output_dir" not in values
    with pytest.raises(
        ConfigError, match="batch size 16 of zoo entry rot-tiny does not split over 3 processes"
    ):
        check_distributed(entry, "cpu", 3)
    # through the CLI: one line naming the fix, before anything is submitted
    monkeypatch.setenv("HFSSL_ZOO_MANIFEST", str(TINY))
    store = tmp_path / "store"
    argv = ["zoo", "build", "rot-tiny", "--store", str(store), "--launcher", "submitit"]
    capsys.readouterr()
    assert main([*argv, "--submitit-cluster", "local", "--gpus-per-job", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not split over 3 processes" in err and "--gpus-per-job" in err
    assert not (store / "cpu" / "submitit").exists()
    # --nodes > 1 needs Slurm: refused with the local executor (the launcher's check)
    launcher = make_launcher("submitit", ClusterOptions(cluster="local", nodes=2, gpus_per_job=8))
    with pytest.raises(ConfigError, match="--nodes 2 needs Slurm"):
        launcher.check()


@pytest.mark.slow
def test_a_two_process_zoo_pretraining_job_is_finished_into_the_store(tmp_path, monkeypatch, data_dir):
    """A real pretraining job with --gpus-per-job 2 (two accelerate processes, gloo on a CPU-only
    machine) in the entry's work folder; build_entry then evaluates and finishes the entry as always."""
    import socket

    from eval_suite.zoo import PRETRAIN_DONE, build_entry, pretrain_job
    from hfssl.zoo import ZooStore, load_manifest

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HFSSL_MAIN_PROCESS_PORT", str(port))
    monkeypatch.setenv("HFSSL_JOB_NODES", "1")
    monkeypatch.setenv("HFSSL_JOB_GPUS", "2")
    entry, store = _entry(), ZooStore(tmp_path / "store")
    out = store.work_dir(entry.name, "cpu") / "pretrain"
    pretrain_job(entry, "cpu", str(out), str(data_dir), "cpu")
    done = json.loads((out / PRETRAIN_DONE).read_text())
    args = json.loads((out / "training_args.json").read_text())
    assert args["num_processes"] == 2 and args["per_device_train_batch_size"] == 8
    assert args["total_batch_size"] == 16 and done["global_step"] == 2 and done["last_logs"]["loss"] > 0
    for key in ("HFSSL_JOB_NODES", "HFSSL_JOB_GPUS"):
        monkeypatch.delenv(key)
    outcome = build_entry(
        entry, budget="cpu", store=store, data_dir=str(data_dir), device="cpu", manifest=load_manifest(TINY)
    )
    assert outcome.status == "built"
    info = json.loads((store.entry_dir(entry.name, "cpu") / "zoo_entry.json").read_text())
    assert info["pretraining"]["global_step"] == 2 and info["pretraining"]["hardware"]
    assert not store.work_dir(entry.name, "cpu").exists()


@pytest.mark.slow
def test_zoo_build_with_two_gpus_per_job_through_submitit(tmp_path, monkeypatch, capsys, data_dir):
    """``hfssl zoo build --launcher submitit --gpus-per-job 2`` on submitit's local executor: the entry's
    pretraining job runs two accelerate processes (gloo on a CPU-only machine), the driver finishes it."""
    from hfssl.cli.main import main

    monkeypatch.setenv("HFSSL_ZOO_MANIFEST", str(TINY))
    store = tmp_path / "store"
    argv = ["zoo", "build", "rot-tiny", "--store", str(store), "--data-dir", str(data_dir), "--device", "cpu"]
    argv += [
        "--launcher",
        "submitit",
        "--submitit-cluster",
        "local",
        "--gpus-per-job",
        "2",
        "--max-parallel",
        "2",
    ]
    assert main(argv) == 0
    info = json.loads((store / "cpu" / "rot-tiny" / "zoo_entry.json").read_text())
    assert info["pretraining"]["global_step"] == 2 and "2" in str(info["pretraining"]["hardware"])
    assert not (store / "cpu" / ".work" / "rot-tiny").exists()
