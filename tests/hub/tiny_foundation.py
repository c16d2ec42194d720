"""Tiny random foundation-model stand-ins built from configs (nothing is downloaded).

DINOv2, a CLIP vision tower and ViT-MAE with 2 layers and a 32-wide hidden state, each saved with
``save_pretrained`` and a ``preprocessor_config.json`` like the real repos' (ImageNet / CLIP
statistics, bicubic resampling), so ``--input-size auto`` resolves to their 32 px.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

NATIVE = 32  # the tiny models' own input size (the real ones: 224)
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
CLIP = ([0.4815, 0.4578, 0.4082], [0.2686, 0.2613, 0.2758])
KINDS = ("dinov2", "clip", "vit_mae")


def build_tiny(kind: str, folder: Path, seed: int = 0) -> Path:
    """Save a tiny random ``kind`` model (``dinov2``, ``clip`` or ``vit_mae``) to ``folder``."""
    from transformers import (
        CLIPVisionConfig,
        CLIPVisionModel,
        Dinov2Config,
        Dinov2Model,
        ViTMAEConfig,
        ViTMAEModel,
    )

    torch.manual_seed(seed)
    common = dict(
        image_size=NATIVE,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_channels=3,
    )
    if kind == "dinov2":
        model = Dinov2Model(Dinov2Config(mlp_ratio=2, **common))
        stats = IMAGENET
    elif kind == "clip":
        model = CLIPVisionModel(CLIPVisionConfig(intermediate_size=64, **common))
        stats = CLIP
    elif kind == "vit_mae":
        model = ViTMAEModel(ViTMAEConfig(intermediate_size=64, mask_ratio=0.75, **common))
        stats = IMAGENET
    else:
        raise ValueError(kind)
    model.save_pretrained(folder)
    processor = {
        "do_normalize": True,
        "image_mean": stats[0],
        "image_std": stats[1],
        "resample": 3,
        "size": {"height": NATIVE, "width": NATIVE},
    }
    (Path(folder) / "preprocessor_config.json").write_text(json.dumps(processor))
    return Path(folder)
