"""DINO: multi-crop views (2D/3D), teacher = EMA of the student, schedules, centre, export, bad
settings, and that it learns."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.dino import DINOConfig, DINOForPretraining
from hfssl.pretext.registry import get_pretext_class
from tests.pretext._helpers import backbone_2d, backbone_3d, evaluate, train_briefly

SMALL = {"out_dim": 64, "head_hidden_dim": 64, "head_bottleneck_dim": 16}


def light_backbone():
    return backbone_2d(small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})


def small_3d():
    return backbone_3d("unet3d_encoder", backbone_kwargs={"channels": [8, 16, 32, 64]})


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_registered_by_name():
    assert get_pretext_class("dino") is DINOForPretraining
    assert DINOForPretraining.family == "self-distillation"


@pytest.mark.parametrize("dims", [2, 3])
def test_multi_crop_shapes(dims):
    backbone = light_backbone() if dims == 2 else small_3d()
    model = DINOForPretraining(DINOConfig(backbone_config=backbone, num_local_crops=3, **SMALL))
    x = torch.rand(2, 1, *(28,) * dims)
    first, second, local = model.make_crops(x, torch.Generator().manual_seed(0))
    assert first.shape == second.shape == x.shape and not torch.equal(first, second)
    assert len(local) == 3 and all(crop.shape == (2, 1, *(14,) * dims) for crop in local)
    again = model.make_crops(x, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], first) and all(torch.equal(a, b) for a, b in zip(again[2], local))


def test_teacher_is_the_ema_and_is_exported_by_default():
    model = DINOForPretraining(
        DINOConfig(backbone_config=light_backbone(), momentum_total_steps=100, **SMALL)
    )
    assert _same(model.backbone, model.teacher_backbone) and _same(model.projector, model.teacher_head)
    assert not any(p.requires_grad for p in model.teacher_backbone.parameters())
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.teacher_backbone.parameters()]
    model.after_optimizer_step()
    for old, new, online in zip(before, model.teacher_backbone.parameters(), model.backbone.parameters()):
        torch.testing.assert_close(new, 0.996 * old + 0.004 * online)
    assert int(model.ema_steps) == 1
    assert _same(model.export_backbone(), model.teacher_backbone)
    assert _same(model.export_backbone(which="target"), model.teacher_backbone)
    assert _same(model.export_backbone(which="online"), model.backbone)
    assert not _same(model.backbone, model.teacher_backbone)
    # the trainer's kNN monitor scores this encoder: the one exported, not the student
    assert model.encoder_to_export() is model.teacher_backbone
    assert model.encoder_to_export("online") is model.backbone


def test_teacher_temperature_warms_up_and_momentum_rises():
    model = DINOForPretraining(
        DINOConfig(backbone_config=light_backbone(), momentum_total_steps=100, **SMALL)
    )
    assert model.current_teacher_temperature == pytest.approx(0.04)
    model.ema_steps.fill_(5)
    assert model.current_teacher_temperature == pytest.approx(0.055)  # halfway through 10 steps
    model.ema_steps.fill_(50)
    assert model.current_teacher_temperature == pytest.approx(0.07)
    model.ema_steps.fill_(100)
    assert model.current_momentum == pytest.approx(1.0)
    # without a schedule length: the final temperature from the start
    fixed = DINOForPretraining(DINOConfig(backbone_config=light_backbone(), **SMALL))
    assert fixed.current_teacher_temperature == 0.07 and fixed.current_momentum == 0.996


def test_centre_moves_in_training_only(breast28):
    model = DINOForPretraining(DINOConfig(backbone_config=light_backbone(), num_local_crops=1, **SMALL))
    x = breast28["train"][:4]
    model.eval()
    model(x, generator=torch.Generator().manual_seed(0))
    assert float(model.centre.abs().sum()) == 0.0
    model.train()
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert float(model.centre.abs().sum()) > 0.0
    assert {"teacher_entropy", "momentum", "teacher_temperature"} <= set(out.metrics)


@pytest.mark.parametrize(
    "bad",
    [
        {"num_local_crops": -1},
        {"student_temperature": 0.0},
        {"teacher_temperature": -0.1},
        {"teacher_temperature_start": 0.0},
        {"local_crop_size": 100},
        {"local_crop_scale": [0.5, 0.2]},
        {"centre_momentum": 1.0},
        {"out_dim": 0},
    ],
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ConfigError):
        DINOConfig(backbone_config=backbone_2d(), **bad)


def test_learns_on_breastmnist(breast28):
    torch.manual_seed(0)
    model = DINOForPretraining(
        DINOConfig(
            backbone_config=light_backbone(),
            num_local_crops=2,
            momentum=0.99,
            momentum_total_steps=40,
            crop_min_area=0.5,
            blur_prob=0.0,
            **SMALL,
        )
    )
    before = evaluate(model, breast28["test"])
    losses = train_briefly(model, breast28["train"], steps=40, batch_size=32, lr=2e-3)
    after = evaluate(model, breast28["test"])
    assert all(torch.isfinite(torch.tensor(losses)))
    # held-out: the global crops of an image are closer than crops of different images, and the
    # teacher has not collapsed to one prototype
    gap = after["pos_sim"] - after["neg_sim"]
    assert gap > 0.05 and gap > before["pos_sim"] - before["neg_sim"] + 0.05, (before, after)
    assert after["accuracy"] > 0.035, after  # chance: 1/64
    assert after["teacher_entropy"] > 0.5, after
