"""Foundation-model backbones (DINOv2, CLIP vision tower, ViT-MAE) through ``load_feature_extractor``,
and the extractor's input resizing (``set_input_size``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hfssl.errors import DataError
from hfssl.hub import load_feature_extractor
from tests.hub.tiny_foundation import CLIP, IMAGENET, KINDS, NATIVE, build_tiny


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("foundation")
    return {kind: build_tiny(kind, root / kind) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_loads_with_own_size_normalisation_and_interpolation(tiny_models, kind):
    extractor = load_feature_extractor(str(tiny_models[kind])).eval()
    assert extractor.image_size == NATIVE and extractor.in_chans == 3
    assert extractor.interpolation == "bicubic"  # the processor's resample=3
    assert extractor.info.details["patch_size"] == 8
    mean, _ = extractor.normalisation
    assert mean == (CLIP if kind == "clip" else IMAGENET)[0]
    x = torch.rand(3, 1, 28, 28)
    extractor.set_input_size(NATIVE, "auto")
    first, second = extractor.embed(x), extractor.embed(x)
    assert first.shape == (3, 32)
    # ViT-MAE masks 75 % of the patches at random unless told not to: embeddings must be repeatable
    torch.testing.assert_close(first, second)
    maps = extractor.feature_maps(x)
    assert maps and all(m.shape[-2:] == (4, 4) for m in maps)


@pytest.mark.parametrize("kind", KINDS)
def test_embed_with_map_is_one_pass_of_embed_and_the_deepest_map(tiny_models, kind):
    """What distillation reads: the pooled embedding and the patch grid (no CLS token), one forward."""
    extractor = load_feature_extractor(str(tiny_models[kind])).eval()
    extractor.set_input_size(NATIVE, "auto")
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        pooled, spatial = extractor.embed_with_map(x)
        torch.testing.assert_close(pooled, extractor.embed(x))
        torch.testing.assert_close(spatial, extractor.feature_maps(x)[-1])
    assert spatial.shape == (2, 32, 4, 4)  # 32 px / patch 8


def test_vit_mae_keeps_every_patch_in_image_order(tiny_models):
    from transformers import ViTMAEModel

    extractor = load_feature_extractor(str(tiny_models["vit_mae"])).eval()
    extractor.set_input_size(NATIVE)
    x = torch.rand(2, 3, NATIVE, NATIVE)
    reference = ViTMAEModel.from_pretrained(tiny_models["vit_mae"]).eval()
    reference.config.mask_ratio = 0.0
    with torch.no_grad():
        noise = torch.arange(16, dtype=torch.float32).expand(2, 16)  # argsort = identity
        want = reference(pixel_values=extractor.prepare(x), noise=noise).last_hidden_state.mean(dim=1)
        got = extractor.embed(x)
    torch.testing.assert_close(got, want)


def test_clip_dual_encoder_uses_its_vision_tower(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    vision = dict(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
    )
    text = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, vocab_size=99
    )
    CLIPModel(CLIPConfig(vision_config=vision, text_config=text, projection_dim=16)).save_pretrained(
        tmp_path / "clip"
    )
    extractor = load_feature_extractor(str(tmp_path / "clip"))
    assert extractor.image_size == 32 and extractor.embed_dim == 32
    assert extractor.embed(torch.rand(2, 3, 32, 32)).shape == (2, 32)


def test_resize_modes_bring_images_to_the_input_size(tiny_models):
    extractor = load_feature_extractor(str(tiny_models["dinov2"]))
    x = torch.rand(2, 1, 28, 28)
    for mode in ("bilinear", "bicubic"):
        extractor.set_input_size(NATIVE, mode)
        out = extractor.prepare(x)
        assert out.shape == (2, 3, NATIVE, NATIVE) and extractor.resize == mode
    extractor.set_input_size(NATIVE, "pad")
    out = extractor.prepare(x)
    mean = torch.tensor(IMAGENET[0]).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET[1]).view(1, 3, 1, 1)
    raw = out * std + mean  # undo the normalisation: black borders, the image in the centre
    torch.testing.assert_close(raw[:, :, 2:30, 2:30], x.expand(-1, 3, -1, -1))
    assert raw[:, :, :2].abs().max() < 1e-6 and raw[:, :, :, 30:].abs().max() < 1e-6
    extractor.set_input_size(16, "pad")
    with pytest.raises(DataError, match="cannot zero-pad 28x28 images to 16 px"):
        extractor.prepare(x)
    with pytest.raises(DataError, match="use one of: auto, bilinear, bicubic, pad"):
        extractor.set_input_size(32, "nearest")
    extractor.set_input_size(None)
    assert extractor.prepare(x).shape[-1] == 28 and extractor.describe()["input_size"] is None


def test_timm_vit_reports_the_size_it_was_built_at():
    extractor = load_feature_extractor(
        "timm:vit_tiny_patch16_224?img_size=28&patch_size=7&in_chans=1&depth=1"
    )
    assert extractor.image_size == 28 and extractor.info.details["patch_size"] == 7  # not the cfg's 224
    assert extractor.interpolation == "bicubic"  # timm's pretrained_cfg


def test_volumes_resize_trilinear_and_pad_in_three_dimensions():
    from torch import nn

    from hfssl.hub.feature_extractor import ExtractorInfo, FeatureExtractor

    extractor = FeatureExtractor(
        nn.Identity(),
        embed_fn=lambda m, x: x.flatten(1),
        maps_fn=lambda m, x: [x],
        in_chans=1,
        image_size=32,
        spatial_dims=3,
        embed_dim=1,
        feature_channels=[1],
        normalisation=None,
        info=ExtractorInfo(spec="volume", source="hfssl", content_hash="x"),
    )
    x = torch.rand(2, 1, 28, 28, 28)
    extractor.set_input_size(32, "bicubic")  # no bicubic for volumes: trilinear
    assert extractor.prepare(x).shape == (2, 1, 32, 32, 32)
    extractor.set_input_size(32, "pad")
    out = extractor.prepare(x)
    torch.testing.assert_close(out[:, :, 2:30, 2:30, 2:30], x)
    assert out[:, :, :2].abs().max() == 0


def test_register_tokens_are_dropped_from_the_patch_grid(tmp_path: Path) -> None:
    """DINOv2 with 4 registers on a 2x2 grid: 1 + 4 + 4 = 9 tokens, which is also a 3x3 square; the
    config's register count, not the square search, decides where the patch grid starts."""
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    from hfssl.hub import load_feature_extractor

    torch.manual_seed(0)
    config = Dinov2WithRegistersConfig(
        image_size=16, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        mlp_ratio=2, num_register_tokens=4,
    )  # fmt: skip
    Dinov2WithRegistersModel(config).save_pretrained(tmp_path / "reg")
    extractor = load_feature_extractor(str(tmp_path / "reg"))
    x = torch.rand(2, 3, 16, 16)
    _, grid = extractor.embed_with_map(x)
    assert grid is not None and tuple(grid.shape) == (2, 32, 2, 2)
    with torch.no_grad():
        out = extractor.backbone(pixel_values=extractor.prepare(x), output_hidden_states=True)
    tokens = out.hidden_states[-1]  # the deepest block's tokens (before the final layer norm)
    expected = tokens[:, 5:, :].transpose(1, 2).reshape(2, 32, 2, 2)
    torch.testing.assert_close(grid, expected)
