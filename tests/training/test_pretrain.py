"""The pretraining loop end to end on BreastMNIST 28 px with tiny backbones (CPU)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hfssl.cli.main import main as cli_main
from hfssl.cli.pretrain import parse_args, run
from hfssl.data.samplers import EpochShuffleSampler
from hfssl.errors import CheckpointError, ConfigError
from hfssl.training import TrainingError
from hfssl.training.checkpointing import CheckpointManager
from tests.conftest import REPO_ROOT
from tests.training.conftest import fast_args

# BYOL: views from the trainer's generator, an EMA target with a step-counter buffer, a cosine
# momentum schedule; drop-path draws from the global torch RNG; 78 validation images at 8 x 2
# accumulation give 4 optimiser steps per epoch, so 7 steps cross an epoch boundary and the
# kill (after the checkpoint of step 6) lands in the middle of the second epoch.
RESUME_ARGS = [
    "--method", "byol",
    "--method-kwargs", '{"projection_hidden_dim": 64, "prediction_hidden_dim": 64, "projection_dim": 32}',
    "--backbone", "test_resnet",
    "--backbone-kwargs", '{"drop_path_rate": 0.1}',
    "--dataset", "breastmnist",
    "--unlabelled-splits", "validation",
    "--per-device-train-batch-size", "8",
    "--gradient-accumulation-steps", "2",
    "--max-steps", "7",
    "--warmup-steps", "2",
    "--logging-steps", "1",
    "--save-steps", "3",
    "--save-total-limit", "2",
    "--eval-strategy", "steps",
    "--eval-steps", "4",
    "--report-to", "tensorboard",
    "--seed", "7",
]  # fmt: skip

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from hfssl.cli.pretrain import run
    from hfssl.training import TrainerCallback

    class KillAfterSave(TrainerCallback):
        def on_save(self, trainer, checkpoint):
            if trainer.state.global_step == int(os.environ["HFSSL_TEST_KILL_AT"]):
                os.kill(os.getpid(), signal.SIGKILL)  # a real kill: no cleanup, no atexit

    sys.exit(run(sys.argv[1:], callbacks=[KillAfterSave()]))
    """
)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """An uninterrupted run (in this process) of RESUME_ARGS."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("full") / "run"
    assert run([*RESUME_ARGS, "--output-dir", str(out)]) == 0
    return out


def _losses(out: Path) -> list[tuple[int, float]]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["loss"]) for r in map(json.loads, lines) if "loss" in r]


def test_kill_and_resume_is_bit_identical(full_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    env = dict(os.environ, HFSSL_TEST_KILL_AT="6", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, *RESUME_ARGS, "--output-dir", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    ckpts = CheckpointManager(out)
    assert ckpts.latest() == out / "checkpoints" / "checkpoint-6"
    assert not (out / "backbone").exists()  # it died before the end

    assert run([*RESUME_ARGS, "--output-dir", str(out), "--resume-from", "latest"]) == 0
    for name in ("pretext_model/model.safetensors", "backbone/model.safetensors"):
        assert (out / name).read_bytes() == (full_run / name).read_bytes(), name
    # the metrics log continues where the checkpoint was: no duplicated steps, same numbers
    assert _losses(out) == _losses(full_run)
    assert [c.name for c in ckpts.complete_checkpoints()] == ["checkpoint-6", "checkpoint-7"]


def test_outputs_checkpoints_and_provenance(full_run: Path) -> None:
    from transformers import AutoModel

    import hfssl  # noqa: F401  (registers the Auto classes)
    from hfssl.models import HfsslModel

    # checkpoints: last K=2 kept, latest names the final one, models as safetensors, no pickled model
    root = full_run / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["checkpoint-6", "checkpoint-7", "latest"]
    assert (root / "latest").read_text().strip() == "checkpoint-7"
    final = root / "checkpoint-7"
    state = json.loads((final / "trainer_state.json").read_text())
    assert state["global_step"] == 7 and state["epoch"] == 1 and state["batches_in_epoch"] == 6
    assert (final / "model.safetensors").is_file() and not (final / "pytorch_model.bin").exists()
    ema_steps = load_file(str(final / "model.safetensors"))["ema_steps"]
    assert int(ema_steps) == 7  # BYOL's momentum-schedule counter travels with the weights
    # backbone with provenance, loadable through the Auto API
    backbone = AutoModel.from_pretrained(full_run / "backbone")
    assert isinstance(backbone, HfsslModel)
    cfg = backbone.config
    assert cfg.pretext_methods == ["byol"]
    assert (cfg.pretrain_dataset, cfg.pretrain_image_size, cfg.pretrain_seed) == ("breastmnist", 28, 7)
    assert cfg.pretrain_epochs == 2 and cfg.hfssl_version
    pretext = load_file(str(full_run / "pretext_model" / "model.safetensors"))
    exported = load_file(str(full_run / "backbone" / "model.safetensors"))
    for key, value in exported.items():
        assert torch.equal(pretext[f"backbone.{key}"], value)
    # training args and metrics: 7 train records, kNN at steps 0 (random init), 4 and 7
    args = json.loads((full_run / "training_args.json").read_text())
    assert args["method"] == "byol" and args["total_steps"] == 7 and args["steps_per_epoch"] == 4
    assert args["hardware"].startswith("CPU: ") and args["train_runtime"] > 0  # shown on model cards
    # the resolved runtime, as the resolver decides it for this CPU (also shown on model cards)
    from hfssl.training.runtime import resolve_runtime

    plan = resolve_runtime("cpu", "resnet18", 2)
    assert (args["mixed_precision"], args["memory_format"]) == (plan.mixed_precision, plan.memory_format)
    assert args["channels_last_resolved"] is plan.channels_last and args["runtime_reason"] == plan.reason
    records = [json.loads(line) for line in (full_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 8))
    assert [r["step"] for r in records if "knn_accuracy" in r] == [0, 4, 7]
    assert all(0.0 <= r["knn_accuracy"] <= 1.0 for r in records if "knn_accuracy" in r)
    assert all("pretext/pos_sim" in r and r["learning_rate"] >= 0 for r in records if "loss" in r)
    assert list((full_run / "runs").rglob("events.out.tfevents.*")), "no TensorBoard event file"


@pytest.mark.parametrize(
    ("extra", "method", "message"),
    [
        ((), "no_such_method", "unknown pretext task"),
        (("--backbone", "no_such_net"), "rot", "unknown backbone"),
        (("--backbone", "resnet18"), "mae", "needs a ViT backbone"),
        (("--dataset", "adrenalmnist3d", "--backbone", "unet3d_encoder"), "mae", "does not support 3D"),
        (("--per-device-train-batch-size", "1"), "simclr", "contrastive minimum"),
        (("--per-device-train-batch-size", "600"), "rot", "cannot fill one optimiser step"),
        (("--unlabelled-splits", "train", "test"), "rot", "test split is never used"),
        (("--optim", "adamw", "--learning-rate", "0"), "rot", "learning_rate must be > 0"),
        (("--method-kwargs", '{"temprature": 0.2}'), "simclr", "has no setting temprature"),
        (("--report-to", "tensorbored"), "rot", "unknown tracker"),
    ],
)
def test_bad_inputs_exit_2_and_write_nothing(
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    method: str,
    message: str,
) -> None:
    out = tmp_path / "run"
    args = fast_args(out, method=method)
    # later flags win in argparse, so "extra" overrides the defaults of fast_args
    assert cli_main(["pretrain", *args, *extra]) == 2
    err = capsys.readouterr().err
    assert "hfssl pretrain: error:" in err and message in err and "(fix:" in err
    assert not out.exists()


def test_unwritable_output_dir(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert cli_main(["pretrain", *fast_args(blocker / "run")]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_refuses_non_empty_output_dir(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert cli_main(["pretrain", *fast_args(out)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # --overwrite-output-dir replaces hfssl outputs only
    assert cli_main(["pretrain", *fast_args(out), "--overwrite-output-dir"]) == 0
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "backbone" / "model.safetensors").is_file()


def _copy_run(full_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(full_run, out)
    return out


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        ("truncate_model", "model.safetensors is corrupt"),
        ("pickled_model", "stores its model as a pickle"),
        ("garbage_optimizer", "optimizer.bin cannot be read safely"),
        ("no_state", "no complete checkpoint"),
    ],
)
def test_corrupt_checkpoint_on_resume(
    full_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], corrupt: str, message: str
) -> None:
    out = _copy_run(full_run, tmp_path)
    ckpt = out / "checkpoints" / "checkpoint-7"
    model = ckpt / "model.safetensors"
    if corrupt == "truncate_model":
        data = model.read_bytes()
        model.write_bytes(data[: len(data) // 2])
    elif corrupt == "pickled_model":
        torch.save({"w": torch.zeros(1)}, ckpt / "pytorch_model.bin")
        model.unlink()
    elif corrupt == "garbage_optimizer":
        (ckpt / "optimizer.bin").write_bytes(b"not a torch file")
    else:
        for path in (out / "checkpoints").glob("checkpoint-*/trainer_state.json"):
            path.unlink()
    before = (out / "backbone" / "model.safetensors").read_bytes()
    argv = [
        "pretrain",
        *RESUME_ARGS,
        "--output-dir",
        str(out),
        "--resume-from",
        "latest",
        "--report-to",
        "none",
    ]
    assert cli_main(argv) == 2
    assert message in capsys.readouterr().err
    assert (out / "backbone" / "model.safetensors").read_bytes() == before  # nothing rewritten


def test_resume_with_other_settings_is_refused(full_run: Path, tmp_path: Path) -> None:
    out = _copy_run(full_run, tmp_path)
    model_args, data_args, args = parse_args(
        [
            *RESUME_ARGS,
            "--output-dir",
            str(out),
            "--resume-from",
            "latest",
            "--per-device-train-batch-size",
            "4",
        ]
    )
    from hfssl.training import pretrain_backbone

    with pytest.raises(CheckpointError, match="per_device_train_batch_size 8 -> 4"):
        pretrain_backbone(model_args, data_args, args)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    # AdamW moves every weight by ~lr per step, so lr=1e30 makes the next loss non-finite
    argv = fast_args(
        out, "--learning-rate", "1e30", "--max-steps", "5", "--save-strategy", "steps", "--save-steps", "1"
    )
    with pytest.raises(TrainingError, match="the loss became") as info:
        run(argv)
    assert "--learning-rate" in (info.value.hint or "")
    latest = CheckpointManager(out).latest()
    assert latest is not None and latest.name == "checkpoint-1"
    assert not (out / "backbone").exists()


def test_epoch_sampler_is_a_function_of_seed_and_epoch() -> None:
    a, b = EpochShuffleSampler(100, 96, seed=3), EpochShuffleSampler(100, 96, seed=3)
    a.set_epoch(2)
    list(b)  # iterating other epochs first changes nothing
    b.set_epoch(2)
    first = list(a)
    assert first == list(b) and len(first) == 96 and len(set(first)) == 96
    a.set_epoch(3)
    assert list(a) != first


def test_config_file_and_both_flag_spellings(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "method: simclr\ndataset: breastmnist\nper_device_train_batch_size: 32\nlearning_rate: 0.3\n"
    )
    model_args, data_args, args = parse_args(
        [
            "--config",
            str(recipe),
            "--output-dir",
            "x",
            "--per_device_train_batch_size",
            "16",
            "--optimizer",
            "lars",
        ]
    )
    assert model_args.method == "simclr" and data_args.dataset == "breastmnist"
    assert args.per_device_train_batch_size == 16 and args.learning_rate == 0.3 and args.optim == "lars"
    with pytest.raises(ConfigError, match="JSON object"):
        parse_args(
            ["--method", "rot", "--dataset", "breastmnist", "--output-dir", "x", "--method-kwargs", "[1]"]
        )


def test_multi_method_run_and_help(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hfssl.models import HfsslModel

    out = tmp_path / "multi"
    kwargs = '{"simclr.projection_hidden_dim": 32, "simclr.projection_dim": 16, "head_hidden_dim": 32}'
    assert cli_main(["pretrain", *fast_args(out, "--method-kwargs", kwargs, method="rot:0.5+simclr")]) == 0
    backbone = HfsslModel.from_pretrained(out / "backbone")
    assert backbone.config.pretext_methods == ["rot", "simclr"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"pretext/rot/accuracy", "pretext/simclr/loss"} <= set(records[-1])
    with pytest.raises(SystemExit) as info:
        cli_main(["pretrain", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "--per-device-train-batch-size" in text and "--resume-from" in text and "accelerate launch" in text
    _, _, args = parse_args(
        ["--method", "rot", "--dataset", "breastmnist", "--output-dir", "x", "--overwrite"]
    )
    assert args.overwrite_output_dir


@pytest.mark.parametrize(
    "value, device, cnn, dims, expected",
    [
        (None, "cpu", True, 3, True),  # 3D convs: channels-last-3d measured 2x faster on CPU
        (None, "cuda", True, 2, True),
        (None, "cpu", False, 3, False),  # ViTs have no convolution layout to change
        (False, "cpu", True, 3, False),  # an explicit choice always wins
        (True, "cpu", True, 2, True),
    ],
)
def test_resolve_channels_last(value, device, cnn, dims, expected) -> None:
    from hfssl.training.runtime import resolve_channels_last

    assert resolve_channels_last(value, device, cnn, dims) is expected


@pytest.mark.parametrize("conv3d_grads_ok", [True, False])
def test_3d_pretraining_runs_channels_last_3d(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, conv3d_grads_ok: bool
) -> None:
    """On a CPU where bf16 is the fast default, a 3D CNN pretrains in bf16 unless that CPU's bf16
    conv3d weight gradients are wrong; then in fp32 (the trainer knows the dimensions from the
    backbone's name before it creates the Accelerator)."""
    from hfssl.training import runtime

    caps = runtime.DeviceCaps("cpu", True, True, "faked", bf16_conv3d_grad_ok=conv3d_grads_ok)
    monkeypatch.setattr(runtime, "probe_device", lambda device: caps)
    out = tmp_path / "run3d"
    args = fast_args(out, "--backbone-kwargs", '{"channels": [4, 8, 16, 32]}')
    args[args.index("test_resnet")] = "unet3d_encoder"
    args[args.index("breastmnist")] = "adrenalmnist3d"
    assert run(args) == 0
    record = json.loads((out / "training_args.json").read_text())
    assert record["channels_last_resolved"] is True
    assert record["mixed_precision"] == ("bf16" if conv3d_grads_ok else "no"), record["runtime_reason"]
    losses = [loss for _, loss in _losses(out)]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.parametrize(
    "flags, precision, layout",
    [
        (("--mixed-precision", "bf16"), "bf16", "channels_last"),  # the fast-bf16 CPU default, forced
        (("--mixed-precision", "no", "--channels-last", "true"), "no", "channels_last"),  # flags win
    ],
)
def test_the_resolved_runtime_is_what_runs_and_is_recorded(
    tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture, flags, precision, layout
) -> None:
    import logging

    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="hfssl"):
        assert run(fast_args(out, *flags)) == 0
    record = json.loads((out / "training_args.json").read_text())
    assert (record["mixed_precision"], record["memory_format"]) == (precision, layout)
    assert "as asked" in record["runtime_reason"]
    assert f"mixed precision = {precision}, memory format = {layout}" in caplog.text
    losses = [loss for _, loss in _losses(out)]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
