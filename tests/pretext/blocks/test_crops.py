"""Overlapping crop pairs: IoU guarantee, exact crops, 2D and 3D."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import crop_resize, overlapping_crop_pairs


def numpy_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.prod(np.clip(np.minimum(a[:, 1], b[:, 1]) - np.maximum(a[:, 0], b[:, 0]), 0, None))
    va, vb = np.prod(a[:, 1] - a[:, 0]), np.prod(b[:, 1] - b[:, 0])
    return float(inter / (va + vb - inter))


@pytest.mark.parametrize(
    "shape,threshold", [((64, 1, 32, 32), 0.25), ((32, 1, 16, 16, 16), 0.25), ((64, 1, 20, 24), 0.5)]
)
def test_iou_always_exceeds_threshold(shape: tuple[int, ...], threshold: float) -> None:
    x = torch.rand(shape)
    pair = overlapping_crop_pairs(
        x, 8, iou_threshold=threshold, scale=(0.3, 1.0), generator=torch.Generator().manual_seed(0)
    )
    dims = len(shape) - 2
    assert pair.view_a.shape == pair.view_b.shape == (shape[0], 1, *([8] * dims))
    ious = [numpy_iou(a, b) for a, b in zip(pair.box_a.numpy(), pair.box_b.numpy())]
    assert min(ious) > threshold
    assert len({round(v, 4) for v in ious}) > shape[0] // 2  # pairs are random, not copies
    side = torch.tensor(shape[2:], dtype=torch.float32)
    for box in (pair.box_a, pair.box_b):
        assert bool((box[..., 0] >= 0).all()) and bool((box[..., 1] <= side + 1e-5).all())


def test_crop_resize_is_exact_on_integer_boxes() -> None:
    x = torch.randn(2, 3, 12, 12, 12)
    boxes = torch.tensor([[[2.0, 8.0], [0.0, 6.0], [5.0, 11.0]], [[0.0, 12.0], [0.0, 12.0], [0.0, 12.0]]])
    out = crop_resize(x, boxes, 6)
    torch.testing.assert_close(out[0], x[0, :, 2:8, 0:6, 5:11])
    full = crop_resize(x, boxes, 12)
    torch.testing.assert_close(full[1], x[1])  # the whole volume at its own size is the identity
    img = torch.randn(1, 1, 10, 14)
    box = torch.tensor([[[1.0, 5.0], [3.0, 11.0]]])
    torch.testing.assert_close(crop_resize(img, box, (4, 8))[0], img[0, :, 1:5, 3:11])


def test_reproducible_and_validated() -> None:
    x = torch.rand(4, 1, 16, 16)
    a = overlapping_crop_pairs(x, 8, generator=torch.Generator().manual_seed(1))
    b = overlapping_crop_pairs(x, 8, generator=torch.Generator().manual_seed(1))
    for u, v in itertools.zip_longest(a, b):
        assert torch.equal(u, v)
    with pytest.raises(ConfigError):
        overlapping_crop_pairs(x, 8, iou_threshold=1.0)
    with pytest.raises(ConfigError):
        overlapping_crop_pairs(x, 8, scale=(0.0, 1.0))
