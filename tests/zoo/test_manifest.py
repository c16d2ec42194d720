"""The zoo manifest: what it must contain (the issue's entries) and how it refuses bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from hfssl.errors import ConfigError
from hfssl.pretext.registry import get_method_info, list_pretext_tasks
from hfssl.training import arguments_from_recipe
from hfssl.zoo import load_manifest, parse_zoo_spec


def test_every_registered_method_has_a_2d_entry_and_every_3d_method_a_3d_entry():
    manifest = load_manifest()
    by_zoo: dict[str, set[str]] = {}
    for e in manifest.entries:
        by_zoo.setdefault(e.zoo, set()).add(e.method)
    assert set(list_pretext_tasks(spatial_dims=2)) <= by_zoo["2d"]
    assert set(list_pretext_tasks(spatial_dims=3)) <= by_zoo["3d"]
    assert "rot+simclr" in by_zoo["2d"]  # the multi-SSL combination (RKB+ and PCRL are methods)


def test_entries_are_what_the_issue_asks_for():
    entries = load_manifest().entries
    assert {e.zoo for e in entries} == {"2d", "2d-long", "3d"}
    for e in entries:
        if e.zoo in ("2d", "2d-long"):  # 2d-long: the 2D zoo's settings, beyond its cpu budget
            assert (e.dataset, e.image_size) == ("breastmnist", 28)
            info_vit = any(get_method_info(m).needs_vit for m in e.method.split("+") if ":" not in m)
            assert e.backbone == ("vit_tiny_patch16_224" if info_vit else "resnet18")
        else:
            assert (e.dataset, e.image_size, e.backbone) == ("adrenalmnist3d", 28, "unet3d_encoder")
            assert e.overrides("cpu")["backbone_kwargs"] == {"channels": [16, 32, 64, 128]}
            assert "backbone_kwargs" not in e.overrides("paper")  # the paper's full widths
            assert "slim" in e.notes
        assert e.repo_id("my-org") == f"my-org/{e.name}"
        assert e.budget["cpu"]["max_steps"] > 0


def test_every_entry_parses_into_the_pretraining_arguments_with_its_budget():
    for e in load_manifest().entries:
        assert e.recipe_path().is_file(), e.recipe_path()
        model_args, data_args, args = arguments_from_recipe(
            e.recipe_path(), {**e.overrides("cpu"), "output_dir": "x"}
        )
        assert model_args.method == e.method and model_args.backbone == e.backbone
        assert data_args.dataset == e.dataset and args.max_steps == e.budget["cpu"]["max_steps"]
        assert isinstance(args.weight_decay, float)  # YAML's 1e-06 is a string; the parser converts it


def test_unknown_name_lists_near_matches():
    with pytest.raises(ConfigError, match="did you mean simclr-resnet18-breastmnist28"):
        load_manifest().get("simclr-resnet18-breastmnist")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("entries:\n  - {name: a, zoo: z, method: rot, colour: red}\n", "unknown field"),
        ("entries:\n  - {name: a, zoo: nope, method: rot}\n", "names zoo 'nope'"),
        (
            "entries:\n  - {name: a, zoo: z, method: rot}\n  - {name: a, zoo: z, method: rot}\n",
            "appear twice",
        ),
        (
            "entries:\n  - {name: a, zoo: z, method: rot, requires: [b]}\n  - {name: b, zoo: z, method: rot}\n",
            "earlier",
        ),
        ("entries:\n  - {name: a, zoo: z, method: rot+simclr}\n", "names no recipe"),
        ("entries:\n  - {name: A b, zoo: z, method: rot}\n", "lowercase slug"),
    ],
)
def test_bad_manifests_are_refused(tmp_path: Path, body: str, message: str):
    path = tmp_path / "zoo.yaml"
    path.write_text(
        "zoos:\n  z: {dataset: breastmnist, image_size: 28, backbone: resnet18, recipe_dataset: breastmnist}\n"
        + body
    )
    with pytest.raises(ConfigError, match=message):
        load_manifest(path)


def test_zoo_specs():
    assert parse_zoo_spec("zoo:rot-x") == ("rot-x", None)
    assert parse_zoo_spec("zoo:rot-x@paper") == ("rot-x", "paper")
    with pytest.raises(ConfigError, match="budget"):
        parse_zoo_spec("zoo:rot-x@huge")
