"""Checkpoint format: save/load bit-exact via Auto classes, safetensors only, strict key checks."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForSemanticSegmentation,
)

import hfssl
from hfssl import HfsslConfig, HfsslForImageClassification, HfsslForSegmentation, HfsslModel
from hfssl.errors import CheckpointError

ROUND_TRIP = {
    "resnet18-1ch-28": dict(backbone="resnet18", in_chans=1, image_size=28),
    "resnet18-3ch-28": dict(backbone="resnet18", in_chans=3, image_size=28),
    "resnet18-1ch-64": dict(backbone="resnet18", in_chans=1, image_size=64),
    "resnet18-3ch-64": dict(backbone="resnet18", in_chans=3, image_size=64),
    "vit_tiny-28": dict(backbone="vit_tiny_patch16_224", image_size=28, backbone_kwargs={"patch_size": 4}),
    # timm non-persistent buffers (RoPE tables) are recomputed after the meta-device load
    "eva02_tiny-28": dict(
        backbone="eva02_tiny_patch14_224", image_size=28, backbone_kwargs={"patch_size": 4}
    ),
    "unet3d-28": dict(backbone="unet3d_encoder", spatial_dims=3, image_size=28),
    "resnet18_3d-28": dict(backbone="resnet18_3d", spatial_dims=3, image_size=28),
}


def _input(config: HfsslConfig, batch: int = 2) -> torch.Tensor:
    """Images at the config's size; 3D: 16^3 sub-cubes (identity of weights does not need 28^3, CPU time does)."""
    torch.manual_seed(1)
    size = config.image_size if config.spatial_dims == 2 else 16
    return torch.rand(batch, config.in_chans, *([size] * config.spatial_dims))


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_save_load_round_trip_is_bit_exact(name, tmp_path):
    config = HfsslConfig(**ROUND_TRIP[name], pretrain_dataset="breastmnist", pretext_methods=["rot"])
    model = HfsslModel(config)
    # non-trivial BatchNorm statistics, so that the buffers' round trip is checked too
    model.train()
    with torch.no_grad():
        model(_input(config, batch=2))
    model.eval()
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "hfssl" and saved["backbone"] == config.backbone
    assert saved["pretrain_dataset"] == "breastmnist" and saved["feature_dim"] == config.feature_dim

    x = _input(config)
    loaded = AutoModel.from_pretrained(tmp_path, use_safetensors=True)
    assert type(loaded) is HfsslModel and not loaded.training
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.equal(a.pooler_output, b.pooler_output)
    assert all(torch.equal(p, q) for p, q in zip(a.feature_maps, b.feature_maps))
    sd_a, sd_b = model.state_dict(), loaded.state_dict()
    assert sd_a.keys() == sd_b.keys() and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    # loading wrote nothing, and no pickle file exists anywhere in the folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_auto_config_resolves_hfssl(tmp_path):
    HfsslConfig(backbone="resnet18").save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is HfsslConfig
    assert hfssl.HfsslConfig is HfsslConfig and hfssl.HfsslForSegmentation is HfsslForSegmentation


@pytest.fixture(scope="module")
def r18_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("r18")
    HfsslModel(HfsslConfig(backbone="resnet18", image_size=28)).save_pretrained(path)
    return path


def test_config_for_another_backbone_is_refused(r18_dir):
    for other in (
        HfsslConfig(backbone="resnet34", image_size=28),
        HfsslConfig(backbone="convnext_atto", image_size=28),
    ):
        with pytest.raises(CheckpointError, match="missing") as info:
            AutoModel.from_pretrained(r18_dir, config=other)
        assert "backbone." in str(info.value)


def test_mismatched_shapes_name_the_keys(r18_dir):
    with pytest.raises(
        CheckpointError, match=r"backbone\.conv1\.weight: checkpoint \(64, 1, 3, 3\) vs model \(64, 3, 3, 3\)"
    ):
        AutoModel.from_pretrained(r18_dir, config=HfsslConfig(backbone="resnet18", image_size=28, in_chans=3))


def test_edited_weights_file_with_wrong_shape_is_refused(r18_dir, tmp_path):
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((r18_dir / name).read_bytes())
    weights = load_file(tmp_path / "model.safetensors")
    weights["backbone.layer4.1.conv2.weight"] = torch.zeros(512, 512, 1, 1)
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="layer4.1.conv2.weight"):
        HfsslModel.from_pretrained(tmp_path)


def test_pickle_checkpoints_are_never_read(r18_dir, tmp_path):
    (tmp_path / "config.json").write_bytes((r18_dir / "config.json").read_bytes())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not even read")
    with pytest.raises(CheckpointError, match="only pickle weights"):
        AutoModel.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="safetensors"):
        AutoModel.from_pretrained(r18_dir, use_safetensors=False)
    with pytest.raises(CheckpointError):
        HfsslModel.from_pretrained(tmp_path / "does-not-exist")


def test_backbone_checkpoint_loads_into_task_models_with_fresh_heads(r18_dir):
    clf = AutoModelForImageClassification.from_pretrained(r18_dir, num_labels=3)
    assert type(clf) is HfsslForImageClassification
    ref = HfsslModel.from_pretrained(r18_dir)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(clf.hfssl(x).pooler_output, ref(x).pooler_output)
    w = clf.classifier.fc.weight
    assert torch.isfinite(w).all() and 0.01 < w.std().item() < 0.03  # trunc-normal(0.02), not garbage
    assert torch.all(clf.classifier.fc.bias == 0)
    seg = AutoModelForSemanticSegmentation.from_pretrained(r18_dir, num_labels=1)
    assert type(seg) is HfsslForSegmentation
    assert torch.all(seg.decoder.blocks[0][0][1].weight == 1)  # fresh BatchNorm
    assert seg(x).logits.shape == (2, 1, 28, 28)


def test_task_checkpoint_round_trip_and_head_mismatch(tmp_path):
    model = HfsslForImageClassification(HfsslConfig(backbone="resnet18", image_size=28, num_labels=4)).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)
    # the backbone alone loads from a task checkpoint (its head is ignored)
    with torch.no_grad():
        assert torch.equal(
            HfsslModel.from_pretrained(tmp_path)(x).pooler_output, model.hfssl(x).pooler_output
        )
    with pytest.raises(CheckpointError, match="classifier.fc.weight"):
        AutoModelForImageClassification.from_pretrained(tmp_path, num_labels=2)
    fresh = AutoModelForImageClassification.from_pretrained(
        tmp_path, num_labels=2, ignore_mismatched_sizes=True
    )
    assert fresh.classifier.fc.weight.shape == (2, 512)
