"""BYOL: target network and EMA, online/target export, forward/backward 2D and 3D, round trip, learning."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import byol_loss, cosine_momentum_schedule
from hfssl.pretext.byol import BYOLConfig, BYOLForPretraining
from hfssl.pretext.registry import get_pretext_class
from tests.pretext._helpers import (
    assert_grads_reach_backbone,
    assert_round_trip,
    backbone_2d,
    backbone_3d,
    evaluate,
    train_briefly,
)

SMALL = {"projection_hidden_dim": 64, "prediction_hidden_dim": 64, "projection_dim": 32}


def light_backbone():
    """ResNet-10 (ResNet-18 with one block per stage), standard stem: 28 px -> 7 px; ~3x cheaper."""
    return backbone_2d(small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})


def small_3d():
    """A narrow 3D U-Net encoder (8-64 channels): the 3D code paths at a fraction of ResNet-18-3D's cost."""
    return backbone_3d("unet3d_encoder", backbone_kwargs={"channels": [8, 16, 32, 64]})


def _model(**kwargs) -> BYOLForPretraining:
    return BYOLForPretraining(BYOLConfig(backbone_config=light_backbone(), **SMALL, **kwargs))


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_registered_by_name():
    assert get_pretext_class("byol") is BYOLForPretraining


def test_target_starts_equal_and_gets_no_gradient():
    model = _model()
    assert _same(model.backbone, model.target_backbone) and _same(model.projector, model.target_projector)
    assert model.target_backbone is not model.backbone
    assert not any(p.requires_grad for p in model.target_backbone.parameters())
    out = model(torch.rand(4, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert all(p.grad is None for p in model.target_backbone.parameters())
    assert model.predictor[0].weight.grad is not None


def test_ema_update_follows_the_cosine_schedule():
    model = _model(momentum=0.9, momentum_total_steps=4)
    online = next(model.backbone.parameters())
    target = next(model.target_backbone.parameters())
    for step in range(3):
        with torch.no_grad():
            online.add_(torch.randn_like(online))
        t_before, o = target.detach().clone(), online.detach().clone()
        m = cosine_momentum_schedule(step, 4, 0.9, 1.0)
        assert model.current_momentum == pytest.approx(m)
        model.after_optimizer_step()
        torch.testing.assert_close(target, m * t_before + (1 - m) * o)
    assert int(model.ema_steps) == 3


def test_constant_momentum_without_total_steps():
    model = _model(momentum=0.5)
    model.after_optimizer_step()
    model.after_optimizer_step()
    assert model.current_momentum == 0.5 and int(model.ema_steps) == 2


def test_loss_is_symmetric_byol_regression():
    model = _model().eval()
    x = torch.rand(5, 1, 28, 28)
    out = model(x, generator=torch.Generator().manual_seed(2))
    a, b = model.make_views(x, torch.Generator().manual_seed(2))
    both = torch.cat([a, b])
    p = model.predictor(model.projector(model.embed(both)))
    t = model.target_projector(model.target_backbone(both).pooler_output)
    expected = byol_loss(p[:5], t[5:]) + byol_loss(p[5:], t[:5])
    torch.testing.assert_close(out.loss, expected)


def test_export_online_by_default_and_target_on_request():
    model = _model(momentum=0.5)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.1)
    model.after_optimizer_step()
    online, target = model.export_backbone(), model.export_backbone(which="target")
    assert _same(online, model.backbone) and _same(target, model.target_backbone)
    assert not _same(online, target)
    assert target.config.pretext_methods == ["byol"]
    assert all(p.requires_grad for p in target.parameters())
    with pytest.raises(ConfigError, match="which"):
        model.export_backbone(which="momentum")


def test_forward_backward_2d_and_round_trip(breast28):
    model = BYOLForPretraining(BYOLConfig(backbone_config=backbone_2d(), **SMALL, momentum_total_steps=10))
    x = breast28["train"][:4]
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss) and {"pos_sim", "neg_sim", "prediction_cos"} <= set(out.metrics)
    out.loss.backward()
    assert_grads_reach_backbone(model)
    model.after_optimizer_step()
    assert_round_trip(model, x)  # includes the target network and the EMA step counter


def test_forward_backward_3d(adrenal28):
    model = BYOLForPretraining(BYOLConfig(backbone_config=small_3d(), **SMALL))
    out = model(adrenal28["train"][:2], generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    model.after_optimizer_step()
    assert all(torch.isfinite(p).all() for p in model.target_backbone.parameters())


@pytest.mark.parametrize(
    "bad",
    [
        {"momentum": 1.5},
        {"momentum": 0.99, "momentum_final": 0.9},
        {"momentum_total_steps": 0},
        {"prediction_hidden_dim": 0},
        {"noise_prob": -0.1},
    ],
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ConfigError):
        BYOLConfig(backbone_config=backbone_2d(), **bad)


def test_learns_on_breastmnist(breast28):
    torch.manual_seed(0)
    model = BYOLForPretraining(
        BYOLConfig(
            backbone_config=light_backbone(),
            projection_hidden_dim=256,
            prediction_hidden_dim=256,
            projection_dim=64,
            momentum=0.99,
            crop_min_area=0.5,
            blur_prob=0.0,
        )
    )
    before = evaluate(model, breast28["test"])
    train_briefly(model, breast28["train"], steps=60, batch_size=32, lr=2e-3)
    after = evaluate(model, breast28["test"])
    assert after["loss"] < before["loss"] - 1.0, (before, after)
    # held-out: views of one image are clearly closer than views of different images (no collapse)
    assert after["pos_sim"] > after["neg_sim"] + 0.1, after
    assert after["neg_sim"] < 0.9, after
