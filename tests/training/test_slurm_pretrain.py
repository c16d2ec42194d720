"""``scripts/slurm_pretrain.sbatch`` run with fake ``srun`` / ``scontrol`` / ``accelerate``: each node's
``accelerate launch`` gets its rank from SLURM_NODEID and the first host as main process, and every
option it passes is accepted by accelerate's and hfssl.pretrain's parsers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm_pretrain.sbatch"


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _run(tmp_path: Path, *extra: str, checkpoints: bool = False) -> list[list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    _fake(bin_dir, "srun", 'shift\nfor n in 0 1; do SLURM_NODEID=$n "$@" || exit 1; done\n')
    _fake(bin_dir, "scontrol", '[ "$1 $2" = "show hostnames" ] && printf "gpu-a17\\ngpu-a18\\n"\n')
    _fake(bin_dir, "accelerate", 'printf "%s\\n" "$@"; echo "--END--"\n')
    out_dir = tmp_path / "run"
    if checkpoints:
        (out_dir / "checkpoints").mkdir(parents=True)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_NNODES": "2",
        "SLURM_JOB_NODELIST": "gpu-a[17-18]",
        "SLURM_JOB_ID": "424242",
        "OUTPUT_DIR": str(out_dir),
    }
    proc = subprocess.run(
        ["bash", str(SCRIPT), *extra], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    runs, current = [], []
    for line in proc.stdout.splitlines():
        if line == "--END--":
            runs.append(current)
            current = []
        elif not line.startswith("hfssl: "):
            current.append(line)
    return runs


def test_each_node_launches_with_its_rank_and_the_first_host(tmp_path):
    from accelerate.commands.launch import launch_command_parser

    from hfssl.cli.pretrain import parse_args

    header = SCRIPT.read_text()
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8"):
        assert line in header.splitlines()
    runs = _run(tmp_path, "--max-steps", "20000")
    assert len(runs) == 2  # one accelerate launch per node
    for rank, argv in enumerate(runs):
        assert argv[0] == "launch"
        args = launch_command_parser().parse_args(argv[1:])
        assert args.machine_rank == rank and args.num_machines == 2 and args.num_processes == 16
        assert args.main_process_ip == "gpu-a17" and args.main_process_port == 20000 + 424242 % 20000
        assert args.config_file == "scripts/accelerate_multinode.yaml" and args.module
        assert args.training_script == "hfssl.pretrain"
        model, data, targs = parse_args(args.training_script_args)
        assert model.method == "simclr" and data.dataset == "breastmnist"
        assert targs.max_steps == 20000 and targs.sync_batchnorm
        # the recipe's global batch, split over 16 processes
        recipe = yaml.safe_load((REPO / "scripts/recipes/simclr_breastmnist.yaml").read_text())
        assert targs.per_device_train_batch_size * 16 == recipe["per_device_train_batch_size"]
        assert targs.resume_from is None
    config = yaml.safe_load((REPO / "scripts/accelerate_multinode.yaml").read_text())
    assert config["num_machines"] == 2 and config["num_processes"] == 16


def test_resubmission_resumes_from_the_latest_checkpoint(tmp_path):
    from accelerate.commands.launch import launch_command_parser

    from hfssl.cli.pretrain import parse_args

    argv = _run(tmp_path, checkpoints=True)[0]
    args = launch_command_parser().parse_args(argv[1:])
    assert parse_args(args.training_script_args)[2].resume_from == "latest"
