"""Helpers for pretext tests: tiny backbones, a short training loop, held-out evaluation, round trips."""

from __future__ import annotations

import os
import tempfile

import torch

from hfssl.models import HfsslConfig, HfsslModel
from hfssl.pretext.base import PretextModel


def backbone_2d(name: str = "resnet18", in_chans: int = 1, image_size: int = 28, **kwargs) -> HfsslConfig:
    return HfsslConfig(backbone=name, spatial_dims=2, in_chans=in_chans, image_size=image_size, **kwargs)


def backbone_3d(name: str = "resnet18_3d", image_size: int = 28, **kwargs) -> HfsslConfig:
    return HfsslConfig(backbone=name, spatial_dims=3, in_chans=1, image_size=image_size, **kwargs)


def train_briefly(
    model: PretextModel,
    images: torch.Tensor,
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
) -> list[float]:
    """AdamW on random mini-batches of ``images``; returns the loss of every step."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(images), (batch_size,), generator=gen)
        out = model(images[idx], generator=gen)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if hasattr(model, "after_optimizer_step"):
            model.after_optimizer_step()
        losses.append(out.loss.item())
    return losses


@torch.no_grad()
def evaluate(
    model: PretextModel, images: torch.Tensor, batch_size: int = 64, seed: int = 123
) -> dict[str, float]:
    """Mean of the model's metrics (and loss) over held-out ``images`` in eval mode."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    totals: dict[str, float] = {}
    count = 0
    for start in range(0, len(images), batch_size):
        out = model(images[start : start + batch_size], generator=gen)
        n = min(batch_size, len(images) - start)
        for key, value in {"loss": out.loss, **(out.metrics or {})}.items():
            totals[key] = totals.get(key, 0.0) + float(value) * n
        count += n
    return {k: v / count for k, v in totals.items()}


def assert_round_trip(model: PretextModel, pixel_values: torch.Tensor) -> None:
    """save_pretrained → from_pretrained gives identical weights; the backbone exports as an HfsslModel."""
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        files = sorted(os.listdir(tmp))
        assert files == ["config.json", "model.safetensors"], files
        loaded = type(model).from_pretrained(tmp)
        loaded.eval()
        for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
            assert torch.equal(a, b), name
        assert torch.equal(model.embed(pixel_values), loaded.embed(pixel_values))
        exported = model.export_backbone()
        assert isinstance(exported, HfsslModel)
        assert model.method_name in exported.config.pretext_methods
        bb_dir = os.path.join(tmp, "backbone")
        exported.save_pretrained(bb_dir)
        reloaded = HfsslModel.from_pretrained(bb_dir).eval()
        exported.eval()
        assert torch.equal(exported(pixel_values).pooler_output, reloaded(pixel_values).pooler_output)


def assert_grads_reach_backbone(model: PretextModel) -> None:
    """After ``backward``: every gradient is finite, and some backbone parameter has a non-zero one.

    (``all(isfinite(p.grad) for p ... if p.grad is not None)`` alone passes when nothing flows.)
    """
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert grads, "no parameter received a gradient"
    bad = [name for name, g in grads.items() if not torch.isfinite(g).all()]
    assert not bad, f"non-finite gradients: {bad[:5]}"
    backbone = [
        g
        for name, p in model.backbone.named_parameters()
        if (g := p.grad) is not None and bool(g.abs().sum() > 0)
    ]
    assert backbone, "the loss's gradient does not reach the backbone"


_TEACHER_DIRS: dict[str, str] = {}


TINY_TIMM_VIT = "timm:vit_tiny_patch16_224?img_size=28&patch_size=7&depth=2&embed_dim=48&num_heads=2"


def tiny_teacher(kind: str = "hfssl") -> str:
    """A tiny local distillation teacher (made once per process): an hfssl ResNet-10 checkpoint
    (``"hfssl"``), a 2-layer transformers DINOv2 (hidden 32, 28 px, patch 14; ``"dinov2"``) or a
    2-block timm ViT at random init (28 px, patch 7, width 48; ``"timm"``, a spec: no folder)."""
    if kind == "timm":
        return TINY_TIMM_VIT
    if kind not in _TEACHER_DIRS:
        folder = tempfile.mkdtemp(prefix=f"teacher_{kind}_")
        state = torch.random.get_rng_state()
        torch.manual_seed(123)
        if kind == "hfssl":
            HfsslModel(
                backbone_2d(small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})
            ).save_pretrained(folder)
        else:
            from transformers import Dinov2Config, Dinov2Model

            config = Dinov2Config(
                image_size=28, patch_size=14, num_channels=3, hidden_size=32, num_hidden_layers=2,
                num_attention_heads=2, intermediate_size=64,
            )  # fmt: skip
            Dinov2Model(config).save_pretrained(folder)
        torch.random.set_rng_state(state)
        _TEACHER_DIRS[kind] = folder
    return _TEACHER_DIRS[kind]
