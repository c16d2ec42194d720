"""The bad-input catalogue: every ``hfssl`` subcommand against the classes of bad input a user meets.

One row per case: a command line, the setup that makes the bad input (in ``tmp_path``), and a fragment
of the expected one-line message. Every row must give exit code 2, exactly one error line on stderr
(``hfssl <command>: error: ... (fix: ...)``), no traceback, and leave nothing half-written: the files
under ``tmp_path`` after the run are the files before it (no partial checkpoint, record, card or
leaderboard file, no stray ``*.tmp``).

Classes: uncreatable / unwritable output folder, full disk (``RLIMIT_FSIZE`` in a subprocess),
truncated or corrupt ``model.safetensors``, ``config.json`` with wrong field types or an unknown
``model_type``, weights that do not match the config, ``.npz`` missing a key / labels out of range /
wrong dtype / wrong shape / NaN or Inf pixels, empty or one-class image folders, a results folder with
a record from a newer schema, a YAML recipe with an unknown key, flags of the wrong type.

A new command or option adds its rows here (CONTRIBUTING.md, "Errors").
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hfssl.cli.main import main

REPO = Path(__file__).resolve().parents[2]
REAL_NPZ = (
    Path(os.environ.get("HFSSL_DATA_DIR", REPO.parent / "shared" / "data")) / "medmnist" / "breastmnist.npz"
)


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def assets(tmp_path_factory, data_dir) -> dict[str, Path]:
    """Made once: a valid tiny checkpoint and one real evaluation record (knn, 32 rows)."""
    from hfssl import HfsslConfig, HfsslModel

    root = tmp_path_factory.mktemp("assets")
    ckpt = root / "ckpt"
    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(ckpt)
    results = root / "results"
    argv = ["evaluate", "--checkpoint", str(ckpt), "--protocol", "knn", "--max-train-samples", "32"]
    argv += ["--max-eval-samples", "32", "--n-bootstrap", "20", "--results-dir", str(results)]
    assert main([*argv, "--cache-dir", str(root / "cache")]) == 0
    (record,) = results.glob("*.json")
    return {"ckpt": ckpt, "results": results, "record": record}


def _copy_ckpt(assets, tmp: Path) -> Path:
    return Path(shutil.copytree(assets["ckpt"], tmp / "ck"))


def _edit_config(tmp: Path, assets, **changes) -> None:
    folder = _copy_ckpt(assets, tmp)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


def truncated_weights(tmp, assets):
    folder = _copy_ckpt(assets, tmp)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def header_only_weights(tmp, assets):
    folder = _copy_ckpt(assets, tmp)
    (folder / "model.safetensors").write_bytes(b"\x05\x00")


def corrupt_weights(tmp, assets):
    folder = _copy_ckpt(assets, tmp)
    size = (folder / "model.safetensors").stat().st_size
    (folder / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(size))


def config_wrong_type(tmp, assets):
    _edit_config(tmp, assets, image_size="big")


def config_unknown_model_type(tmp, assets):
    _edit_config(tmp, assets, model_type="not_a_model")


def config_not_json(tmp, assets):
    folder = _copy_ckpt(assets, tmp)
    (folder / "config.json").write_text("{not json")


def weights_do_not_fit(tmp, assets):
    _edit_config(tmp, assets, backbone="resnet18")  # the weights are test_resnet's


def weights_wrong_shape(tmp, assets):
    _edit_config(tmp, assets, in_chans=3)  # conv1 weights are for 1 channel


def _npz(tmp: Path, edit: Callable[[dict[str, np.ndarray]], None]) -> None:
    with np.load(REAL_NPZ) as z:
        arrays = {k: z[k] for k in z.files}
    edit(arrays)
    (tmp / "data" / "medmnist").mkdir(parents=True)
    np.savez(tmp / "data" / "medmnist" / "breastmnist.npz", **arrays)


def npz_missing_key(tmp, assets):
    _npz(tmp, lambda a: a.pop("val_labels"))


def npz_labels_out_of_range(tmp, assets):
    _npz(tmp, lambda a: a["train_labels"].__setitem__((0, 0), 7))


def npz_negative_labels(tmp, assets):
    def edit(a):
        a["test_labels"] = a["test_labels"].astype(np.int64)
        a["test_labels"][3, 0] = -1

    _npz(tmp, edit)


def npz_float_images(tmp, assets):
    _npz(tmp, lambda a: a.__setitem__("train_images", a["train_images"].astype(np.float32)))


def npz_nan_pixels(tmp, assets):
    def edit(a):
        a["train_images"] = a["train_images"].astype(np.float32)
        a["train_images"][0, 0, 0] = np.nan

    _npz(tmp, edit)


def npz_inf_pixels(tmp, assets):
    def edit(a):
        a["val_images"] = a["val_images"].astype(np.float64)
        a["val_images"][1, 2, 3] = np.inf

    _npz(tmp, edit)


def npz_wrong_shape(tmp, assets):
    _npz(tmp, lambda a: a.__setitem__("train_images", a["train_images"][:, :27, :27].copy()))


def npz_float_labels(tmp, assets):
    _npz(tmp, lambda a: a.__setitem__("train_labels", a["train_labels"].astype(np.float32)))


def npz_not_a_zip(tmp, assets):
    (tmp / "data" / "medmnist").mkdir(parents=True)
    (tmp / "data" / "medmnist" / "breastmnist.npz").write_bytes(b"PK\x03\x04 truncated")


def empty_image_folder(tmp, assets):
    (tmp / "imgs").mkdir()


def one_class_image_folder(tmp, assets):
    from PIL import Image

    (tmp / "imgs" / "only").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp / "imgs" / "only" / f"{i}.png")


def newer_schema_results(tmp, assets):
    record = json.loads(assets["record"].read_text())
    record["schema_version"] = 99
    (tmp / "res").mkdir()
    (tmp / "res" / assets["record"].name).write_text(json.dumps(record))


def results_copy(tmp, assets):
    shutil.copytree(assets["results"], tmp / "res")


def unknown_key_yaml(tmp, assets):
    (tmp / "recipe.yaml").write_text("method: rot\ndataset: breastmnist\nlearning_rte: 0.1\n")


def bad_yaml(tmp, assets):
    (tmp / "recipe.yaml").write_text("method: [rot\n")


def plain_file(tmp, assets):
    (tmp / "afile").write_text("not a folder")


def ckpt_copy(tmp, assets):
    _copy_ckpt(assets, tmp)


def ckpt_and_plain_file(tmp, assets):
    _copy_ckpt(assets, tmp)
    plain_file(tmp, assets)


def results_and_plain_file(tmp, assets):
    results_copy(tmp, assets)
    plain_file(tmp, assets)


# ------------------------------------------------------------------------------------------ the rows
def tiny_dinov2(tmp: Path, assets) -> None:
    from tests.hub.tiny_foundation import build_tiny

    build_tiny("dinov2", tmp / "dino")


def zoo_manifest_missing_recipe(tmp: Path, assets) -> None:
    (tmp / "zoo.yaml").write_text(
        "zoos:\n  z: {dataset: breastmnist, image_size: 28, backbone: test_resnet, recipe_dataset: breastmnist}\n"
        f"entries:\n  - {{name: x, zoo: z, method: rot, recipe: {tmp}/missing.yaml}}\n"
    )


def no_submitit(mp: pytest.MonkeyPatch, tmp: Path) -> None:
    mp.setitem(sys.modules, "submitit", None)  # "import submitit" raises ImportError


def fake_slurm(mp: pytest.MonkeyPatch, tmp: Path) -> None:
    """sbatch/srun on PATH; sbatch refuses the partition the way Slurm does (message, exit 1)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        '#!/bin/sh\necho "sbatch: error: invalid partition specified: nope" >&2\nexit 1\n'
    )
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    mp.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def other_grid_version(tmp: Path, assets) -> None:
    (tmp / "s").mkdir()
    (tmp / "s" / "grid.json").write_text(json.dumps({"grid_version": 1, "cells": []}))


@dataclass(frozen=True)
class Row:
    id: str
    argv: tuple[str, ...]  # "{tmp}" -> the row's tmp_path, "{ck}" -> the valid checkpoint
    message: str  # a fragment of the one-line error
    setup: Callable[[Path, dict], None] | None = None
    hub: bool = False  # push rows: run against the loopback Hub (online)
    patch: Callable[[pytest.MonkeyPatch, Path], None] | None = None  # environment (PATH, sys.modules)


EV = ("evaluate", "--protocol", "knn", "--max-train-samples", "16", "--max-eval-samples", "16")
LORA = ("evaluate", "--protocol", "lora", "--max-train-samples", "16", "--max-eval-samples", "16")
PRE = ("pretrain", "--method", "rot", "--backbone", "test_resnet", "--max-steps", "1")
DISTILL = ("pretrain", "--method", "distill", "--backbone", "test_resnet", "--max-steps", "1")


def teacher_3d(tmp: Path) -> None:
    from hfssl.models import HfsslConfig, HfsslModel

    config = HfsslConfig(
        backbone="unet3d_encoder",
        spatial_dims=3,
        in_chans=1,
        image_size=28,
        backbone_kwargs={"channels": [4] * 4},
    )
    HfsslModel(config).save_pretrained(tmp / "teacher3d")


ROWS = [
    # -- uncreatable / unwritable output folder
    Row(
        "pretrain-out-proc",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "/proc/hfssl-nope"),
        "cannot write --output-dir /proc/hfssl-nope",
    ),
    Row(
        "pretrain-out-under-file",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/afile/run"),
        "is not a writable folder",
        plain_file,
    ),
    Row(
        "pretrain-out-is-file",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/afile"),
        "is a file",
        plain_file,
    ),
    Row(
        "evaluate-results-proc",
        (*EV, "--checkpoint", "{ck}", "--results-dir", "/proc/hfssl-nope"),
        "cannot write --results-dir /proc/hfssl-nope",
    ),
    Row(
        "evaluate-results-under-file",
        (*EV, "--checkpoint", "{ck}", "--results-dir", "{tmp}/afile/r"),
        "cannot write --results-dir",
        plain_file,
    ),
    Row(
        "export-timm-out-proc",
        ("export-timm", "{ck}", "/proc/hfssl-nope/out"),
        "cannot write folder /proc/hfssl-nope",
    ),
    Row(
        "export-timm-out-under-file",
        ("export-timm", "{tmp}/ck", "{tmp}/afile/out"),
        "cannot write folder",
        ckpt_and_plain_file,
    ),
    Row(
        "leaderboard-out-proc",
        ("leaderboard", "{tmp}/res", "--out", "/proc/hfssl-nope", "--no-plots"),
        "cannot write --out folder /proc/hfssl-nope",
        results_copy,
    ),
    Row(
        "leaderboard-out-under-file",
        ("leaderboard", "{tmp}/res", "--out", "{tmp}/afile/lb", "--no-plots"),
        "cannot write --out folder",
        results_and_plain_file,
    ),
    Row(
        "study-out-proc",
        ("study", "imbalance", "--out", "/proc/hfssl-nope"),
        "cannot write output folder /proc/hfssl-nope",
    ),
    Row(
        "study-out-under-file",
        ("study", "imbalance", "--out", "{tmp}/afile/s"),
        "cannot write output folder",
        plain_file,
    ),
    Row(
        "demo-out-proc", ("demo", "--out", "/proc/hfssl-nope"), "cannot write output folder /proc/hfssl-nope"
    ),
    Row("demo-out-under-file", ("demo", "--out", "{tmp}/afile/d"), "cannot write output folder", plain_file),
    # -- truncated or corrupt model.safetensors
    Row(
        "evaluate-truncated-weights",
        (*EV, "--checkpoint", "{tmp}/ck", "--results-dir", "{tmp}/r"),
        "cannot load an hfssl checkpoint",
        truncated_weights,
    ),
    Row(
        "evaluate-header-only-weights",
        (*EV, "--checkpoint", "{tmp}/ck", "--results-dir", "{tmp}/r"),
        "header too small",
        header_only_weights,
    ),
    Row(
        "evaluate-corrupt-weights",
        (*EV, "--checkpoint", "{tmp}/ck", "--results-dir", "{tmp}/r"),
        "cannot load an hfssl checkpoint",
        corrupt_weights,
    ),
    Row(
        "export-timm-truncated-weights",
        ("export-timm", "{tmp}/ck", "{tmp}/out"),
        "cannot load an hfssl checkpoint",
        truncated_weights,
    ),
    Row(
        "export-timm-corrupt-weights",
        ("export-timm", "{tmp}/ck", "{tmp}/out"),
        "cannot load an hfssl checkpoint",
        corrupt_weights,
    ),
    Row(
        "push-truncated-weights",
        ("push", "{tmp}/ck", "--repo-id", "org/x"),
        "model.safetensors is not a readable safetensors file",
        truncated_weights,
        hub=True,
    ),
    Row(
        "push-corrupt-weights",
        ("push", "{tmp}/ck", "--repo-id", "org/x"),
        "model.safetensors is not a readable safetensors file",
        corrupt_weights,
        hub=True,
    ),
    Row(
        "leaderboard-truncated-weights-card",
        ("leaderboard", "{tmp}/ck", "--out", "{tmp}/lb"),
        "no usable evaluation results",
        truncated_weights,
    ),
    # -- config.json with wrong field types / unknown model_type / not JSON
    Row(
        "evaluate-config-wrong-type",
        (*EV, "--checkpoint", "{tmp}/ck", "--results-dir", "{tmp}/r"),
        "expected int, got str",
        config_wrong_type,
    ),
    Row(
        "evaluate-unknown-model-type",
        (*EV, "--checkpoint", "{tmp}/ck", "--results-dir", "{tmp}/r"),
        "not_a_model",
        config_unknown_model_type,
    ),
    Row(
        "evaluate-config-not-json",
        (*EV, "--checkpoint", "{tmp}/ck", "--results-dir", "{tmp}/r"),
        "is not valid JSON",
        config_not_json,
    ),
    Row(
        "export-timm-config-wrong-type",
        ("export-timm", "{tmp}/ck", "{tmp}/out"),
        "expected int, got str",
        config_wrong_type,
    ),
    Row(
        "export-timm-unknown-model-type",
        ("export-timm", "{tmp}/ck", "{tmp}/out"),
        "not_a_model",
        config_unknown_model_type,
    ),
    Row(
        "push-config-wrong-type",
        ("push", "{tmp}/ck", "--repo-id", "org/x"),
        "expected int, got str",
        config_wrong_type,
        hub=True,
    ),
    Row(
        "push-unknown-model-type",
        ("push", "{tmp}/ck", "--repo-id", "org/x"),
        "not an hfssl checkpoint",
        config_unknown_model_type,
        hub=True,
    ),
    Row(
        "push-config-not-json",
        ("push", "{tmp}/ck", "--repo-id", "org/x"),
        "is not valid JSON",
        config_not_json,
        hub=True,
    ),
    # -- weights that do not match the config
    Row(
        "evaluate-weights-other-backbone",
        (*EV, "--checkpoint", "{tmp}/ck", "--results-dir", "{tmp}/r"),
        "feature_dim=96",
        weights_do_not_fit,
    ),
    Row(
        "evaluate-weights-wrong-shape",
        (*EV, "--checkpoint", "{tmp}/ck", "--results-dir", "{tmp}/r"),
        "does not fit",
        weights_wrong_shape,
    ),
    Row(
        "export-timm-weights-other-backbone",
        ("export-timm", "{tmp}/ck", "{tmp}/out"),
        "feature_dim=96",
        weights_do_not_fit,
    ),
    Row(
        "export-timm-weights-wrong-shape",
        ("export-timm", "{tmp}/ck", "{tmp}/out"),
        "does not fit",
        weights_wrong_shape,
    ),
    Row(
        "push-weights-wrong-shape",
        ("push", "{tmp}/ck", "--repo-id", "org/x"),
        "does not fit",
        weights_wrong_shape,
        hub=True,
    ),
    # -- --init-from: missing, unreadable or not fitting the run (nothing is written)
    Row(
        "pretrain-init-from-missing",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/run", "--init-from", "{tmp}/nope"),
        "init-from folder",
    ),
    Row(
        "pretrain-init-from-not-cached",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/run", "--init-from", "org/not-cached"),
        "init-from org/not-cached: offline mode is on",
    ),
    Row(
        "pretrain-init-from-truncated-weights",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/run", "--init-from", "{tmp}/ck"),
        "cannot read",
        truncated_weights,
    ),
    Row(
        "pretrain-init-from-corrupt-weights",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/run", "--init-from", "{tmp}/ck"),
        "cannot read",
        corrupt_weights,
    ),
    Row(
        "pretrain-init-from-config-not-json",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/run", "--init-from", "{tmp}/ck"),
        "is not valid JSON",
        config_not_json,
    ),
    Row(
        "pretrain-init-from-unknown-model-type",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/run", "--init-from", "{tmp}/ck"),
        "not an hfssl backbone or pretext model",
        config_unknown_model_type,
    ),
    Row(
        "pretrain-init-from-other-backbone",
        (
            *PRE,
            "--dataset",
            "breastmnist",
            "--output-dir",
            "{tmp}/run",
            "--backbone",
            "resnet10t",
            "--init-from",
            "{ck}",
        ),
        "has a test_resnet backbone, this run's is resnet10t",
    ),
    Row(
        "pretrain-init-from-other-channels",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/run", "--init-from", "{tmp}/ck"),
        "takes 3 input channel(s), this run's data has 1",
        weights_wrong_shape,
    ),
    Row(
        "pretrain-init-from-into-3d",
        (
            *PRE,
            "--dataset",
            "adrenalmnist3d",
            "--backbone",
            "unet3d_encoder",
            "--output-dir",
            "{tmp}/run",
            "--init-from",
            "{ck}",
        ),
        "is a 2D test_resnet model, this run's data is 3D",
    ),
    # -- distill: no teacher, one that cannot be loaded, or a 3D one (3D students learn from the
    #    slices a 2D teacher embeds)
    Row(
        "pretrain-distill-no-teacher",
        (*DISTILL, "--dataset", "breastmnist", "--output-dir", "{tmp}/run"),
        "distill needs a teacher",
    ),
    Row(
        "pretrain-distill-teacher-missing",
        (
            *DISTILL,
            "--method-kwargs",
            '{"teacher": "{tmp}/no-teacher"}',
            "--dataset",
            "breastmnist",
            "--output-dir",
            "{tmp}/run",
        ),
        "cannot load the distillation teacher",
    ),
    Row(
        "pretrain-distill-3d-teacher-for-3d-student",
        (
            *DISTILL,
            "--method-kwargs",
            '{"teacher": "{tmp}/teacher3d"}',
            "--dataset",
            "adrenalmnist3d",
            "--backbone",
            "unet3d_encoder",
            "--output-dir",
            "{tmp}/run",
        ),
        "is 3D; distill needs a 2D teacher",
        lambda tmp, assets: teacher_3d(tmp),
    ),
    # -- .npz: missing key, labels out of range, wrong dtype / shape, NaN / Inf pixels, not a zip
    Row(
        "data-npz-missing-key",
        ("data", "info", "breastmnist", "--data-dir", "{tmp}/data", "--no-verify"),
        "lacks the key(s) val_labels",
        npz_missing_key,
    ),
    Row(
        "data-npz-labels-out-of-range",
        ("data", "info", "breastmnist", "--data-dir", "{tmp}/data", "--no-verify"),
        "outside 0..1",
        npz_labels_out_of_range,
    ),
    Row(
        "data-npz-negative-labels",
        ("data", "info", "breastmnist", "--data-dir", "{tmp}/data", "--no-verify"),
        "outside 0..1",
        npz_negative_labels,
    ),
    Row(
        "data-npz-float-images",
        ("data", "info", "breastmnist", "--data-dir", "{tmp}/data", "--no-verify"),
        "train_images is float32",
        npz_float_images,
    ),
    Row(
        "data-npz-nan-pixels",
        ("data", "info", "breastmnist", "--data-dir", "{tmp}/data", "--no-verify"),
        "expected uint8",
        npz_nan_pixels,
    ),
    Row(
        "data-npz-inf-pixels",
        ("data", "info", "breastmnist", "--data-dir", "{tmp}/data", "--no-verify"),
        "val_images is float64",
        npz_inf_pixels,
    ),
    Row(
        "data-npz-wrong-shape",
        ("data", "info", "breastmnist", "--data-dir", "{tmp}/data", "--no-verify"),
        "(546, 27, 27)",
        npz_wrong_shape,
    ),
    Row(
        "data-npz-float-labels",
        ("data", "info", "breastmnist", "--data-dir", "{tmp}/data", "--no-verify"),
        "expected integers",
        npz_float_labels,
    ),
    Row(
        "data-npz-not-a-zip",
        ("data", "info", "breastmnist", "--data-dir", "{tmp}/data", "--no-verify"),
        "is not a readable .npz file",
        npz_not_a_zip,
    ),
    Row(
        "data-verify-modified-npz",
        ("data", "info", "breastmnist", "--data-dir", "{tmp}/data"),
        "MD5 mismatch",
        npz_labels_out_of_range,
    ),
    Row(
        "pretrain-npz-nan-pixels",
        (*PRE, "--dataset", "breastmnist", "--data-dir", "{tmp}/data", "--output-dir", "{tmp}/run"),
        "MD5 mismatch",
        npz_nan_pixels,
    ),
    Row(
        "evaluate-npz-labels-out-of-range",
        (*EV, "--checkpoint", "{ck}", "--data-dir", "{tmp}/data", "--results-dir", "{tmp}/r"),
        "MD5 mismatch",
        npz_labels_out_of_range,
    ),
    Row(
        "evaluate-npz-missing",
        (*EV, "--checkpoint", "{ck}", "--data-dir", "{tmp}/nodata", "--results-dir", "{tmp}/r"),
        "breastmnist.npz is missing",
    ),
    # -- image folders: empty, one class
    Row(
        "data-imagefolder-empty",
        ("data", "info", "imagefolder:{tmp}/imgs"),
        "doesn't contain any data files",
        empty_image_folder,
    ),
    Row(
        "pretrain-imagefolder-empty",
        (*PRE, "--dataset", "imagefolder:{tmp}/imgs", "--output-dir", "{tmp}/run"),
        "doesn't contain any data files",
        empty_image_folder,
    ),
    Row(
        "evaluate-imagefolder-one-class",
        (*EV, "--checkpoint", "{ck}", "--dataset", "imagefolder:{tmp}/imgs", "--results-dir", "{tmp}/r"),
        "unlabelled",
        one_class_image_folder,
    ),
    # -- results with a record from a newer schema
    Row(
        "leaderboard-newer-schema",
        ("leaderboard", "{tmp}/res", "--out", "{tmp}/lb"),
        "schema_version is 99",
        newer_schema_results,
    ),
    Row(
        "push-newer-schema-results",
        ("push", "{tmp}/ck", "--repo-id", "org/x", "--results", "{tmp}/res"),
        "schema_version is 99",
        lambda t, a: (ckpt_copy(t, a), newer_schema_results(t, a)),
        hub=True,
    ),
    # -- YAML recipe with an unknown key / broken YAML
    Row(
        "pretrain-recipe-unknown-key",
        ("pretrain", "--config", "{tmp}/recipe.yaml", "--output-dir", "{tmp}/run"),
        "unknown option(s): learning_rte",
        unknown_key_yaml,
    ),
    Row(
        "pretrain-recipe-bad-yaml",
        ("pretrain", "--config", "{tmp}/recipe.yaml", "--output-dir", "{tmp}/run"),
        "cannot be parsed",
        bad_yaml,
    ),
    Row(
        "pretrain-recipe-missing",
        ("pretrain", "--config", "{tmp}/nope.yaml", "--output-dir", "{tmp}/run"),
        "does not exist",
    ),
    Row(
        "evaluate-recipe-unknown-key",
        ("evaluate", "--config", "{tmp}/recipe.yaml", "--checkpoint", "{ck}"),
        "unknown option(s)",
        unknown_key_yaml,
    ),
    Row(
        "leaderboard-recipe-unknown-key",
        ("leaderboard", "--config", "{tmp}/recipe.yaml", "{tmp}"),
        "unknown option(s)",
        unknown_key_yaml,
    ),
    Row(
        "study-recipe-unknown-key",
        ("study", "imbalance", "--config", "{tmp}/recipe.yaml"),
        "unknown option(s)",
        unknown_key_yaml,
    ),
    Row(
        "demo-recipe-unknown-key",
        ("demo", "--config", "{tmp}/recipe.yaml"),
        "unknown option(s)",
        unknown_key_yaml,
    ),
    Row(
        "push-recipe-unknown-key",
        ("push", "{ck}", "--config", "{tmp}/recipe.yaml", "--repo-id", "org/x"),
        "unknown option(s)",
        unknown_key_yaml,
    ),
    Row(
        "export-timm-recipe-unknown-key",
        ("export-timm", "{ck}", "{tmp}/out", "--config", "{tmp}/recipe.yaml"),
        "unknown option(s)",
        unknown_key_yaml,
    ),
    Row(
        "data-recipe-unknown-key",
        ("data", "info", "breastmnist", "--config", "{tmp}/recipe.yaml"),
        "unknown option(s)",
        unknown_key_yaml,
    ),
    # -- flags of the wrong type / unknown flags and values
    Row(
        "pretrain-flag-type",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/run", "--learning-rate", "fast"),
        "invalid float value: 'fast'",
    ),
    Row(
        "pretrain-flag-choice",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/run", "--optim", "adam2"),
        "invalid choice: 'adam2'",
    ),
    Row(
        "pretrain-unknown-method",
        ("pretrain", "--method", "nope", "--dataset", "breastmnist", "--output-dir", "{tmp}/run"),
        "nope",
    ),
    Row(
        "pretrain-unknown-flag",
        (*PRE, "--dataset", "breastmnist", "--output-dir", "{tmp}/run", "--bogus"),
        "--bogus",
    ),
    Row("evaluate-flag-type", (*EV, "--checkpoint", "{ck}", "--seeds", "zero"), "invalid int value: 'zero'"),
    Row(
        "evaluate-bad-label-fraction",
        (*EV, "--checkpoint", "{ck}", "--label-fraction", "0.001", "--results-dir", "{tmp}/r"),
        "label fraction 0.001",
    ),
    Row(
        "evaluate-missing-checkpoint", (*EV, "--checkpoint", "{tmp}/nope", "--results-dir", "{tmp}/r"), "nope"
    ),
    # -- corruption robustness (--corruption, --augment corrupt:P)
    Row(
        "evaluate-unknown-corruption",
        (*EV, "--checkpoint", "{ck}", "--corruption", "fog", "--results-dir", "{tmp}/r"),
        "unknown corruption 'fog' (fix: use all, or NAME[:SEVERITY] with NAME one of: speckle_noise",
    ),
    Row(
        "evaluate-corruption-severity",
        (*EV, "--checkpoint", "{ck}", "--corruption", "speckle_noise:6", "--results-dir", "{tmp}/r"),
        "severity '6' of corruption 'speckle_noise' is not 1-5",
    ),
    Row(
        "evaluate-corruption-other-modality",
        (*EV, "--checkpoint", "{ck}", "--corruption", "defocus_blur", "--results-dir", "{tmp}/r"),
        "corruption 'defocus_blur' does not exist for breastmnist (ultrasound, 2D) (fix: use all, or one of: "
        "speckle_noise, motion_blur",
    ),
    Row(
        "evaluate-corruption-3d-only",
        (*EV, "--checkpoint", "{ck}", "--corruption", "slice_dropout:2", "--results-dir", "{tmp}/r"),
        "corruption 'slice_dropout' does not exist for breastmnist (ultrasound, 2D)",
    ),
    Row(
        "evaluate-augment-corrupt-probability",
        (*EV, "--checkpoint", "{ck}", "--augment", "corrupt:2", "--results-dir", "{tmp}/r"),
        "corruption augmentation probability '2' is not in (0, 1]",
    ),
    Row(
        "leaderboard-flag-type",
        ("leaderboard", "{tmp}", "--n-resamples", "many"),
        "invalid int value: 'many'",
    ),
    Row("leaderboard-no-inputs", ("leaderboard", "--out", "{tmp}/lb"), "no inputs given"),
    Row("study-flag-type", ("study", "imbalance", "--preset", "smoke", "--plots", "maybe"), "--plots"),
    Row("study-unknown-name", ("study", "nope", "--out", "{tmp}/s"), "unknown study 'nope'"),
    Row(
        "study-unknown-preset",
        ("study", "imbalance", "--preset", "huge", "--out", "{tmp}/s"),
        "unknown preset 'huge'",
    ),
    Row("demo-flag-type", ("demo", "--epochs", "ten"), "invalid int value: 'ten'"),
    Row("push-bad-repo-id", ("push", "{ck}", "--repo-id", "bad repo"), "malformed repo id", hub=True),
    Row("push-flag-missing-value", ("push", "{ck}", "--repo-id"), "expected one argument"),
    Row("push-not-a-checkpoint", ("push", "{tmp}", "--repo-id", "org/x"), "is not a checkpoint", hub=True),
    Row("export-timm-missing-positional", ("export-timm", "{ck}"), "output_dir"),
    Row("data-unknown-action", ("data", "frobnicate"), "unknown data command 'frobnicate'"),
    Row("data-flag-type", ("data", "info", "breastmnist", "--image-size", "big"), "invalid int value: 'big'"),
    Row("data-unknown-source", ("data", "info", "nosuchdata"), "unknown data source 'nosuchdata'"),
    # -- foundation models: input size, resolution sweeps, LoRA
    Row(
        "evaluate-lora-no-attention",
        (*LORA, "--checkpoint", "{ck}", "--results-dir", "{tmp}/r"),
        "its linear/conv modules are named",
    ),
    Row(
        "evaluate-lora-unknown-targets",
        (
            *LORA,
            "--checkpoint",
            "{tmp}/dino",
            "--input-size",
            "auto",
            "--lora-targets",
            "nosuch",
            "--results-dir",
            "{tmp}/r",
        ),
        "matches --lora-targets 'nosuch'",
        tiny_dinov2,
    ),
    Row(
        "evaluate-lora-rank-zero",
        (*LORA, "--checkpoint", "{ck}", "--lora-rank", "0"),
        "--lora-rank must be >= 1",
    ),
    Row(
        "evaluate-save-adapter-not-lora",
        (*EV, "--checkpoint", "{ck}", "--save-adapter", "{tmp}/adapter"),
        "--save-adapter needs --protocol lora",
    ),
    Row(
        "evaluate-input-size-unfit",
        (*EV, "--checkpoint", "{tmp}/dino", "--input-size", "30", "--results-dir", "{tmp}/r"),
        "cannot take 30 px input",
        tiny_dinov2,
    ),
    Row(
        "evaluate-input-size-not-a-size",
        (*EV, "--checkpoint", "{ck}", "--input-size", "big"),
        "not data, auto or a positive number",
    ),
    Row(
        "evaluate-unknown-resize",
        (*EV, "--checkpoint", "{ck}", "--input-size", "56", "--resize", "nearest"),
        "use one of: auto, bilinear, bicubic, pad",
    ),
    Row(
        "evaluate-image-size-missing",
        (*EV, "--checkpoint", "{ck}", "--image-size", "28", "224", "--results-dir", "{tmp}/r"),
        "breastmnist_224.npz",
    ),
    Row(
        "evaluate-sweep-compare-to",
        (*EV, "--checkpoint", "{ck}", "--image-size", "28", "64", "--compare-to", "scratch"),
        "--compare-to pairs seeds of one image size",
    ),
    Row(
        "evaluate-image-size-unknown",
        (*EV, "--checkpoint", "{ck}", "--image-size", "28", "100", "--results-dir", "{tmp}/r"),
        "no 100-pixel version",
    ),
    # -- the model zoo
    Row(
        "zoo-unknown-name",
        ("zoo", "build", "simclr-resnet18-breast", "--store", "{tmp}/store"),
        "did you mean simclr-resnet18-breastmnist28",
    ),
    Row(
        "zoo-recipe-missing",
        ("zoo", "build", "x", "--manifest", "{tmp}/zoo.yaml", "--store", "{tmp}/store"),
        "recipe",
        zoo_manifest_missing_recipe,
    ),
    Row("zoo-unknown-action", ("zoo", "frobnicate"), "invalid choice: 'frobnicate'"),
    Row("zoo-build-no-names", ("zoo", "build", "--store", "{tmp}/store"), "needs entry names or --all"),
    Row(
        "zoo-pull-offline-uncached",
        ("zoo", "pull", "simclr-resnet18-breastmnist28"),
        "offline mode is on",
    ),
    Row(
        "zoo-pull-never-pushed",
        ("zoo", "pull", "simclr-resnet18-breastmnist28", "--org", "org"),
        "org/simclr-resnet18-breastmnist28",
        hub=True,
    ),
    Row(
        "zoo-push-not-built",
        ("zoo", "push", "simclr-resnet18-breastmnist28", "--org", "org", "--store", "{tmp}/store"),
        "is not built",
        hub=True,
    ),
    # -- launchers (--launcher submitit, Slurm options)
    Row(
        "study-submitit-not-installed",
        ("study", "transfer", "--out", "{tmp}/s", "--launcher", "submitit"),
        "pip install 'hfssl[cluster]'",
        patch=no_submitit,
    ),
    Row(
        "study-slurm-options-with-local-launcher",
        ("study", "transfer", "--out", "{tmp}/s", "--slurm-partition", "gpu", "--nodes", "2"),
        "--slurm-partition, --nodes only apply to --launcher submitit",
    ),
    Row(
        "study-partition-rejected-by-slurm",
        ("study", "transfer", "--datasets", "breastmnist", "--out", "{tmp}/s", "--launcher", "submitit")
        + ("--submitit-cluster", "slurm", "--slurm-partition", "nope"),
        "Slurm refused the job: sbatch: error: invalid partition specified: nope",
        patch=fake_slurm,
    ),
    Row(
        "study-slurm-extra-not-key-value",
        ("study", "transfer", "--out", "{tmp}/s", "--launcher", "submitit", "--slurm-extra", "account"),
        "--slurm-extra 'account' is not KEY=VALUE",
    ),
    Row(
        "study-store-of-another-grid-version",
        ("study", "transfer", "--datasets", "breastmnist", "--out", "{tmp}/s"),
        "was written by grid version 1",
        other_grid_version,
    ),
    Row("study-status-not-a-grid", ("study", "status", "{tmp}"), "has no grid.json"),
    Row(
        "zoo-gpus-with-local-launcher",
        ("zoo", "build", "simclr-resnet18-breastmnist28", "--store", "{tmp}/store", "--gpus-per-job", "2"),
        "--gpus-per-job only applies to --launcher submitit",
    ),
    Row(
        "zoo-submitit-not-installed",
        ("zoo", "build", "simclr-resnet18-breastmnist28", "--store", "{tmp}/store", "--launcher", "submitit"),
        "pip install 'hfssl[cluster]'",
        patch=no_submitit,
    ),
    Row(
        "zoo-batch-does-not-split-over-the-job",
        (
            "zoo",
            "build",
            "simclr-resnet18-breastmnist28",
            "--store",
            "{tmp}/store",
            "--launcher",
            "submitit",
            "--submitit-cluster",
            "local",
            "--gpus-per-job",
            "3",
        ),
        "batch size 128 of zoo entry simclr-resnet18-breastmnist28 does not split over 3 processes",
    ),
    Row(
        "zoo-status-with-launcher",
        ("zoo", "status", "--launcher", "submitit"),
        "only applies to 'hfssl zoo build'",
    ),
    Row(
        "zoo-spec-not-built",
        (*EV, "--checkpoint", "zoo:simclr-resnet18-breastmnist28", "--results-dir", "{tmp}/r"),
        "hfssl zoo pull simclr-resnet18-breastmnist28",
    ),
]


def _fill(argv: tuple[str, ...], tmp: Path, assets: dict[str, Path]) -> list[str]:
    return [a.replace("{tmp}", str(tmp)).replace("{ck}", str(assets["ckpt"])) for a in argv]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _error_lines(err: str) -> list[str]:
    """stderr without progress bars and log lines (they are not errors)."""
    keep = []
    for line in err.replace("\r", "\n").splitlines():
        if (
            not line.strip()
            or "%|" in line
            or "it/s]" in line
            or "examples/s]" in line
            or line.startswith("[INFO")
            or line.startswith("[WARN")
        ):
            continue
        keep.append(line)
    return keep


def assert_clean_error(code: int, err: str, command: str, message: str) -> None:
    assert "Traceback" not in err, err
    lines = _error_lines(err)
    assert code == 2, (code, err)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"hfssl {command}") and ": error: " in lines[0], (
        lines
    )  # "hfssl data info: ..."
    assert message in lines[0], (message, lines[0])
    assert "(fix: " in lines[0], lines[0]


def test_catalogue_has_at_least_50_rows_and_covers_every_command():
    from hfssl.cli.main import SUBCOMMANDS

    assert len(ROWS) >= 50 and len({r.id for r in ROWS}) == len(ROWS)
    assert {r.argv[0] for r in ROWS} >= set(SUBCOMMANDS)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_gives_one_clean_line(row: Row, assets, tmp_path, capsys, request):
    if row.setup is not None:
        row.setup(tmp_path, assets)
    if row.patch is not None:
        row.patch(request.getfixturevalue("monkeypatch"), tmp_path)
    before = _files(tmp_path)
    argv = _fill(row.argv, tmp_path, assets)
    capsys.readouterr()
    if row.hub:
        from tests.hub.hub_server import LoopbackHub

        with LoopbackHub() as hub, hub.patch_client(cache_dir=tmp_path.parent / f"{tmp_path.name}-hf"):
            code = _run(argv)
            if ("model", "org/x") in hub.state.repos:  # nothing of a refused checkpoint reaches the Hub
                assert "model.safetensors" not in hub.files("org/x")
    else:
        code = _run(argv)
    assert_clean_error(code, capsys.readouterr().err, argv[0], row.message)
    assert _files(tmp_path) == before, "the failed command left files behind"


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_info:  # argparse's usage errors
        return int(exit_info.code)


# ------------------------------------------------------------------------- full disk (RLIMIT_FSIZE)
# A subprocess whose files may not grow past FSIZE bytes: writes fail with EFBIG as on a full disk.
FSIZE = 1024
FULL_DISK_ROWS = [
    Row(
        "evaluate-full-disk",
        (
            *EV,
            "--checkpoint",
            "{ck}",
            "--n-bootstrap",
            "5",
            "--results-dir",
            "{tmp}/r",
            "--cache-dir",
            "{tmp}/c",
        ),
        "File too large",
    ),
    Row("export-timm-full-disk", ("export-timm", "{ck}", "{tmp}/out"), "File too large"),
    Row(
        "leaderboard-full-disk",
        ("leaderboard", "{tmp}/res", "--out", "{tmp}/lb", "--no-plots"),
        "File too large",
        results_copy,
    ),
]


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE, FSIZE))


@pytest.mark.parametrize("row", FULL_DISK_ROWS, ids=[r.id for r in FULL_DISK_ROWS])
def test_full_disk_gives_one_clean_line_and_no_partial_file(row: Row, assets, tmp_path):
    if row.setup is not None:
        row.setup(tmp_path, assets)
    before = _files(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "hfssl", *_fill(row.argv, tmp_path, assets)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_limit_file_size,
        timeout=300,
    )
    assert_clean_error(proc.returncode, proc.stderr, row.argv[0], row.message)
    left = {f for f in _files(tmp_path) - before if f.startswith(("r/", "lb/", "out"))}
    assert not left, f"half-written outputs left behind: {left}"
    assert not any(".tmp" in f for f in _files(tmp_path)), _files(tmp_path)
