"""SimCLR: views, NT-Xent wiring, forward/backward in 2D and 3D, round trip, and that it learns."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import NTXentLoss, overlapping_crop_pairs
from hfssl.pretext.registry import get_pretext_class
from hfssl.pretext.simclr import SimCLRConfig, SimCLRForPretraining
from tests.pretext._helpers import (
    assert_grads_reach_backbone,
    assert_round_trip,
    backbone_2d,
    backbone_3d,
    evaluate,
    train_briefly,
)

NO_AUG = {"flip_prob": 0.0, "rot90_prob": 0.0, "blur_prob": 0.0, "noise_prob": 0.0}


def light_backbone():
    """ResNet-10 (ResNet-18 with one block per stage), standard stem: 28 px -> 7 px; ~3x cheaper."""
    return backbone_2d(small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})


def small_3d():
    """A narrow 3D U-Net encoder (8-64 channels): the 3D code paths at a fraction of ResNet-18-3D's cost."""
    return backbone_3d("unet3d_encoder", backbone_kwargs={"channels": [8, 16, 32, 64]})


def test_registered_by_name():
    assert get_pretext_class("simclr") is SimCLRForPretraining


def test_crop_mode_follows_dims():
    assert SimCLRConfig(backbone_config=backbone_2d()).resolved_crop_mode() == "resized"
    assert SimCLRConfig(backbone_config=backbone_3d()).resolved_crop_mode() == "overlapping"


def test_views_are_reproducible_and_differ():
    model = SimCLRForPretraining(SimCLRConfig(backbone_config=backbone_2d()))
    x = torch.rand(6, 1, 28, 28)
    a1, b1 = model.make_views(x, torch.Generator().manual_seed(3))
    a2, b2 = model.make_views(x, torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    assert a1.shape == b1.shape == x.shape
    assert not torch.equal(a1, b1)  # two independent augmentations
    assert float(a1.min()) >= 0.0 and float(a1.max()) <= 1.0


def test_views_without_augmentation_are_the_input():
    model = SimCLRForPretraining(SimCLRConfig(backbone_config=backbone_2d(), crop_mode="none", **NO_AUG))
    x = torch.rand(4, 1, 28, 28)
    a, b = model.make_views(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, x) and torch.equal(b, x)


def test_intensity_jitter_is_off_by_default_and_changes_views_when_on():
    x = 0.3 + 0.3 * torch.rand(4, 1, 28, 28)  # no factor in the ranges below clips these values
    plain = {"crop_mode": "none", **NO_AUG}
    off = SimCLRForPretraining(SimCLRConfig(backbone_config=backbone_2d(), **plain))
    assert torch.equal(off.make_views(x, torch.Generator().manual_seed(0))[0], x)
    on = SimCLRForPretraining(
        SimCLRConfig(backbone_config=backbone_2d(), intensity_prob=1.0, brightness=[0.5, 0.7], **plain)
    )
    a, b = on.make_views(x, torch.Generator().manual_seed(0))
    brightness = a.mean((1, 2, 3)) / x.mean((1, 2, 3))  # contrast keeps each image's mean
    assert not torch.equal(a, b) and brightness.min() >= 0.5 - 1e-5 and brightness.max() <= 0.7 + 1e-5
    with pytest.raises(ConfigError, match="brightness"):
        SimCLRConfig(backbone_config=backbone_2d(), brightness=[1.2, 0.8])
    with pytest.raises(ConfigError, match="intensity_p"):
        SimCLRConfig(backbone_config=backbone_2d(), intensity_prob=1.5)


def test_3d_views_are_overlapping_crops():
    model = SimCLRForPretraining(SimCLRConfig(backbone_config=small_3d(), **NO_AUG))
    x = torch.rand(2, 1, 28, 28, 28)
    a, b = model.make_views(x, torch.Generator().manual_seed(5))
    pair = overlapping_crop_pairs(
        x, (28, 28, 28), 0.25, (0.5, 1.0), generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(a, pair.view_a) and torch.equal(b, pair.view_b)


def test_loss_is_nt_xent_of_the_projected_views():
    model = SimCLRForPretraining(SimCLRConfig(backbone_config=backbone_2d(), temperature=0.5)).eval()
    x = torch.rand(5, 1, 28, 28)
    out = model(x, generator=torch.Generator().manual_seed(1))
    a, b = model.make_views(x, torch.Generator().manual_seed(1))
    z = model.projector(model.embed(torch.cat([a, b])))
    expected = NTXentLoss(0.5)(z[:5], z[5:])
    torch.testing.assert_close(out.loss, expected)
    assert out.embeddings.shape == (5, 512)


def test_forward_backward_2d_and_round_trip(breast28):
    model = SimCLRForPretraining(SimCLRConfig(backbone_config=backbone_2d()))
    x = breast28["train"][:4]
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss) and {"pos_sim", "neg_sim", "accuracy"} <= set(out.metrics)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.backbone.backbone.conv1.weight.grad is not None
    assert_round_trip(model, x)


def test_forward_backward_3d(adrenal28):
    model = SimCLRForPretraining(
        SimCLRConfig(backbone_config=small_3d(), projection_hidden_dim=64, projection_dim=32)
    )
    out = model(adrenal28["train"][:2], generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert_grads_reach_backbone(model)


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": 0.0},
        {"projection_dim": 0},
        {"crop_mode": "random"},
        {"crop_min_area": 0.0},
        {"flip_prob": 1.5},
        {"blur_sigma": [0.1, 0.5, 1.0]},
    ],
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ConfigError):
        SimCLRConfig(backbone_config=backbone_2d(), **bad)


def test_learns_on_breastmnist(breast28):
    torch.manual_seed(0)
    model = SimCLRForPretraining(
        SimCLRConfig(
            backbone_config=light_backbone(),
            projection_hidden_dim=128,
            projection_dim=64,
            crop_min_area=0.5,  # milder views than the default: learns within a few dozen steps
            blur_prob=0.0,
        )
    )
    before = evaluate(model, breast28["test"])
    train_briefly(model, breast28["train"], steps=70, batch_size=32, lr=2e-3)
    after = evaluate(model, breast28["test"])
    assert after["loss"] < before["loss"] - 0.3, (before, after)
    # held-out: two views of an image are clearly closer than views of different images
    assert after["pos_sim"] > after["neg_sim"] + 0.1, after
    # and an image's second view is often the nearest one (chance: 1/64 per batch)
    assert after["accuracy"] > 0.08, after
