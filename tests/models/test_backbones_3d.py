"""3D backbones: U-Net encoder and ResNet-18 shapes, small stem, sub-cubes, init."""

from __future__ import annotations

import math

import pytest
import torch

from hfssl import HfsslConfig, HfsslModel
from hfssl.models.backbones_3d import ResNet3d, UNet3DEncoder


def test_unet3d_encoder_architecture():
    enc = UNet3DEncoder(in_chans=1)
    assert len(enc.blocks) == 4
    for block, width in zip(enc.blocks, (64, 128, 256, 512)):
        convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv3d)]
        assert len(convs) == 2 and all(c.kernel_size == (3, 3, 3) and c.out_channels == width for c in convs)
        assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in block.modules()) == 2
        assert sum(isinstance(m, torch.nn.ReLU) for m in block.modules()) == 2


@pytest.mark.parametrize(
    "backbone, size, spatial",
    [
        ("unet3d_encoder", 28, [28, 14, 7, 3]),
        ("unet3d_encoder", 9, [9, 4, 2, 1]),  # 9^3 sub-cubes (pretext tasks)
        ("resnet18_3d", 28, [28, 28, 14, 7, 4]),
        ("resnet18_3d", 9, [9, 9, 5, 3, 2]),
    ],
)
def test_feature_maps_3d(backbone, size, spatial):
    config = HfsslConfig(backbone=backbone, spatial_dims=3, image_size=28)
    model = HfsslModel(config).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, size, size, size))
    assert [f.shape[-1] for f in out.feature_maps] == spatial
    assert [f.shape[1] for f in out.feature_maps] == model.feature_channels
    assert out.pooler_output.shape == (1, 512)
    assert torch.allclose(out.pooler_output, out.last_hidden_state.mean(dim=(2, 3, 4)))


def test_resnet18_3d_standard_stem_above_64():
    config = HfsslConfig(backbone="resnet18_3d", spatial_dims=3, image_size=96)
    assert config.small_input_stem is False and config.feature_reductions == [2, 4, 8, 16, 32]
    model = HfsslModel(config)
    assert model.backbone.conv1.kernel_size == (7, 7, 7) and model.backbone.conv1.stride == (2, 2, 2)
    n_params = sum(p.numel() for p in model.parameters())
    assert 33_000_000 < n_params < 34_000_000  # 3D ResNet-18 (MedicalNet/MONAI size: 33.2 M)


def test_3d_init_survives_post_init():
    model = HfsslModel(HfsslConfig(backbone="resnet18_3d", spatial_dims=3, image_size=28))
    bb: ResNet3d = model.backbone
    assert torch.all(bb.bn1.weight == 1) and torch.all(bb.bn1.running_var == 1)
    assert torch.all(bb.layer1[0].bn2.weight == 0)  # zero_init_last, as timm's 2D ResNets
    w = bb.layer3[0].conv1.weight
    expected = math.sqrt(2.0 / (w.shape[0] * 27))
    assert abs(w.std().item() - expected) / expected < 0.05


def test_unet3d_norm_and_channels_options():
    config = HfsslConfig(
        backbone="unet3d_encoder",
        spatial_dims=3,
        image_size=16,
        backbone_kwargs={"channels": [8, 16, 32, 64], "norm": "instance"},
    )
    assert config.feature_channels == [8, 16, 32, 64] and config.feature_dim == 64
    model = HfsslModel(config)
    assert any(isinstance(m, torch.nn.InstanceNorm3d) for m in model.modules())
    assert model(torch.rand(2, 1, 16, 16, 16)).pooler_output.shape == (2, 64)
