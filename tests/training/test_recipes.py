"""Every recipe in scripts/recipes parses into the argument dataclasses and names a valid setup."""

from __future__ import annotations

from pathlib import Path

import pytest

from hfssl.cli.pretrain import parse_args
from hfssl.pretext.multi import check_method_fields
from hfssl.pretext.registry import METHODS, get_pretext_class, list_pretext_tasks, parse_method_spec
from tests.conftest import REPO_ROOT

RECIPES = sorted((REPO_ROOT / "scripts" / "recipes").glob("*.yaml"))
DATASETS = {"breastmnist": (2, 28), "breastmnist64": (2, 64), "adrenalmnist3d": (3, 28)}
# combinations a method does not support (its registry line's spatial_dims; scripts/recipes/README.md)
UNSUPPORTED = {
    (m, d) for m in METHODS for d, (dims, _) in DATASETS.items() if dims not in METHODS[m].spatial_dims
}


def test_every_method_and_dataset_has_a_recipe() -> None:
    names = {p.stem for p in RECIPES}
    expected = {f"{m}_{d}" for m in list_pretext_tasks() for d in DATASETS if (m, d) not in UNSUPPORTED}
    assert names == expected
    readme = (REPO_ROOT / "scripts" / "recipes" / "README.md").read_text()
    assert "MAE" in readme and "3D" in readme


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_parses_and_names_a_registered_method(recipe: Path) -> None:
    from hfssl.models import HfsslConfig

    model_args, data_args, args = parse_args(["--config", str(recipe)])
    method, key = recipe.stem.rsplit("_", 1)
    assert parse_method_spec(model_args.method).methods == (method,)
    dims, size = DATASETS[key]
    assert data_args.image_size == size and data_args.unlabelled_splits == ["train"]
    assert args.output_dir and args.max_steps == -1 and args.num_train_epochs >= 1
    # the backbone and method settings are valid for the data's dimensionality
    backbone = HfsslConfig(
        backbone=model_args.backbone,
        spatial_dims=dims,
        in_chans=1,
        image_size=size,
        backbone_kwargs=model_args.backbone_kwargs or None,
    )
    cls = get_pretext_class(method)
    if method == "distill":  # the recipe's teacher is a run's output: check it is named, use a tiny one
        from tests.pretext._helpers import tiny_teacher

        assert model_args.method_kwargs["teacher"]
        model_args.method_kwargs["teacher"] = tiny_teacher()
    check_method_fields(method, cls.config_class, model_args.method_kwargs)
    cls.config_class(backbone_config=backbone, **model_args.method_kwargs)
    if cls.family == "contrastive":
        assert args.per_device_train_batch_size >= 32


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_runs_one_step(recipe: Path, tmp_path: Path, data_dir: Path) -> None:
    """One optimiser step of every recipe with its real backbone (2.5 min for all on a 2-core CPU)."""
    from hfssl.cli.pretrain import run

    argv = ["--config", str(recipe), "--output-dir", str(tmp_path / "run"), "--max-steps", "1",
            "--per-device-train-batch-size", "4", "--eval-strategy", "no", "--report-to", "none",
            "--save-strategy", "no"]  # fmt: skip
    if recipe.stem.startswith("distill_"):  # the recipe's teacher is a run's output: a tiny local one
        import json

        from tests.pretext._helpers import tiny_teacher

        kwargs = parse_args(["--config", str(recipe)])[0].method_kwargs
        kwargs["teacher"] = tiny_teacher("dinov2")  # random CNN maps blank 3D slices to exactly 0
        argv += ["--method-kwargs", json.dumps(kwargs)]
    assert run(argv) == 0
    assert (tmp_path / "run" / "backbone" / "model.safetensors").is_file()


def test_accelerate_config_example_loads() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(REPO_ROOT / "scripts" / "accelerate_config_example.yaml"))
    assert config.num_processes == 4 and config.mixed_precision == "bf16"
    script = (REPO_ROOT / "scripts" / "pretrain.sh").read_text()
    assert "accelerate" in script and "-m hfssl.pretrain" in script and "--multi_gpu" in script
