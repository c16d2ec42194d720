"""Model cards: render from model_cards/, parse back with the same numbers, strict templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import EvalResult, ModelCard, metadata_load, parse_eval_result_entries

from hfssl import HfsslConfig, HfsslModel
from hfssl.errors import CheckpointError, ConfigError
from hfssl.hub import cards


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A pretraining run folder: backbone/ + training_args.json one level up."""
    root = tmp_path_factory.mktemp("run")
    config = HfsslConfig(
        backbone="test_resnet",
        in_chans=1,
        image_size=28,
        pretext_methods=["byol"],
        pretrain_dataset="breastmnist",
        pretrain_image_size=28,
        pretrain_epochs=3,
        pretrain_seed=7,
    )
    HfsslModel(config).save_pretrained(root / "backbone")
    args = {
        "method": "byol",
        "learning_rate": 0.002,
        "optim": "lars",
        "total_batch_size": 256,
        "num_processes": 4,
        "mixed_precision": "bf16",
        "hardware": "4x NVIDIA H100",
        "memory_format": "channels_last",
        "runtime_reason": "CUDA with bf16",
        "train_runtime": 5400.0,
        "method_kwargs": {"projection_dim": 128, "momentum": 0.996},
    }
    (root / "training_args.json").write_text(json.dumps(args))
    return root


def _results() -> list[EvalResult]:
    return [
        EvalResult(
            task_type="image-classification",
            task_name="linear",
            dataset_type="breastmnist",
            dataset_name="BreastMNIST",
            dataset_split="test",
            metric_type="balanced_accuracy",
            metric_value=0.8123456,
        ),
        EvalResult(
            task_type="image-classification",
            task_name="finetune",
            dataset_type="breastmnist",
            dataset_name="BreastMNIST",
            dataset_split="test",
            metric_type="auc",
            metric_value=0.9,
        ),
    ]


def test_card_renders_and_parses_back(run_dir, tmp_path):
    card = cards.render_card(run_dir / "backbone", repo_id="org/byol-r", eval_results=_results())
    path = tmp_path / "README.md"
    path.write_text(str(card))
    loaded = ModelCard.load(path)
    assert [(r.metric_type, r.metric_value) for r in loaded.data.eval_results] == [
        ("balanced_accuracy", 0.8123456),
        ("auc", 0.9),
    ]
    meta = metadata_load(path)
    assert meta["license"] == "apache-2.0" and meta["library_name"] == "hfssl"
    assert {"medical-imaging", "self-supervised-learning", "contrastive", "byol", "2d"} <= set(meta["tags"])
    assert meta["datasets"] == ["breastmnist"]
    assert meta["model-index"][0]["name"] == "byol-r"
    text = loaded.text
    # provenance, hyper-parameters, hardware/time, loading routes, limitations, citations
    for needle in (
        "`test_resnet`",
        "byol (contrastive)",
        "| Epochs | 3 |",
        "| Seed | 7 |",
        "`method_kwargs.momentum` | `0.996`",
        '`optim` | `"lars"`',
        "4x NVIDIA H100, 4 process(es), mixed precision: bf16",
        "| Precision | bf16 autocast, channels_last memory format (CUDA with bf16) |",
        "1 h 30 min",
        'AutoModel.from_pretrained("org/byol-r")',
        "import hfssl",
        "hfssl export-timm org/byol-r",
        "Not for clinical use",
        "zhang2023dive",
        "medmnistv2",
        "0.8123",
    ):
        assert needle in text, needle


def test_card_without_provenance_says_not_recorded(tmp_path):
    folder = tmp_path / "bare"
    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(folder)
    card = cards.render_card(folder, repo_id="org/bare")
    assert "| Pretext method(s) | not recorded |" in card.text
    assert "No evaluation results were attached" in card.text
    assert card.data.eval_results is None and "model-index" not in card.data.to_dict()


def test_rendering_is_deterministic(run_dir):
    """Same folder, same card, byte for byte (what makes push idempotent)."""
    one = str(cards.render_card(run_dir / "backbone", repo_id="org/a", eval_results=_results()))
    two = str(cards.render_card(run_dir / "backbone", repo_id="org/a", eval_results=_results()))
    assert one == two


@pytest.mark.parametrize(
    ("method", "family"),
    [
        ("rot", "predictive"),
        ("rkb_plus", "predictive"),
        ("mg", "generative"),
        ("mocov2", "contrastive"),
        ("mae", "generative"),
        ("rkb+", "predictive"),
        ("rot:0.5+simclr", "multi"),
    ],
)
def test_method_family(method, family):
    assert cards.method_family(method) == family


def test_template_missing_field_is_a_config_error(run_dir, tmp_path):
    template = tmp_path / "card.md.j2"
    template.write_text("---\n{{ card_data }}\n---\n# {{ model_name }}\nTrained on {{ gpu_count }} GPUs\n")
    with pytest.raises(
        ConfigError, match=r"uses a field hfssl does not provide \('gpu_count' is undefined\)"
    ):
        cards.render_card(run_dir / "backbone", repo_id="org/a", template=template)


def test_template_without_metadata_header_is_refused(run_dir, tmp_path):
    template = tmp_path / "card.md.j2"
    template.write_text("# {{ model_name }}\nno header\n")
    with pytest.raises(ConfigError, match="no YAML metadata header"):
        cards.render_card(run_dir / "backbone", repo_id="org/a", template=template)
    with pytest.raises(ConfigError, match="does not exist"):
        cards.render_card(run_dir / "backbone", repo_id="org/a", template=tmp_path / "nope.md.j2")


def test_read_checkpoint_refuses_non_checkpoints(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        cards.read_checkpoint(tmp_path)


def test_eval_result_entries_round_trip():
    entries = cards.eval_result_entries(_results(), {"breastmnist": "org/breastmnist"})
    assert [(e.dataset_id, e.task_id, e.value) for e in entries] == [
        ("org/breastmnist", "linear/balanced_accuracy", 0.8123456),
        ("org/breastmnist", "finetune/auc", 0.9),
    ]
    parsed = parse_eval_result_entries(yaml.safe_load(cards.eval_results_yaml(entries)))
    assert parsed == entries
    assert cards.eval_result_entries(_results(), {}) == []  # no Hub id: model-index only
