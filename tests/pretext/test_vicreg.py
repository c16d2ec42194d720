"""VICReg: the loss is the block's on the projected views, bad settings refused, and it learns."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.registry import get_pretext_class
from hfssl.pretext.vicreg import VICRegConfig, VICRegForPretraining
from tests.pretext._helpers import backbone_2d, evaluate, train_briefly


def light_backbone():
    return backbone_2d(small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})


def test_registered_by_name():
    assert get_pretext_class("vicreg") is VICRegForPretraining


def test_loss_is_the_block_on_the_projected_views(breast28):
    from hfssl.pretext import blocks

    model = VICRegForPretraining(
        VICRegConfig(backbone_config=light_backbone(), projection_dim=32, projection_hidden_dim=64)
    ).eval()
    x = breast28["train"][:6]
    out = model(x, generator=torch.Generator().manual_seed(1))
    a, b = model.make_views(x, torch.Generator().manual_seed(1))
    z_a, z_b = model.projector(model.embed(torch.cat([a, b]))).chunk(2)
    if "vicreg" == "vicreg":
        inv, var, cov = blocks.vicreg_terms(z_a, z_b)
        expected = 25 * inv + 25 * var + cov
    else:
        expected, _ = blocks.barlow_twins_loss(z_a, z_b, 5e-3)
    torch.testing.assert_close(out.loss, expected)
    assert {"invariance", "variance", "covariance"} <= set(out.metrics)
    assert out.embeddings.shape == (6, 512)


@pytest.mark.parametrize(
    "bad", [{"invariance_weight": -1.0}, {"projection_layers": 0}, {"crop_mode": "random"}]
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ConfigError):
        VICRegConfig(backbone_config=backbone_2d(), **bad)


def test_learns_on_breastmnist(breast28):
    torch.manual_seed(0)
    model = VICRegForPretraining(
        VICRegConfig(
            backbone_config=light_backbone(),
            projection_hidden_dim=256,
            projection_dim=256,
            crop_min_area=0.5,
            blur_prob=0.0,
        )
    )
    before = evaluate(model, breast28["test"])
    train_briefly(model, breast28["train"], steps=40, batch_size=32, lr=2e-3)
    after = evaluate(model, breast28["test"])
    assert after["loss"] < 0.95 * before["loss"], (before, after)
    # held-out: the two views of an image are closer than views of different images, and an
    # image's second view is its nearest more than twice as often as chance (1/64 per batch)
    assert after["pos_sim"] > after["neg_sim"] + 0.05, after
    assert after["accuracy"] > 0.035, after
