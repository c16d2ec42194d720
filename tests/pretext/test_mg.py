"""Models Genesis: views, forward/backward in 2D and 3D, round trip, bad config, and that it learns."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import GenesisConfig, models_genesis_transform
from hfssl.pretext.mg import MGConfig, MGForPretraining
from hfssl.pretext.registry import get_pretext_class
from tests.pretext._helpers import (
    assert_grads_reach_backbone,
    assert_round_trip,
    backbone_2d,
    backbone_3d,
    evaluate,
    train_briefly,
)

NO_TRANSFORMS = {"flip_rate": 0.0, "local_rate": 0.0, "nonlinear_rate": 0.0, "paint_rate": 0.0}


def test_registered_by_name():
    assert get_pretext_class("mg") is MGForPretraining


def test_views_are_the_models_genesis_pairs():
    model = MGForPretraining(MGConfig(backbone_config=backbone_2d()))
    assert model.decoder.skip_connections is True  # the reference's U-Net
    x = torch.rand(6, 1, 28, 28)
    inputs, target = model.make_views(x, torch.Generator().manual_seed(3))
    want_in, want_target = models_genesis_transform(x, GenesisConfig(), torch.Generator().manual_seed(3))
    assert torch.equal(inputs, want_in) and torch.equal(target, want_target)
    assert not torch.equal(inputs, target)  # p(transform) is high: some image is changed
    # the target is the original up to flips
    for t, orig in zip(target, x):
        assert any(torch.equal(t, orig.flip(dims)) for dims in [(), (1,), (2,), (1, 2)])


def test_probabilities_are_used():
    x = torch.rand(8, 1, 28, 28)
    plain = MGForPretraining(MGConfig(backbone_config=backbone_2d(), **NO_TRANSFORMS))
    inputs, target = plain.make_views(x, torch.Generator().manual_seed(0))
    assert torch.equal(inputs, x) and torch.equal(target, x)
    flips_only = MGForPretraining(
        MGConfig(backbone_config=backbone_2d(), **{**NO_TRANSFORMS, "flip_rate": 1.0})
    )
    inputs, target = flips_only.make_views(x, torch.Generator().manual_seed(0))
    assert torch.equal(inputs, target)  # flips are applied to input and target alike
    always_paint = {**NO_TRANSFORMS, "paint_rate": 1.0}
    painted = MGForPretraining(MGConfig(backbone_config=backbone_2d(), **always_paint))
    inputs, target = painted.make_views(x, torch.Generator().manual_seed(0))
    assert torch.equal(target, x)
    assert all(not torch.equal(i, t) for i, t in zip(inputs, target))


def test_forward_backward_2d_and_round_trip(breast28):
    model = MGForPretraining(MGConfig(backbone_config=backbone_2d(), decoder_channels=[32, 16, 8]))
    x = breast28["train"][:4]
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out.reconstruction.shape == x.shape and torch.isfinite(out.loss)
    assert torch.isclose(out.loss, torch.mean((out.reconstruction - out.target) ** 2))
    assert set(out.metrics) == {"mse", "identity_mse", "mean_image_mse"}
    out.loss.backward()
    assert_grads_reach_backbone(model)
    assert_round_trip(model, x)


def test_forward_backward_3d(adrenal28):
    model = MGForPretraining(
        MGConfig(backbone_config=backbone_3d("unet3d_encoder"), decoder_channels=[16, 8, 8])
    )
    x = adrenal28["train"][:2]
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out.reconstruction.shape == x.shape and torch.isfinite(out.loss)
    out.loss.backward()


@pytest.mark.parametrize(
    "field", ["flip_rate", "local_rate", "nonlinear_rate", "paint_rate", "outpaint_rate"]
)
def test_bad_probability_is_refused(field):
    with pytest.raises(ConfigError, match=field):
        MGConfig(backbone_config=backbone_2d(), **{field: 1.5})


def test_learns_to_restore_breastmnist(breast28):
    torch.manual_seed(0)
    model = MGForPretraining(
        MGConfig(backbone_config=backbone_2d(small_input_stem=False), decoder_channels=[64, 32, 16])
    )
    before = evaluate(model, breast28["test"])
    train_briefly(model, breast28["train"], steps=80, batch_size=32, lr=2e-3)
    after = evaluate(model, breast28["test"])
    # measured: ~0.050 before, ~0.026 after; returning the transformed input scores ~0.14,
    # predicting each held-out batch's own mean image ~0.034
    assert after["mse"] < 0.5 * after["identity_mse"], (before, after)
    assert after["mse"] < 0.9 * after["mean_image_mse"], (before, after)
    assert after["mse"] < 0.7 * before["mse"]
