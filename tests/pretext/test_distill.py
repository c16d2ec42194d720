"""Distillation: the teacher (hfssl, transformers DINOv2 or timm ViT) is frozen and never saved, the
student learns to match its pooled embedding and spatial map (2D) or its slices (3D), and bad
teachers are refused with one ConfigError."""

from __future__ import annotations

import json

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.hub import load_feature_extractor
from hfssl.models import HfsslModel
from hfssl.pretext import distill
from hfssl.pretext.distill import DistillConfig, DistillForPretraining, common_grid, slice_of_map
from tests.pretext._helpers import (
    assert_grads_reach_backbone,
    backbone_2d,
    backbone_3d,
    tiny_teacher,
    train_briefly,
)

KINDS = ["hfssl", "dinov2", "timm"]


def light_backbone():
    return backbone_2d(small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})


def light_backbone_3d():
    return backbone_3d("unet3d_encoder", backbone_kwargs={"channels": [8, 16, 32, 64]})


def fit_fixed_batch(model, x, steps=15, lr=2e-3) -> list[float]:
    """AdamW on one fixed batch (the same slices every step): the loss of every step."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        out = model(x, generator=torch.Generator().manual_seed(0))
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    return losses


@pytest.mark.parametrize("kind", KINDS)
def test_teacher_is_frozen_and_never_saved(kind, breast28, tmp_path):
    spec = tiny_teacher(kind)
    model = DistillForPretraining(DistillConfig(backbone_config=light_backbone(), teacher=spec))
    assert not any(k.startswith("teacher") or ".teacher" in k for k in model.state_dict())
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert model.spatial_projector is not None  # all three teachers give a spatial map
    teacher_before = [p.clone() for p in model.teacher.parameters()]
    x = breast28["train"][:4]
    out = model(x)
    out.loss.backward()
    assert out.target.shape == (4, model.teacher.embed_dim) and not out.target.requires_grad
    assert {"cosine", "mse", "spatial_loss", "spatial_cosine"} <= set(out.metrics)
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, model.teacher.parameters()))
    assert model.spatial_projector.weight.grad is not None
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["teacher"] == spec
    loaded = DistillForPretraining.from_pretrained(tmp_path)
    assert set(loaded.state_dict()) == set(model.state_dict())


@pytest.mark.parametrize("kind", KINDS)
def test_embed_with_map_is_embed_and_the_deepest_map(kind):
    """One pass gives what ``embed`` and ``feature_maps()[-1]`` give; ViT maps drop the CLS token."""
    extractor = load_feature_extractor(tiny_teacher(kind)).eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        pooled, spatial = extractor.embed_with_map(x)
        assert torch.allclose(pooled, extractor.embed(x), atol=1e-6)
        assert torch.allclose(spatial, extractor.feature_maps(x)[-1], atol=1e-6)
    grid = {"hfssl": (1, 1), "dinov2": (2, 2), "timm": (4, 4)}[kind]  # 28 px: stride 32, patch 14, patch 7
    assert spatial.shape == (3, extractor.feature_channels[-1], *grid)


def test_spatial_term_is_zero_when_the_projected_student_map_is_the_teachers():
    model = DistillForPretraining(
        DistillConfig(backbone_config=light_backbone(), teacher=tiny_teacher("dinov2"))
    )
    teacher_map = torch.randn(2, 32, 2, 2)
    # a student map at a finer grid whose area averages are the teacher's map
    student_map = torch.zeros(2, 512, 4, 4)
    student_map[:, :32] = teacher_map.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    with torch.no_grad():
        model.spatial_projector.weight.zero_()
        model.spatial_projector.weight[:, :32] = torch.eye(32)
        model.spatial_projector.bias.zero_()
    with torch.no_grad():
        loss, cos = model._term(*model._project_map(student_map, teacher_map))
    assert float(loss) == pytest.approx(0.0, abs=1e-6) and torch.allclose(cos, torch.ones_like(cos))
    model.config.loss = "mse"
    with torch.no_grad():
        loss, _ = model._term(*model._project_map(student_map, teacher_map))
    assert float(loss) == pytest.approx(0.0, abs=1e-10)
    # common grid: the coarser one per axis, the finer map area-averaged, nothing upsampled
    a, b = common_grid(torch.randn(1, 3, 4, 8), torch.randn(1, 5, 2, 16))
    assert a.shape == (1, 3, 2, 8) and b.shape == (1, 5, 2, 8)


def test_the_spatial_term_alone_reaches_the_student_backbone(breast28):
    model = DistillForPretraining(
        DistillConfig(backbone_config=light_backbone(), teacher=tiny_teacher("timm"))
    )
    x = breast28["train"][:4]
    _, maps = model.backbone.forward_features(x)
    _, teacher_map = model.teacher_features(x)
    loss, _ = model._term(*model._project_map(maps[-1], teacher_map))
    loss.backward()
    assert_grads_reach_backbone(model)
    assert all(p.grad is None for p in model.projector.parameters())  # the pooled term is not in it


def test_spatial_weight_zero_and_teachers_without_a_map_give_the_pooled_term_only(breast28, monkeypatch):
    x = breast28["train"][:4]
    torch.manual_seed(0)
    off = DistillForPretraining(
        DistillConfig(backbone_config=light_backbone(), teacher=tiny_teacher("dinov2"), spatial_weight=0.0)
    )
    assert off.spatial_projector is None and "spatial_loss" not in off(x).metrics
    assert not any(k.startswith("spatial_projector") for k in off.state_dict())
    out = off(x)
    assert torch.allclose(out.loss, 1 - out.metrics["cosine"])
    monkeypatch.setitem(distill._TEACHER_MAP_CHANNELS, tiny_teacher("dinov2"), None)  # a teacher with no map
    no_map = DistillForPretraining(
        DistillConfig(backbone_config=light_backbone(), teacher=tiny_teacher("dinov2"))
    )
    assert no_map.spatial_projector is None and "spatial_loss" not in no_map(x).metrics
    with pytest.raises(ConfigError, match="spatial_weight"):
        DistillConfig(backbone_config=light_backbone(), teacher=tiny_teacher(), spatial_weight=-1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_loss_decreases_on_a_fixed_batch_2d(kind, breast28):
    torch.manual_seed(0)
    model = DistillForPretraining(DistillConfig(backbone_config=light_backbone(), teacher=tiny_teacher(kind)))
    losses = fit_fixed_batch(model, breast28["train"][:8])
    assert losses[-1] < 0.7 * losses[0], losses


def test_student_learns_to_match_the_teacher(breast28):
    torch.manual_seed(0)
    model = DistillForPretraining(
        DistillConfig(backbone_config=light_backbone(), teacher=tiny_teacher("dinov2"))
    )
    model.eval()
    with torch.no_grad():
        before = model(breast28["test"][:64]).metrics
    train_briefly(model, breast28["train"], steps=30, batch_size=32, lr=2e-3)
    model.eval()
    with torch.no_grad():
        after = model(breast28["test"][:64]).metrics
    assert float(after["cosine"]) > float(before["cosine"]) + 0.2 and float(after["cosine"]) > 0.8
    assert float(after["spatial_cosine"]) > float(before["spatial_cosine"]) + 0.2, (before, after)


# ------------------------------------------------------------------------------ 3D, slice-wise
def test_slice_of_map_reads_the_slice_position_on_the_feature_grid():
    volume_map = torch.randn(2, 3, 6, 5, 4)
    idx = torch.tensor([0, 3, 5])
    same_grid = slice_of_map(volume_map, 0, idx, size=6)  # grid = volume: the slices themselves
    assert torch.allclose(same_grid.view(2, 3, 3, 5, 4), volume_map[:, :, idx].movedim(2, 1))
    # a 2-cell grid over 4 slices: cell centres at slices 0.5 and 2.5; slice 1.5 is their mean
    coarse = torch.randn(1, 1, 2, 3, 3)
    mid = slice_of_map(coarse, 0, torch.tensor([0, 3]), size=4)
    assert torch.allclose(mid[0], coarse[0, :, 0]) and torch.allclose(mid[1], coarse[0, :, 1])
    half = slice_of_map(coarse, 0, torch.tensor([1]), size=4)[0]
    assert torch.allclose(half, 0.75 * coarse[0, :, 0] + 0.25 * coarse[0, :, 1])
    # width axis: (B * k, C, D, H)
    assert slice_of_map(volume_map, 2, torch.tensor([1, 2]), size=4).shape == (4, 3, 6, 5)


@pytest.mark.parametrize("kind", ["dinov2", "timm"])  # the random tiny ResNet maps mask slices to 0
def test_3d_student_learns_from_slices(kind, adrenal28):
    torch.manual_seed(0)
    model = DistillForPretraining(
        DistillConfig(backbone_config=light_backbone_3d(), teacher=tiny_teacher(kind), slices_per_axis=3)
    )
    x = adrenal28["train"][:4]
    gen = torch.Generator()
    first = model.slice_positions(x, gen.manual_seed(5))
    assert [len(p) for p in first] == [3, 3, 3]
    assert all(torch.equal(a, b) for a, b in zip(first, model.slice_positions(x, gen.manual_seed(5))))
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out.target.shape == (4 * 3 * 3, model.teacher.embed_dim)  # B x axes x slices
    assert "spatial_loss" in out.metrics
    out.loss.backward()
    assert_grads_reach_backbone(model)
    assert not any("teacher" in k for k in model.state_dict())
    model.zero_grad(set_to_none=True)
    losses = fit_fixed_batch(model, x)
    assert losses[-1] < 0.7 * losses[0], losses
    every = DistillForPretraining(
        DistillConfig(backbone_config=light_backbone_3d(), teacher=tiny_teacher(kind), slices_per_axis=0)
    )
    assert [p.tolist() for p in every.slice_positions(x, None)] == [list(range(7, 21))] * 3
    with pytest.raises(ConfigError, match="slice_span"):
        DistillConfig(backbone_config=light_backbone_3d(), teacher=tiny_teacher(), slice_span=0.0)


def test_bad_teachers_are_refused(tmp_path):
    from transformers import Dinov2Config, Dinov2Model

    with pytest.raises(ConfigError, match="needs a teacher"):
        DistillConfig(backbone_config=light_backbone())
    with pytest.raises(ConfigError, match="cannot load"):
        DistillConfig(backbone_config=light_backbone(), teacher="no_such_model")
    with pytest.raises(ConfigError, match="cannot load"):
        DistillConfig(backbone_config=light_backbone(), teacher="hf-hub:nobody/not-cached-anywhere")
    config = Dinov2Config(
        image_size=30, patch_size=14, hidden_size=16, num_hidden_layers=1, num_attention_heads=2
    )
    Dinov2Model(config).save_pretrained(tmp_path / "odd")
    with pytest.raises(ConfigError, match="patch size"):
        DistillConfig(backbone_config=light_backbone(), teacher=str(tmp_path / "odd"))
    with pytest.raises(ConfigError):
        DistillConfig(backbone_config=light_backbone(), teacher=tiny_teacher(), loss="l1")
    with pytest.raises(ConfigError, match="slices_per_axis"):
        DistillConfig(backbone_config=light_backbone_3d(), teacher=tiny_teacher(), slices_per_axis=-1)


def test_3d_teachers_and_teachers_that_cannot_take_slices_are_refused(tmp_path):
    HfsslModel(light_backbone_3d()).save_pretrained(tmp_path / "teacher3d")
    for student in (light_backbone(), light_backbone_3d()):
        with pytest.raises(ConfigError, match="is 3D; distill needs a 2D teacher") as info:
            DistillConfig(backbone_config=student, teacher=str(tmp_path / "teacher3d"))
        assert "\n" not in str(info.value).strip()
    two = backbone_2d(in_chans=2, small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})
    HfsslModel(two).save_pretrained(tmp_path / "two_channels")
    rgb_volumes = backbone_3d("unet3d_encoder", backbone_kwargs={"channels": [8, 16, 32, 64]})
    rgb_volumes = type(rgb_volumes)(**{**rgb_volumes.to_dict(), "in_chans": 3})
    with pytest.raises(ConfigError, match="cannot take slices of these volumes"):
        DistillConfig(backbone_config=rgb_volumes, teacher=str(tmp_path / "two_channels"))
    with pytest.raises(ConfigError, match="cannot take these images"):
        DistillConfig(
            backbone_config=backbone_2d(
                in_chans=3, small_input_stem=False, backbone_kwargs={"layers": [1] * 4}
            ),
            teacher=str(tmp_path / "two_channels"),
        )
