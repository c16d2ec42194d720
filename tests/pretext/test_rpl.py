"""RPL: exact pair geometry in 2D/3D, forward/backward, round trip, bad configs, and that it learns."""

from __future__ import annotations

import math

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.registry import get_pretext_class
from hfssl.pretext.rpl import RPLConfig, RPLForPretraining
from tests.pretext._helpers import (
    assert_grads_reach_backbone,
    assert_round_trip,
    backbone_2d,
    backbone_3d,
    evaluate,
    train_briefly,
)


def position_coded(batch: int, side: int, dims: int) -> torch.Tensor:
    """Images whose pixel value is its row-major flat index (exact in float32), so a patch tells where it was cut."""
    n = side**dims
    return (
        torch.arange(n, dtype=torch.float32).reshape(1, 1, *([side] * dims)).repeat(batch, 1, *([1] * dims))
    )


def patch_origin(patch: torch.Tensor, side: int) -> tuple[int, ...]:
    """Corner coordinates of a patch cut from a :func:`position_coded` image (its first pixel's value)."""
    flat = int(patch.reshape(-1)[0])
    dims = patch.dim() - 1
    return tuple((flat // side ** (dims - 1 - d)) % side for d in range(dims))


def assert_is_slice(patch: torch.Tensor, image: torch.Tensor, origin: tuple[int, ...]) -> None:
    region = image[(slice(None), *[slice(o, o + s) for o, s in zip(origin, patch.shape[1:])])]
    assert torch.equal(patch, region)


def test_registered_by_name():
    assert get_pretext_class("rpl") is RPLForPretraining


@pytest.mark.parametrize("dims", [2, 3])
def test_pairs_are_the_centre_patch_and_the_labelled_neighbour(dims):
    side, grid = 28, 3
    backbone = backbone_2d() if dims == 2 else backbone_3d()
    model = RPLForPretraining(RPLConfig(backbone_config=backbone, head_hidden_dim=16))
    x = position_coded(40, side, dims)
    pairs, labels = model.make_views(x, torch.Generator().manual_seed(0))
    num_classes = grid**dims - 1
    assert pairs.shape == (40, 2, 1, *([7] * dims))  # cell 9, gap 1, jitter 1 -> 7 px patches
    assert labels.min() >= 0 and labels.max() < num_classes
    assert len(labels.unique()) > num_classes // 2  # labels are spread over the classes
    centre_cell = (grid**dims - 1) // 2
    cell = side // grid
    for pair, label in zip(pairs, labels.tolist()):
        centre_origin = patch_origin(pair[0], side)
        other_origin = patch_origin(pair[1], side)
        assert_is_slice(pair[0], x[0], centre_origin)
        assert_is_slice(pair[1], x[0], other_origin)
        # the centre patch lies in the centre cell, the other in cell `label` (skipping the centre)
        cells = [o // cell for o in other_origin]
        flat_cell = sum(c * grid ** (dims - 1 - d) for d, c in enumerate(cells))
        assert all(o // cell == grid // 2 for o in centre_origin)
        assert flat_cell == label + (label >= centre_cell)
        # gap: neighbouring patches never touch
        for d in range(dims):
            if cells[d] != grid // 2:
                lo, hi = sorted([centre_origin[d], other_origin[d]])
                assert hi - lo > 7


def test_views_are_reproducible_with_a_generator():
    model = RPLForPretraining(RPLConfig(backbone_config=backbone_2d(), head_hidden_dim=16))
    x = torch.rand(8, 1, 28, 28)
    a = model.make_views(x, torch.Generator().manual_seed(3))
    b = model.make_views(x, torch.Generator().manual_seed(3))
    c = model.make_views(x, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_tiles_are_resized_for_backbones_that_need_it():
    x = torch.rand(2, 1, 28, 28, 28)
    unet = RPLForPretraining(RPLConfig(backbone_config=backbone_3d("unet3d_encoder"), head_hidden_dim=16))
    assert unet.make_views(x)[0].shape[-3:] == (8, 8, 8)  # 7^3 cut, raised to the U-Net's minimum
    resnet = RPLForPretraining(RPLConfig(backbone_config=backbone_3d(), head_hidden_dim=16))
    assert resnet.make_views(x)[0].shape[-3:] == (7, 7, 7)
    sized = RPLForPretraining(RPLConfig(backbone_config=backbone_2d(), tile_size=12, head_hidden_dim=16))
    assert sized.make_views(torch.rand(2, 1, 28, 28))[0].shape == (2, 2, 1, 12, 12)


def test_forward_backward_2d_and_round_trip(breast28):
    model = RPLForPretraining(RPLConfig(backbone_config=backbone_2d()))
    x = breast28["train"][:4]
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out.logits.shape == (4, 8) and out.labels.shape == (4,)
    assert out.embeddings.shape == (4, model.backbone.num_features)
    assert torch.isfinite(out.loss)
    # a fresh classifier is near chance: cross-entropy close to log(8)
    assert abs(out.loss.item() - math.log(8)) < 0.5
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(p.grad is not None for p in model.backbone.parameters())  # the shared encoder is trained
    assert_round_trip(model, x)


@pytest.mark.parametrize("backbone", ["unet3d_encoder", "resnet18_3d"])
def test_forward_backward_3d(adrenal28, backbone):
    model = RPLForPretraining(RPLConfig(backbone_config=backbone_3d(backbone), head_hidden_dim=64))
    out = model(adrenal28["train"][:2], generator=torch.Generator().manual_seed(0))
    assert out.logits.shape == (2, 26) and torch.isfinite(out.loss)
    out.loss.backward()
    assert_grads_reach_backbone(model)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"grid": 2}, "odd grid"),
        ({"grid": 4}, "odd grid"),
        ({"head_depth": -1}, "head_depth"),
        ({"gap": -1}, "gap"),
        ({"backbone_config": backbone_2d(image_size=5)}, "too small"),
        ({"backbone_config": backbone_3d("unet3d_encoder"), "tile_size": 6}, "tile_size"),
        ({"grid": "3"}, "RPLConfig"),
    ],
)
def test_bad_config_is_refused(kwargs, match):
    kwargs = {"backbone_config": backbone_2d(), **kwargs}
    with pytest.raises(ConfigError, match=match):
        RPLConfig(**kwargs)


def test_learns_relative_position_on_breastmnist(breast28):
    torch.manual_seed(0)
    model = RPLForPretraining(
        RPLConfig(backbone_config=backbone_2d("resnet10t", small_input_stem=False), head_hidden_dim=256)
    )
    held_out = breast28["test"].repeat(3, 1, 1, 1)  # 3 random pairs per test image: less noisy accuracy
    before = evaluate(model, held_out)
    train_briefly(model, breast28["train"], steps=80, batch_size=32, lr=1e-3)
    after = evaluate(model, held_out)
    # chance is 1/8 = 0.125 (std ~0.015 over 468 pairs); a learning model clearly beats it
    assert after["accuracy"] > 0.2, (before, after)
    assert after["loss"] < min(before["loss"], math.log(8)) - 0.1, (before, after)
