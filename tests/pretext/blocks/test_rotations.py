"""2D (4-class) and 3D (10-class) batched rotations."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import (
    NUM_ROTATIONS_3D,
    ROTATIONS_3D,
    inverse_rotation_3d,
    random_rotation,
    rotate_2d,
    rotate_3d,
)


def test_rotate_2d_per_sample_matches_rot90() -> None:
    x = torch.randn(4, 2, 5, 5)
    k = torch.tensor([0, 1, 2, 3])
    out = rotate_2d(x, k)
    for i in range(4):
        torch.testing.assert_close(out[i], torch.rot90(x[i], i, dims=(1, 2)))
    torch.testing.assert_close(rotate_2d(rotate_2d(rotate_2d(rotate_2d(x, 1), 1), 1), 1), x)


def test_ten_distinct_3d_rotations() -> None:
    assert NUM_ROTATIONS_3D == 10
    vol = torch.randn(1, 1, 4, 4, 4)  # random, hence asymmetric
    outs = [rotate_3d(vol, i) for i in range(10)]
    assert all(not torch.equal(outs[i], outs[j]) for i in range(10) for j in range(i + 1, 10))
    torch.testing.assert_close(outs[0], vol)
    for i, rot in enumerate(ROTATIONS_3D):
        torch.testing.assert_close(outs[i], torch.rot90(vol, rot.k, rot.dims))


def test_four_quarter_turns_are_identity_and_inverse_undoes() -> None:
    vol = torch.randn(10, 2, 3, 3, 3)
    for first in (1, 4, 7):  # the 90-degree rotation about each axis
        y = vol
        for _ in range(4):
            y = rotate_3d(y, first)
        torch.testing.assert_close(y, vol)
    idx = torch.arange(10)
    torch.testing.assert_close(rotate_3d(rotate_3d(vol, idx), inverse_rotation_3d(idx)), vol)


def test_random_rotation_labels_are_exact() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 6, 6)
    y, labels = random_rotation(x, g)
    assert labels.min() >= 0 and labels.max() < 4
    torch.testing.assert_close(rotate_2d(y, (4 - labels) % 4), x)
    v = torch.randn(16, 1, 4, 4, 4)
    w, labels3 = random_rotation(v, g)
    assert labels3.max() < 10 and len(labels3.unique()) > 3
    torch.testing.assert_close(rotate_3d(w, inverse_rotation_3d(labels3)), v)


def test_non_square_inputs_are_rejected() -> None:
    with pytest.raises(ConfigError):
        rotate_2d(torch.randn(1, 1, 4, 5), 1)
    with pytest.raises(ConfigError):
        rotate_3d(torch.randn(1, 1, 4, 4, 5), 1)
