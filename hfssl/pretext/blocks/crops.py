"""Overlapping random crop pairs, the default positives of the 3D contrastive methods.

Two boxes per sample are drawn so that their IoU exceeds a threshold (0.25 by default, as in
PCRL), then both are cut and resized to ``out_size`` in one batched ``F.grid_sample`` call,
which handles 2D and 3D alike (``torchvision.ops.roi_align`` is 2D-only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import _rng


class CropPair(NamedTuple):
    """Two resized views and their boxes ``(B, dims, 2)`` = [lo, hi) in input pixel units."""

    view_a: torch.Tensor
    view_b: torch.Tensor
    box_a: torch.Tensor
    box_b: torch.Tensor


def box_iou(box_a: torch.Tensor, box_b: torch.Tensor) -> torch.Tensor:
    """IoU of axis-aligned boxes ``(..., dims, 2)`` (area in 2D, volume in 3D)."""
    inter = (torch.minimum(box_a[..., 1], box_b[..., 1]) - torch.maximum(box_a[..., 0], box_b[..., 0])).clamp(
        min=0
    )
    inter_v = inter.prod(-1)
    vol_a = (box_a[..., 1] - box_a[..., 0]).prod(-1)
    vol_b = (box_b[..., 1] - box_b[..., 0]).prod(-1)
    return inter_v / (vol_a + vol_b - inter_v)


def random_boxes(
    spatial: Sequence[int],
    batch: int,
    scale: tuple[float, float] = (0.5, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random boxes ``(B, dims, 2)`` on CPU: side = ``f * L`` with ``f ~ U(scale)`` shared by all dims."""
    side = torch.tensor([float(s) for s in spatial])
    frac = scale[0] + (scale[1] - scale[0]) * _rng.rand((batch, 1), generator, "cpu")
    extent = frac * side
    lo = _rng.rand((batch, len(spatial)), generator, "cpu") * (side - extent)
    return torch.stack([lo, lo + extent], dim=-1)


def crop_resize(x: torch.Tensor, boxes: torch.Tensor, out_size: int | Sequence[int]) -> torch.Tensor:
    """Cut ``boxes`` ``(B, dims, 2)`` from ``x`` and resize them to ``out_size`` (bi/trilinear)."""
    spatial = x.shape[2:]
    dims = len(spatial)
    size = (out_size,) * dims if isinstance(out_size, int) else tuple(out_size)
    side = torch.tensor([float(s) for s in spatial], device=boxes.device)
    centre = (boxes[..., 0] + boxes[..., 1]) / side - 1.0  # normalised, align_corners=False
    half = (boxes[..., 1] - boxes[..., 0]) / side
    theta = torch.zeros(x.shape[0], dims, dims + 1, dtype=x.dtype, device=boxes.device)
    for r in range(dims):  # theta rows are (x, y[, z]) = reversed spatial order
        d = dims - 1 - r
        theta[:, r, r] = half[:, d]
        theta[:, r, dims] = centre[:, d]
    grid = F.affine_grid(theta.to(x.device), [x.shape[0], x.shape[1], *size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def overlapping_crop_pairs(
    x: torch.Tensor,
    out_size: int | Sequence[int],
    iou_threshold: float = 0.25,
    scale: tuple[float, float] = (0.5, 1.0),
    max_tries: int = 100,
    generator: torch.Generator | None = None,
) -> CropPair:
    """Two crops per sample with IoU > ``iou_threshold``, resized to ``out_size``.

    Works on ``(B, C, H, W)`` and ``(B, C, D, H, W)``. The second box is re-drawn (vectorised
    over the batch) until the IoU condition holds; a sample still failing after ``max_tries``
    reuses its first box (IoU 1), so the guarantee always holds.
    """
    if x.dim() not in (4, 5):
        raise ValueError(f"expected (B, C, H, W) or (B, C, D, H, W), got shape {tuple(x.shape)}")
    if not 0.0 <= iou_threshold < 1.0:
        raise ConfigError(f"iou_threshold must be in [0, 1), got {iou_threshold}", "use e.g. 0.25")
    if not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise ConfigError(f"crop scale must satisfy 0 < lo <= hi <= 1, got {scale}", "use e.g. (0.5, 1.0)")
    spatial, batch = tuple(x.shape[2:]), x.shape[0]
    box_a = random_boxes(spatial, batch, scale, generator)
    box_b = random_boxes(spatial, batch, scale, generator)
    bad = box_iou(box_a, box_b) <= iou_threshold
    for _ in range(max_tries):
        if not bool(bad.any()):
            break
        fresh = random_boxes(spatial, batch, scale, generator)
        box_b = torch.where(bad[:, None, None], fresh, box_b)
        bad = box_iou(box_a, box_b) <= iou_threshold
    box_b = torch.where(bad[:, None, None], box_a, box_b)
    box_a, box_b = box_a.to(x.device), box_b.to(x.device)
    return CropPair(crop_resize(x, box_a, out_size), crop_resize(x, box_b, out_size), box_a, box_b)
