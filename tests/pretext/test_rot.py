"""ROT: views, forward/backward in 2D and 3D, save/load round trip, and that it learns."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import rotate_2d, rotate_3d
from hfssl.pretext.registry import get_pretext_class
from hfssl.pretext.rot import RotConfig, RotForPretraining
from tests.pretext._helpers import (
    assert_grads_reach_backbone,
    assert_round_trip,
    backbone_2d,
    backbone_3d,
    evaluate,
    train_briefly,
)


def test_registered_by_name():
    assert get_pretext_class("rot") is RotForPretraining


@pytest.mark.parametrize("all_rotations", [False, True])
def test_views_are_the_labelled_rotations(all_rotations):
    plain = {"crop_min_area": 1.0, "flip_prob": 0.0}  # no pre-rotation augmentation
    model = RotForPretraining(RotConfig(backbone_config=backbone_2d(), all_rotations=all_rotations, **plain))
    x = torch.rand(3, 1, 28, 28)
    images, labels = model.make_views(x, torch.Generator().manual_seed(0))
    assert images.shape[0] == labels.shape[0] == (12 if all_rotations else 3)
    originals = x.repeat(4, 1, 1, 1) if all_rotations else x
    for img, lab, orig in zip(images, labels, originals):
        assert torch.equal(img, rotate_2d(orig[None], int(lab))[0])


@pytest.mark.parametrize("backbone", [backbone_2d, backbone_3d])
def test_views_are_rotations_of_the_augmented_images(backbone):
    model = RotForPretraining(RotConfig(backbone_config=backbone(), all_rotations=True))
    x = torch.rand(2, 1, *([28] * model.spatial_dims))
    images, labels = model.make_views(x, torch.Generator().manual_seed(1))
    augmented = model.augment(x, torch.Generator().manual_seed(1))  # the same draws, in the same order
    assert augmented.shape == x.shape and not torch.equal(augmented, x)
    rotate = rotate_2d if model.spatial_dims == 2 else rotate_3d
    torch.testing.assert_close(
        images, rotate(augmented.repeat(model.num_rotations, *([1] * (x.ndim - 1))), labels)
    )


@pytest.mark.parametrize(
    ("field", "value"), [("crop_min_area", 0.0), ("crop_min_area", 1.5), ("flip_prob", 2.0)]
)
def test_bad_augmentation_settings_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        RotConfig(backbone_config=backbone_2d(), **{field: value})


def test_forward_backward_2d_and_round_trip(breast28):
    model = RotForPretraining(RotConfig(backbone_config=backbone_2d()))
    x = breast28["train"][:4]
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out.logits.shape == (4, 4) and torch.isfinite(out.loss)
    out.loss.backward()
    assert_grads_reach_backbone(model)
    assert_round_trip(model, x)


def test_forward_backward_3d(adrenal28):
    model = RotForPretraining(RotConfig(backbone_config=backbone_3d()))
    out = model(adrenal28["train"][:2], generator=torch.Generator().manual_seed(0))
    assert out.logits.shape == (2, 10) and torch.isfinite(out.loss)
    out.loss.backward()


def test_negative_head_depth_is_refused():
    with pytest.raises(ConfigError, match="head_depth"):
        RotConfig(backbone_config=backbone_2d(), head_depth=-1)


def test_learns_rotation_on_breastmnist(breast28):
    torch.manual_seed(0)
    # a light backbone (standard stem: 28 px → 7 px) keeps this under a few seconds on CPU
    model = RotForPretraining(
        RotConfig(backbone_config=backbone_2d(small_input_stem=False), head_hidden_dim=256)
    )
    before = evaluate(model, breast28["test"])
    train_briefly(model, breast28["train"], steps=60, batch_size=32, lr=1e-3)
    after = evaluate(model, breast28["test"])
    # chance is 0.25; a learning model clearly beats it on held-out images
    assert after["accuracy"] > 0.5, (before, after)
    assert after["loss"] < before["loss"]
