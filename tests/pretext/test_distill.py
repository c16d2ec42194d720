"""Distillation: the teacher (hfssl or transformers DINOv2) is frozen and never saved, the student
learns to match it, and bad teachers or 3D data are refused with one ConfigError."""

from __future__ import annotations

import json

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.distill import DistillConfig, DistillForPretraining
from tests.pretext._helpers import backbone_2d, backbone_3d, tiny_teacher, train_briefly


def light_backbone():
    return backbone_2d(small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})


@pytest.mark.parametrize("kind", ["hfssl", "dinov2"])
def test_teacher_is_frozen_and_never_saved(kind, breast28, tmp_path):
    spec = tiny_teacher(kind)
    model = DistillForPretraining(DistillConfig(backbone_config=light_backbone(), teacher=spec))
    assert not any(k.startswith("teacher") or ".teacher" in k for k in model.state_dict())
    assert all(not p.requires_grad for p in model.teacher.parameters())
    teacher_before = [p.clone() for p in model.teacher.parameters()]
    x = breast28["train"][:4]
    out = model(x)
    out.loss.backward()
    assert out.target.shape == (4, model.teacher.embed_dim) and not out.target.requires_grad
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, model.teacher.parameters()))
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["teacher"] == spec
    loaded = DistillForPretraining.from_pretrained(tmp_path)
    assert set(loaded.state_dict()) == set(model.state_dict())


def test_student_learns_to_match_the_teacher(breast28):
    torch.manual_seed(0)
    model = DistillForPretraining(
        DistillConfig(backbone_config=light_backbone(), teacher=tiny_teacher("dinov2"))
    )
    model.eval()
    with torch.no_grad():
        before = float(model(breast28["test"][:64]).metrics["cosine"])
    train_briefly(model, breast28["train"], steps=30, batch_size=32, lr=2e-3)
    model.eval()
    with torch.no_grad():
        after = float(model(breast28["test"][:64]).metrics["cosine"])
    assert after > before + 0.2 and after > 0.8, (before, after)


def test_bad_teachers_and_3d_are_refused(tmp_path):
    from transformers import Dinov2Config, Dinov2Model

    with pytest.raises(ConfigError, match="needs a teacher"):
        DistillConfig(backbone_config=light_backbone())
    with pytest.raises(ConfigError, match="cannot load"):
        DistillConfig(backbone_config=light_backbone(), teacher="no_such_model")
    with pytest.raises(ConfigError, match="cannot load"):
        DistillConfig(backbone_config=light_backbone(), teacher="hf-hub:nobody/not-cached-anywhere")
    with pytest.raises(ConfigError, match="3D"):
        DistillConfig(backbone_config=backbone_3d(), teacher=tiny_teacher())
    config = Dinov2Config(
        image_size=30, patch_size=14, hidden_size=16, num_hidden_layers=1, num_attention_heads=2
    )
    Dinov2Model(config).save_pretrained(tmp_path / "odd")
    with pytest.raises(ConfigError, match="patch size"):
        DistillConfig(backbone_config=light_backbone(), teacher=str(tmp_path / "odd"))
    with pytest.raises(ConfigError):
        DistillConfig(backbone_config=light_backbone(), teacher=tiny_teacher(), loss="l1")
