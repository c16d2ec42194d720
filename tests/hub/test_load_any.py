"""``load_feature_extractor``: every spec form gives the wrapped model's outputs, right dims, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from transformers import ResNetConfig, ResNetModel, ViTConfig, ViTModel

from hfssl import HfsslConfig, HfsslModel, create_pretext_model
from hfssl.errors import CheckpointError, ConfigError, DataError
from hfssl.hub import load_feature_extractor
from tests.hub.conftest import offline


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def hfssl_folder(tmp_path_factory) -> tuple[Path, HfsslModel]:
    torch.manual_seed(0)
    model = HfsslModel(
        HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28, pretext_methods=["rot"])
    ).eval()
    folder = tmp_path_factory.mktemp("hfssl") / "backbone"
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def resnet_folder(tmp_path_factory) -> tuple[Path, ResNetModel]:
    """A tiny transformers ResNet (RGB, no image processor => no normalisation)."""
    torch.manual_seed(0)
    config = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])
    model = ResNetModel(config).eval()
    folder = tmp_path_factory.mktemp("hf") / "resnet"
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory) -> tuple[Path, ViTModel]:
    """A tiny grey-scale transformers ViT with a preprocessor_config.json (mean/std 0.5)."""
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=28,
        patch_size=7,
        num_channels=1,
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = ViTModel(config).eval()
    folder = tmp_path_factory.mktemp("hf") / "vit"
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "ViTImageProcessor",
                "do_normalize": True,
                "image_mean": [0.5],
                "image_std": [0.5],
            }
        )
    )
    return folder, model


# ---------------------------------------------------------------------------------------- hfssl
def test_hfssl_folder(hfssl_folder):
    folder, model = hfssl_folder
    extractor = load_feature_extractor(folder).eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        pooled, maps = model.forward_features(x)
        _same(extractor.embed(x), pooled)
        got = extractor.feature_maps(x)
    assert [m.shape[1] for m in got] == model.config.feature_channels == extractor.feature_channels
    for a, b in zip(got, maps):
        _same(a, b)
    assert extractor.embed_dim == model.config.feature_dim and extractor.describe()["pretext_methods"] == [
        "rot"
    ]
    assert extractor.info.source == "hfssl" and len(extractor.info.content_hash) == 64


def test_hfssl_random_init_differs(hfssl_folder):
    folder, _ = hfssl_folder
    trained, scratch = (
        load_feature_extractor(folder).eval(),
        load_feature_extractor(folder, random_init=True).eval(),
    )
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert not torch.allclose(trained.embed(x), scratch.embed(x))
    assert scratch.info.random_init and scratch.info.content_hash != trained.info.content_hash
    assert scratch.embed_dim == trained.embed_dim


def test_pretext_checkpoint_gives_its_backbone(tmp_path):
    pretext = create_pretext_model(
        "rot", HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)
    ).eval()
    pretext.save_pretrained(tmp_path / "pretext")
    extractor = load_feature_extractor(tmp_path / "pretext").eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        _same(extractor.embed(x), pretext.backbone.forward_features(x)[0])


# ----------------------------------------------------------------------------------------- timm
def test_timm_name_random_init_and_grey_repeat():
    extractor = load_feature_extractor("timm:test_resnet").eval()
    assert extractor.in_chans == 3 and extractor.info.source == "timm" and extractor.info.random_init
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        emb = extractor.embed(x)
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in extractor.normalisation)
        _same(emb, extractor.backbone((x.expand(-1, 3, -1, -1) - mean) / std))
    assert emb.shape == (2, extractor.embed_dim) and extractor.channel_adapter == "repeat"
    maps = extractor.feature_maps(x)
    assert [m.shape[1] for m in maps] == extractor.feature_channels


def test_timm_name_options_and_unknown():
    extractor = load_feature_extractor("timm:test_resnet?in_chans=1")
    assert extractor.in_chans == 1
    with pytest.raises(CheckpointError, match="unknown timm model"):
        load_feature_extractor("timm:not_a_model_xyz")


def test_local_timm_export_folder(tmp_path, hfssl_folder):
    from hfssl.models.export_timm import export_timm

    folder, model = hfssl_folder
    out = export_timm(folder, tmp_path / "export")
    extractor = load_feature_extractor(out).eval()
    assert extractor.info.source == "timm" and not extractor.info.random_init
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        _same(extractor.embed(x), model.forward_features(x)[0])


# ---------------------------------------------------------------------------------- transformers
def test_transformers_resnet_folder(resnet_folder):
    folder, model = resnet_folder
    extractor = load_feature_extractor(folder).eval()
    assert (
        extractor.info.source == "transformers"
        and extractor.in_chans == 3
        and extractor.normalisation is None
    )
    x = torch.rand(2, 1, 32, 32)  # grey data into an RGB model: repeated
    with torch.no_grad():
        out = model(pixel_values=x.expand(-1, 3, -1, -1), output_hidden_states=True)
        _same(extractor.embed(x), out.pooler_output.flatten(1))
        maps = extractor.feature_maps(x)
    assert extractor.channel_adapter == "repeat"
    assert extractor.embed_dim == 16
    assert extractor.feature_channels == [8, 8, 16] == [m.shape[1] for m in maps]
    for a, b in zip(maps, out.hidden_states):
        _same(a, b)


def test_transformers_first_conv_average_matches_repeat(resnet_folder):
    """Collapsing the RGB first conv (timm adapt_input_conv) == repeating the grey channel, without normalisation."""
    folder, _ = resnet_folder
    repeat = load_feature_extractor(folder).eval()
    collapsed = load_feature_extractor(folder, first_conv="average").eval()
    assert collapsed.in_chans == 1 and collapsed.channel_adapter == "first-conv-average"
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(collapsed.embed(x), repeat.embed(x), rtol=1e-4, atol=1e-5)
    assert collapsed.describe()["channel_adapter"] == "first-conv-average"
    with pytest.raises(ConfigError, match="first_conv"):
        load_feature_extractor(folder, first_conv="sum")


def test_transformers_vit_folder_tokens_and_normalisation(vit_folder):
    folder, model = vit_folder
    extractor = load_feature_extractor(folder).eval()
    assert (
        extractor.normalisation == ([0.5], [0.5]) and extractor.image_size == 28 and extractor.in_chans == 1
    )
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        _same(extractor.embed(x), model(pixel_values=(x - 0.5) / 0.5).pooler_output)
        maps = extractor.feature_maps(x)
    assert extractor.embed_dim == 16
    assert [tuple(m.shape) for m in maps] == [
        (2, 16, 4, 4)
    ] * 4  # 4 of the 4 layers, CLS dropped, 4x4 patches


def test_transformers_random_init_differs(resnet_folder):
    folder, _ = resnet_folder
    trained, scratch = (
        load_feature_extractor(folder).eval(),
        load_feature_extractor(folder, random_init=True).eval(),
    )
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(trained.embed(x), scratch.embed(x))
    assert scratch.info.content_hash != trained.info.content_hash and scratch.embed_dim == trained.embed_dim


def test_transformers_repo_via_hub_and_offline(hub, vit_folder):
    folder, model = vit_folder
    hub.put_files("org/tiny-vit", {p.name: p.read_bytes() for p in folder.iterdir()})
    extractor = load_feature_extractor("org/tiny-vit").eval()
    assert extractor.info.spec == "org/tiny-vit" and extractor.info.source == "transformers"
    x = torch.rand(1, 1, 28, 28)
    with torch.no_grad():
        expected = model(pixel_values=(x - 0.5) / 0.5).pooler_output
        _same(extractor.embed(x), expected)
        with offline():
            _same(load_feature_extractor("org/tiny-vit").eval().embed(x), expected)


def test_remote_code_is_refused(tmp_path, resnet_folder):
    folder, _ = resnet_folder
    target = tmp_path / "custom"
    target.mkdir()
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (target / "config.json").write_text(json.dumps(config))
    (target / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="never runs remote code"):
        load_feature_extractor(target)


# ---------------------------------------------------------------------------------------- errors
def test_pickle_only_folders_are_refused(tmp_path, hfssl_folder, resnet_folder):
    for name, (src, _) in {"hfssl": hfssl_folder, "transformers": resnet_folder}.items():
        target = tmp_path / name
        target.mkdir()
        (target / "config.json").write_text((src / "config.json").read_text())
        (target / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
        with pytest.raises(CheckpointError, match="only pickle weights"):
            load_feature_extractor(target)


def test_bad_specs():
    with pytest.raises(CheckpointError, match="does not exist"):
        load_feature_extractor("./no/such/folder")
    with pytest.raises(CheckpointError, match="cannot resolve checkpoint spec"):
        load_feature_extractor("justaname")
    with pytest.raises(ConfigError, match="malformed repo id"):
        load_feature_extractor("org/bad name")
    with pytest.raises(ConfigError, match="one revision"):
        load_feature_extractor("org/name@v1", revision="v2")


def test_wrong_dimensionality_is_a_data_error(hfssl_folder):
    folder, _ = hfssl_folder
    with pytest.raises(DataError, match="takes 2D images"):
        load_feature_extractor(folder).embed(torch.rand(1, 1, 8, 8, 8))


def test_timm_module_unaffected():
    """Loading through hfssl never changes what timm builds by name (sanity for the registry)."""
    assert timm.is_model("test_resnet")
