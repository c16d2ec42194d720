"""``--init-from``: continued pretraining from a backbone or a whole pretext model (tiny runs, BreastMNIST).

The sources are short real runs (``--seed 1``, so their weights are neither a fresh init nor the
continuation's own init under the default seed 42). What the continuation starts from is read at
``on_train_begin``, after ``accelerator.prepare`` and before the first optimiser step.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hfssl.cli.main import main as cli_main
from hfssl.cli.pretrain import run
from hfssl.errors import HubError
from hfssl.training import TrainerCallback
from hfssl.training.init_from import (
    InitFromError,
    register_spec_resolver,
    registered_spec_prefixes,
    resolve_init_source,
)
from tests.training.conftest import fast_args

BYOL = '{"projection_hidden_dim": 32, "prediction_hidden_dim": 32, "projection_dim": 16}'
MOCO = '{"projection_dim": 16, "queue_size": 32}'
MULTI = '{"rot.head_hidden_dim": 32, "simclr.projection_hidden_dim": 32, "simclr.projection_dim": 16}'
AE = '{"decoder_channels": [16, 8, 8]}'
# method -> its --method-kwargs; each source run trains 2 steps
SOURCES = {"byol": BYOL, "mocov2": MOCO, "rot:0.5+simclr": MULTI}


class StartState(TrainerCallback):
    """The pretext model's state dict when training begins (step 0)."""

    state: dict[str, torch.Tensor]

    def on_train_begin(self, trainer) -> None:
        model = trainer.accelerator.unwrap_model(trainer.model)
        self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _start_state(out: Path, method: str, *extra: str) -> dict[str, torch.Tensor]:
    callback = StartState()
    assert run(fast_args(out, "--max-steps", "1", *extra, method=method), callbacks=[callback]) == 0
    return callback.state


def _losses(out: Path) -> list[float]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if "loss" in r]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    """A finished run (output dir) of each method in SOURCES."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("sources")
    made = {}
    for method, kwargs in SOURCES.items():
        out = root / method.replace(":", "_").replace("+", "_")
        assert run(fast_args(out, "--method-kwargs", kwargs, "--seed", "1", method=method)) == 0
        made[method] = out
    return made


# ---------------------------------------------------------------------------------- what is loaded
@pytest.mark.parametrize("method", list(SOURCES))
def test_pretext_model_is_loaded_bit_exact_heads_included(
    sources: dict[str, Path], tmp_path: Path, method: str
) -> None:
    saved = load_file(str(sources[method] / "pretext_model" / "model.safetensors"))
    # the output dir as the spec: its pretext_model/ is taken
    start = _start_state(
        tmp_path / "cont", method, "--method-kwargs", SOURCES[method], "--init-from", str(sources[method])
    )
    assert set(start) == set(saved)
    for key, value in saved.items():
        if key.endswith("ema_steps"):  # the momentum schedule restarts for the new run
            assert int(value) == 2 and int(start[key]) == 0, key
        else:
            assert torch.equal(start[key], value), key
    # not vacuous: without --init-from the same run starts elsewhere, heads and backbone alike
    fresh = _start_state(tmp_path / "fresh", method, "--method-kwargs", SOURCES[method])
    differs = {
        k.split(".")[0] for k in saved if not k.endswith("ema_steps") and not torch.equal(fresh[k], saved[k])
    }
    assert "backbone" in differs and len(differs) >= 2, differs


def test_backbone_source_loads_the_backbone_and_keeps_fresh_heads(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    backbone = load_file(str(sources["byol"] / "backbone" / "model.safetensors"))
    pretext = load_file(str(sources["byol"] / "pretext_model" / "model.safetensors"))
    start = _start_state(
        tmp_path / "cont", "byol", "--method-kwargs", BYOL, "--init-from", str(sources["byol"] / "backbone")
    )
    fresh = _start_state(tmp_path / "fresh", "byol", "--method-kwargs", BYOL)
    for key, value in backbone.items():
        # the online encoder and its EMA target both start from the backbone, as at a fresh init
        assert torch.equal(start[f"backbone.{key}"], value), key
        assert torch.equal(start[f"target_backbone.{key}"], value), key
    heads = [k for k in start if not k.startswith(("backbone.", "target_backbone."))]
    assert any(k.startswith("projector.") for k in heads) and any(k.startswith("predictor.") for k in heads)
    for key in heads:
        assert torch.equal(start[key], fresh[key]), key  # the fresh init of this seed, untouched
    assert any(not torch.equal(start[k], pretext[k]) for k in heads if k.startswith("projector."))


def test_a_backbone_source_works_for_any_method(sources: dict[str, Path], tmp_path: Path) -> None:
    backbone = load_file(str(sources["rot:0.5+simclr"] / "backbone" / "model.safetensors"))
    start = _start_state(
        tmp_path / "cont", "simclr", "--init-from", str(sources["rot:0.5+simclr"] / "backbone")
    )
    for key, value in backbone.items():
        assert torch.equal(start[f"backbone.{key}"], value), key


def test_continued_run_starts_at_the_trained_loss(tmp_path: Path, data_dir: Path) -> None:
    """An autoencoder trained for 10 steps, continued: its first loss is the trained one, not random init's.

    Both continuation runs share the seed, data and batch, so only the starting weights differ.
    """
    source = tmp_path / "source"
    args = ("--method-kwargs", AE, "--unlabelled-splits", "validation", "--seed", "1")
    assert run(fast_args(source, *args, "--max-steps", "10", "--learning-rate", "3e-3", method="ae")) == 0
    assert (
        run(fast_args(tmp_path / "cont", "--method-kwargs", AE, "--init-from", str(source), method="ae")) == 0
    )
    assert run(fast_args(tmp_path / "fresh", "--method-kwargs", AE, method="ae")) == 0
    trained, cont, fresh = _losses(source), _losses(tmp_path / "cont"), _losses(tmp_path / "fresh")
    assert trained[-1] < 0.7 * trained[0]  # the source did learn
    assert cont[0] < 0.7 * fresh[0], (cont, fresh)
    assert cont[0] < 0.7 * trained[0], (cont, trained)


# ------------------------------------------------------------------------------------- provenance
def test_provenance_in_run_record_backbone_config_and_card(sources: dict[str, Path], tmp_path: Path) -> None:
    from hfssl.hub.cards import render_card
    from hfssl.utils.io import file_sha256

    src = sources["byol"]
    out = tmp_path / "cont"
    assert run(fast_args(out, "--method-kwargs", BYOL, "--init-from", str(src), method="byol")) == 0
    expected = {
        "spec": str(src),
        "kind": "pretext_model",
        "sha256": file_sha256(src / "pretext_model" / "model.safetensors"),
        "pretext_methods": ["byol"],
        "pretrain_dataset": "breastmnist",
    }
    record = json.loads((out / "training_args.json").read_text())
    assert record["init_from"] == str(src) and record["init_source"] == expected
    config = json.loads((out / "backbone" / "config.json").read_text())
    assert config["pretrain_init_from"] == expected
    card = str(render_card(out / "backbone", repo_id="org/byol-more"))
    assert f"| Initialised from | `{src}` (pretext model, byol, pretrained on breastmnist)" in card
    assert expected["sha256"] in card
    # a run without --init-from records none, and its card has no such row
    plain = json.loads((src / "backbone" / "config.json").read_text())
    assert plain.get("pretrain_init_from") is None and "Initialised from" not in str(
        render_card(src / "backbone", repo_id="org/byol")
    )


def test_resume_wins_over_init_from_and_keeps_the_record(sources: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    src = sources["byol"]
    base = fast_args(
        out, "--method-kwargs", BYOL, "--save-strategy", "steps", "--save-steps", "1", method="byol"
    )
    assert run([*base, "--max-steps", "1", "--init-from", str(src)]) == 0
    first = json.loads((out / "training_args.json").read_text())["init_source"]
    # resumed with an --init-from that no longer exists: not used (the checkpoint holds the init)
    gone = tmp_path / "gone"
    assert run([*base, "--max-steps", "2", "--resume-from", "latest", "--init-from", str(gone)]) == 0
    assert json.loads((out / "training_args.json").read_text())["init_source"] == first
    assert json.loads((out / "backbone" / "config.json").read_text())["pretrain_init_from"] == first


def test_init_from_is_an_option_of_recipes_and_both_entry_points(tmp_path: Path) -> None:
    from hfssl.cli.pretrain import parse_args

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("method: simclr\ndataset: breastmnist\ninit_from: org/simclr-breast@v1\n")
    for prog in ("hfssl pretrain", "hfssl.pretrain"):
        model_args, _, _ = parse_args(["--config", str(recipe), "--output-dir", str(tmp_path / "o")], prog)
        assert model_args.init_from == "org/simclr-breast@v1"
    model_args, _, _ = parse_args(["--config", str(recipe), "--output-dir", "o", "--init-from", " runs/a "])
    assert model_args.init_from == "runs/a"  # the flag wins over the file, and is stripped


# ----------------------------------------------------------------------------------------- errors
def _weights_3_channels(tmp: Path) -> Path:
    from hfssl import HfsslConfig, HfsslModel

    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=3, image_size=28)).save_pretrained(tmp / "rgb")
    return tmp / "rgb"


def _backbone_copy(sources: dict[str, Path], tmp: Path) -> Path:
    return Path(shutil.copytree(sources["byol"] / "backbone", tmp / "bb"))


ERRORS = [
    # (id, method, extra flags, spec -> path, message fragments)
    (
        "other-method",
        "simclr",
        (),
        lambda s, t: s["byol"],
        ["is a byol pretext model, this run is simclr", "pass its backbone/ folder"],
    ),
    (
        "other-combination",
        "simclr+rot",
        ("--method-kwargs", MULTI),
        lambda s, t: s["rot:0.5+simclr"],
        ["is a rot+simclr pretext model, this run is simclr+rot", "use --method rot+simclr"],
    ),
    (
        "other-backbone",
        "rot",
        ("--backbone", "resnet10t"),
        _backbone_copy,
        ["has a test_resnet backbone, this run's is resnet10t"],
    ),
    (
        "other-width",
        "rot",
        ("--backbone-kwargs", '{"stem_width": 8}'),
        _backbone_copy,
        [
            "does not fit this run's rot model: tensor backbone.conv1.0.weight is [16, 1, 3, 3] there,",
            "[8, 1, 3, 3] here",
            'backbone_kwargs {} there vs {"stem_width": 8} here',
        ],
    ),
    (
        "other-head-width",
        "byol",
        (
            "--method-kwargs",
            '{"projection_hidden_dim": 32, "prediction_hidden_dim": 32, "projection_dim": 8}',
        ),
        lambda s, t: s["byol"] / "pretext_model",
        ["tensor projector.", "projection_dim 16 there vs 8 here"],
    ),
    (
        "2d-into-3d",
        "rot",
        ("--dataset", "adrenalmnist3d", "--backbone", "unet3d_encoder"),
        _backbone_copy,
        ["is a 2D test_resnet model, this run's data is 3D"],
    ),
    (
        "in-chans",
        "rot",
        (),
        lambda s, t: _weights_3_channels(t),
        ["takes 3 input channel(s), this run's data has 1"],
    ),
    ("missing-path", "rot", (), lambda s, t: t / "no" / "such", ["init-from folder", "does not exist"]),
    ("not-cached-offline", "rot", (), lambda s, t: "org/not-cached", ["offline mode is on"]),
    (
        "no-resolver",
        "rot",
        (),
        lambda s, t: "nozoo:x",
        ["prefix nozoo:, for which no resolver is registered"],
    ),
]


@pytest.mark.parametrize(
    ("method", "extra", "spec", "fragments"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_mismatches_exit_2_with_one_line_and_write_nothing(
    sources: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    method: str,
    extra: tuple[str, ...],
    spec,
    fragments: list[str],
) -> None:
    init = str(spec(sources, tmp_path))
    out = tmp_path / "run"
    capsys.readouterr()
    assert cli_main(["pretrain", *fast_args(out, *extra, "--init-from", init, method=method)]) == 2
    lines = [
        line for line in capsys.readouterr().err.splitlines() if line.strip() and not line.startswith("[")
    ]
    assert len(lines) == 1 and lines[0].startswith("hfssl pretrain: error: init-from"), lines
    assert "(fix: " in lines[0] and "Traceback" not in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert not out.exists()


def test_a_training_checkpoint_is_pointed_to_resume(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-4"
    folder.mkdir()
    (folder / "trainer_state.json").write_text("{}")
    with pytest.raises(InitFromError, match="holds no hfssl checkpoint") as err:
        resolve_init_source(folder)
    assert "--resume-from" in err.value.one_line()


# ---------------------------------------------------------------------------------- resolver hook
def test_registered_resolver_maps_a_prefix_to_a_folder(
    sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hfssl.training import init_from

    monkeypatch.setattr(init_from, "_RESOLVERS", {})  # leave the process's registry as it was
    names = {"byol-small": sources["byol"]}

    def resolve(name: str) -> Path:
        if name not in names:
            raise InitFromError(f"no test entry {name!r}", f"use one of {', '.join(names)}")
        return names[name]

    register_spec_resolver("testzoo", resolve)
    assert "testzoo" in registered_spec_prefixes()
    source = resolve_init_source("testzoo:byol-small")
    assert (source.kind, source.folder, source.spec) == (
        "pretext_model",
        sources["byol"] / "pretext_model",
        "testzoo:byol-small",
    )
    with pytest.raises(InitFromError, match="no test entry 'nope'"):
        resolve_init_source("testzoo:nope")
    with pytest.raises(ValueError, match="already registered"):
        register_spec_resolver("testzoo", lambda name: name)
    register_spec_resolver("testzoo", resolve)  # the same function again: no error


# -------------------------------------------------------------------------------------------- Hub
def test_hub_repo_with_pretext_model_and_backbone_online_then_offline(
    hub, sources: dict[str, Path], tmp_path: Path
) -> None:
    from huggingface_hub import HfApi

    from tests.hub.conftest import offline

    entry = tmp_path / "entry"  # what a zoo entry ships: both folders
    for name in ("pretext_model", "backbone"):
        shutil.copytree(sources["byol"] / name, entry / name)
    api = HfApi()
    api.create_repo("org/byol-tiny")
    api.upload_folder(repo_id="org/byol-tiny", folder_path=str(entry))

    online = resolve_init_source("org/byol-tiny")  # downloads into the (test) Hugging Face cache
    assert online.kind == "pretext_model" and online.folder.name == "pretext_model"
    assert online.backbone_folder is not None  # the mismatch hint can name it
    saved = load_file(str(sources["byol"] / "pretext_model" / "model.safetensors"))
    with offline():
        start = _start_state(
            tmp_path / "cont", "byol", "--method-kwargs", BYOL, "--init-from", "org/byol-tiny"
        )
        for key, value in saved.items():
            assert torch.equal(start[key], value) or key.endswith("ema_steps"), key
        config = json.loads((tmp_path / "cont" / "backbone" / "config.json").read_text())
        assert config["pretrain_init_from"]["spec"] == "org/byol-tiny"
        assert config["pretrain_init_from"]["sha256"] == online.sha256
        with pytest.raises(HubError, match="init-from org/other: .*offline mode is on"):
            resolve_init_source("org/other")
