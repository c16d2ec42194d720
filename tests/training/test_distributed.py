"""Two CPU processes (gloo, ``accelerate launch --multi_gpu --num_processes 2``) against one process
with the same global batch.

The comparison is made exact up to float rounding by removing every source of per-process
difference the maths allows: ROT with ``all_rotations`` and its pre-rotation crop and flip off
(no random views), a ViT backbone
(LayerNorm: no per-process batch statistics). Then DDP's gradient average over two halves equals
the gradient of the whole batch, and the loss curves must agree to ~1e-6.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from hfssl.cli.pretrain import run
from tests.conftest import REPO_ROOT

ARGS = [
    "--method", "rot",
    "--method-kwargs", '{"all_rotations": true, "head_hidden_dim": 64, "crop_min_area": 1.0, "flip_prob": 0.0}',
    "--backbone", "test_vit",
    "--backbone-kwargs", '{"patch_size": 4}',
    "--dataset", "breastmnist",
    "--max-steps", "3",
    "--logging-steps", "1",
    "--save-strategy", "no",
    "--eval-strategy", "steps",
    "--eval-steps", "3",
    "--per-device-eval-batch-size", "200",
    "--report-to", "none",
    "--seed", "3",
    "--mixed-precision", "no",  # exact up to fp32 rounding: bf16 autocast (CPU default) rounds more
]  # fmt: skip


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path: Path, data_dir: Path) -> None:
    two = tmp_path / "two"
    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    cmd = [
        *launcher, "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "-m", "hfssl.pretrain", *ARGS, "--per-device-train-batch-size", "8",
        "--output-dir", str(two),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "processes = 2" in log and "total batch = 16" in log
    assert log.count("Running pretraining") == 1 and log.count("pretraining done") == 1  # main process only

    one = tmp_path / "one"
    assert run([*ARGS, "--per-device-train-batch-size", "16", "--output-dir", str(one)]) == 0

    rec_two, rec_one = _records(two), _records(one)
    assert [r["step"] for r in rec_two] == [r["step"] for r in rec_one] == [0, 1, 2, 3, 3]  # logged once
    loss_two = [r["loss"] for r in rec_two if "loss" in r]
    loss_one = [r["loss"] for r in rec_one if "loss" in r]
    assert loss_two == pytest.approx(loss_one, abs=1e-5)
    assert loss_one[-1] < loss_one[0]  # it trains
    knn_two = [r["knn_accuracy"] for r in rec_two if "knn_accuracy" in r]
    knn_one = [r["knn_accuracy"] for r in rec_one if "knn_accuracy" in r]
    assert knn_two == pytest.approx(knn_one, abs=1.5 / 78)  # gather_for_metrics: all 78 val images, once
    w_two = load_file(str(two / "pretext_model" / "model.safetensors"))
    w_one = load_file(str(one / "pretext_model" / "model.safetensors"))
    assert w_two.keys() == w_one.keys()
    for key in w_one:
        assert (w_two[key] - w_one[key]).abs().max() < 1e-4, key
