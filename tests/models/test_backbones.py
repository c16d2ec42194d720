"""2D timm backbones: timm's init survives transformers' post_init, feature maps, small stem, tiles."""

from __future__ import annotations

import math

import pytest
import timm
import torch

from hfssl import HfsslConfig, HfsslModel
from hfssl.models.backbones import SMALL_STEM_BASES, small_stem_arch_name


def _embed(model: HfsslModel, x: torch.Tensor):
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize(
    "timm_name, config_kwargs",
    [
        ("hfssl_resnet18_smallstem", dict(backbone="resnet18", image_size=28)),
        (
            "vit_tiny_patch16_224",
            dict(backbone="vit_tiny_patch16_224", image_size=28, backbone_kwargs={"patch_size": 4}),
        ),
    ],
)
def test_timm_init_survives_post_init(timm_name, config_kwargs):
    """Same seed -> HfsslModel's backbone equals timm.create_model's: post_init did not re-init it."""
    config = HfsslConfig(**config_kwargs)
    torch.manual_seed(0)
    model = HfsslModel(config)
    torch.manual_seed(0)
    extra = {"img_size": 28, "patch_size": 4, "dynamic_img_size": True} if "vit" in timm_name else {}
    reference = timm.create_model(timm_name, pretrained=False, num_classes=0, in_chans=1, **extra)
    ours, ref = model.backbone.state_dict(), reference.state_dict()
    assert ours.keys() == ref.keys()
    for key in ref:
        assert torch.equal(ours[key], ref[key]), key


def test_resnet_init_statistics():
    model = HfsslModel(HfsslConfig(backbone="resnet18", image_size=64, in_chans=3))
    bb = model.backbone
    assert torch.all(bb.bn1.weight == 1) and torch.all(bb.bn1.bias == 0)
    assert torch.all(bb.layer1[0].bn2.weight == 0)  # timm's zero_init_last
    w = bb.layer2[0].conv1.weight  # kaiming normal, fan_out, relu
    expected = math.sqrt(2.0 / (w.shape[0] * w.shape[2] * w.shape[3]))
    assert abs(w.std().item() - expected) / expected < 0.05


@pytest.mark.parametrize(
    "kwargs, size",
    [
        (dict(backbone="resnet18", image_size=28, in_chans=1), 28),
        (dict(backbone="resnet18", image_size=64, in_chans=3), 64),
        (dict(backbone="convnext_atto", image_size=64, in_chans=1), 64),
        (dict(backbone="vit_tiny_patch16_224", image_size=28, backbone_kwargs={"patch_size": 4}), 28),
    ],
)
def test_feature_maps_match_declared_channels_and_reductions(kwargs, size):
    config = HfsslConfig(**kwargs)
    model = HfsslModel(config).eval()
    x = torch.rand(2, config.in_chans, size, size)
    out = _embed(model, x)
    assert out.pooler_output.shape == (2, config.feature_dim)
    assert model.num_features == config.feature_dim
    assert len(out.feature_maps) == len(model.feature_channels) == len(model.feature_reductions)
    for fmap, ch, red in zip(out.feature_maps, model.feature_channels, model.feature_reductions):
        assert fmap.shape[:2] == (2, ch)
        assert fmap.shape[2] == math.ceil(size / red)
    assert torch.equal(out.last_hidden_state, out.feature_maps[-1])
    # the pooled embedding is timm's own forward (pre-logits) of the same module
    with torch.no_grad():
        assert torch.equal(out.pooler_output, model.backbone(x))
    pooled, maps = model.forward_features(x)
    assert torch.equal(pooled, out.pooler_output) and len(maps) == len(out.feature_maps)


def test_small_stem_keeps_28px_resolution():
    small = HfsslModel(HfsslConfig(backbone="resnet18", image_size=28)).eval()
    standard = HfsslModel(HfsslConfig(backbone="resnet18", image_size=28, small_input_stem=False)).eval()
    x = torch.rand(1, 1, 28, 28)
    assert _embed(small, x).last_hidden_state.shape[-1] == 4
    assert _embed(standard, x).last_hidden_state.shape[-1] == 1
    assert small.backbone.conv1.kernel_size == (3, 3) and small.backbone.conv1.stride == (1, 1)
    assert isinstance(small.backbone.maxpool, torch.nn.Identity)


@pytest.mark.parametrize(
    "kwargs, tile",
    [
        (dict(backbone="resnet18", image_size=28), 9),  # RPL/Jigsaw tiles of a 28 px image
        (dict(backbone="resnet18", image_size=28), 10),
        (dict(backbone="vit_tiny_patch16_224", image_size=28, backbone_kwargs={"patch_size": 4}), 12),
    ],
)
def test_tiles_smaller_than_image_size(kwargs, tile):
    model = HfsslModel(HfsslConfig(**kwargs)).eval()
    out = _embed(model, torch.rand(3, 1, tile, tile))
    assert out.pooler_output.shape == (3, model.num_features)
    assert torch.isfinite(out.pooler_output).all()


def test_vit_exposes_timm_internals_for_mae():
    model = HfsslModel(
        HfsslConfig(backbone="vit_tiny_patch16_224", image_size=28, backbone_kwargs={"patch_size": 4})
    )
    bb = model.backbone
    for name in ("patch_embed", "blocks", "norm", "cls_token", "pos_embed"):
        assert hasattr(bb, name)
    assert bb.patch_embed.patch_size == (4, 4)


def test_small_stem_architectures_are_registered_in_timm():
    for base in SMALL_STEM_BASES:
        assert timm.is_model(small_stem_arch_name(base))
    features = timm.create_model("hfssl_resnet18_smallstem", features_only=True, in_chans=1)
    maps = features(torch.rand(1, 1, 28, 28))
    assert [m.shape[-1] for m in maps] == [28, 28, 14, 7, 4]
    assert features.feature_info.reduction() == [1, 1, 2, 4, 8]


def test_wrong_input_layout_is_a_data_error():
    from hfssl.errors import DataError

    model = HfsslModel(HfsslConfig(backbone="resnet18", image_size=28, in_chans=1))
    with pytest.raises(DataError, match="C=1"):
        model(torch.rand(1, 3, 28, 28))
    with pytest.raises(DataError):
        model(torch.rand(1, 28, 28))
