"""Jigsaw: permutation set, exact tile order in 2D/3D, forward/backward, round trip, bad configs, learning."""

from __future__ import annotations

import math

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import hamming_permutation_set, min_hamming_distance
from hfssl.pretext.jigsaw import JigsawConfig, JigsawForPretraining
from hfssl.pretext.registry import get_pretext_class
from tests.pretext._helpers import (
    assert_grads_reach_backbone,
    assert_round_trip,
    backbone_2d,
    backbone_3d,
    evaluate,
    train_briefly,
)
from tests.pretext.test_rpl import assert_is_slice, patch_origin, position_coded


def test_registered_by_name():
    assert get_pretext_class("jigsaw") is JigsawForPretraining


@pytest.mark.parametrize(("dims", "num_tiles"), [(2, 9), (3, 8)])
def test_permutation_set_is_the_seeded_max_hamming_set(dims, num_tiles):
    backbone = backbone_2d() if dims == 2 else backbone_3d()
    model = JigsawForPretraining(JigsawConfig(backbone_config=backbone, head_hidden_dim=16))
    perms = model.permutations
    assert model.config.grid**dims == num_tiles
    assert perms.shape == (100, num_tiles)
    assert torch.equal(perms, hamming_permutation_set(num_tiles, 100, seed=0))
    assert all(sorted(p) == list(range(num_tiles)) for p in perms.tolist())
    assert len({tuple(p) for p in perms.tolist()}) == 100
    assert min_hamming_distance(perms) >= num_tiles // 2  # far apart, unlike random permutations
    other = JigsawForPretraining(JigsawConfig(backbone_config=backbone, head_hidden_dim=16, perm_seed=1))
    assert not torch.equal(other.permutations, perms)


@pytest.mark.parametrize("dims", [2, 3])
def test_tiles_are_shuffled_by_the_labelled_permutation(dims):
    side = 28
    backbone = backbone_2d() if dims == 2 else backbone_3d()
    model = JigsawForPretraining(JigsawConfig(backbone_config=backbone, head_hidden_dim=16))
    grid = model.config.grid
    cell = side // grid
    x = position_coded(12, side, dims)
    tiles, labels = model.make_views(x, torch.Generator().manual_seed(0))
    num_tiles = grid**dims
    assert tiles.shape[:3] == (12, num_tiles, 1)
    assert labels.min() >= 0 and labels.max() < 100 and len(labels.unique()) > 6
    for sample, label in zip(tiles, labels.tolist()):
        for slot in range(num_tiles):
            origin = patch_origin(sample[slot], side)
            assert_is_slice(sample[slot], x[0], origin)
            flat_cell = sum((o // cell) * grid ** (dims - 1 - d) for d, o in enumerate(origin))
            # slot i holds the original tile perms[label, i]
            assert flat_cell == int(model.permutations[label, slot])


def test_forward_backward_2d_and_round_trip(breast28):
    model = JigsawForPretraining(JigsawConfig(backbone_config=backbone_2d(), head_hidden_dim=128))
    x = breast28["train"][:3]
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out.logits.shape == (3, 100) and out.embeddings.shape == (3, model.backbone.num_features)
    assert abs(out.loss.item() - math.log(100)) < 0.5
    out.loss.backward()
    assert_grads_reach_backbone(model)
    # default head: FC 1024-1024-#perm on the 9 concatenated tile embeddings
    default = JigsawForPretraining(JigsawConfig(backbone_config=backbone_2d()))
    linears = [m for m in default.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(9 * 512, 1024), (1024, 1024), (1024, 100)]
    assert_round_trip(model, x)


def test_forward_backward_3d(adrenal28):
    model = JigsawForPretraining(
        JigsawConfig(backbone_config=backbone_3d("unet3d_encoder"), head_hidden_dim=64)
    )
    out = model(adrenal28["train"][:2], generator=torch.Generator().manual_seed(0))
    assert out.logits.shape == (2, 100) and torch.isfinite(out.loss)
    out.loss.backward()
    assert_grads_reach_backbone(model)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"grid": 2, "num_perms": 100}, "exceeds the 24 orderings"),
        ({"grid": 1}, "grid"),
        ({"num_perms": 1}, "num_perms"),
        ({"perm_method": "random"}, "perm_method"),
        ({"head_depth": -1}, "head_depth"),
        ({"backbone_config": backbone_2d(image_size=6)}, "too small"),
        ({"num_perms": 10.5}, "JigsawConfig"),
    ],
)
def test_bad_config_is_refused(kwargs, match):
    kwargs = {"backbone_config": backbone_2d(), **kwargs}
    with pytest.raises(ConfigError, match=match):
        JigsawConfig(**kwargs)


def test_learns_jigsaw_on_breastmnist(breast28):
    torch.manual_seed(0)
    # ResNet-10t (one block per stage): 9 tiles per image make the deep layers dominate; half of ResNet-18's cost
    model = JigsawForPretraining(
        JigsawConfig(backbone_config=backbone_2d("resnet10t", small_input_stem=False), head_hidden_dim=256)
    )
    held_out = breast28["test"].repeat(2, 1, 1, 1)
    before = evaluate(model, held_out)
    train_briefly(model, breast28["train"], steps=60, batch_size=32, lr=1e-3)
    after = evaluate(model, held_out)
    # chance is 1/100; a learning model clearly beats it on held-out images
    assert after["accuracy"] > 0.15, (before, after)
    assert after["loss"] < min(before["loss"], math.log(100)) - 0.3, (before, after)
