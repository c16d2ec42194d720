"""Batched rotations for the ROT pretext task (Gidaris et al. 2018; 3D as in Zhang et al. 2023).

2D: 4 classes, ``k * 90`` degrees in the (H, W) plane. 3D: 10 classes, :data:`ROTATIONS_3D`:
the identity and 90/180/270 degrees about each of the three spatial axes of a
``(B, C, D, H, W)`` volume. Rotations by 90 degrees need equal side lengths in the rotated
plane, so batched inputs must be square (2D) / cubic (3D).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from hfssl.errors import ConfigError


class Rotation3D(NamedTuple):
    """``k`` quarter turns in the plane of tensor dims ``dims`` (about spatial ``axis``)."""

    axis: str | None  # "D", "H", "W" (the axis rotated about) or None for the identity
    k: int
    dims: tuple[int, int]


_PLANES = {"D": (3, 4), "H": (2, 4), "W": (2, 3)}  # plane of (B, C, D, H, W) dims orthogonal to the axis
ROTATIONS_3D: tuple[Rotation3D, ...] = (Rotation3D(None, 0, (3, 4)),) + tuple(
    Rotation3D(axis, k, _PLANES[axis]) for axis in ("D", "H", "W") for k in (1, 2, 3)
)
NUM_ROTATIONS_2D = 4
NUM_ROTATIONS_3D = len(ROTATIONS_3D)


def _as_labels(idx: int | torch.Tensor, batch: int, num: int, device: torch.device) -> torch.Tensor:
    labels = torch.as_tensor(idx, device=device, dtype=torch.long)
    if labels.dim() == 0:
        labels = labels.expand(batch)
    if labels.shape != (batch,):
        raise ValueError(f"expected one rotation index per sample ({batch}), got shape {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num):
        raise ValueError(f"rotation indices must be in [0, {num}), got {labels.tolist()}")
    return labels


def _rotate(x: torch.Tensor, labels: torch.Tensor, table: list[tuple[int, tuple[int, int]]]) -> torch.Tensor:
    out = x.clone()
    for i, (k, dims) in enumerate(table):
        sel = labels == i
        if k % 4 and bool(sel.any()):
            out[sel] = torch.rot90(x[sel], k, dims)
    return out


def rotate_2d(x: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
    """Rotate ``(B, C, H, W)`` by ``k * 90`` degrees (``torch.rot90`` convention), per sample.

    ``k`` is an int or a ``(B,)`` tensor in ``0..3``.
    """
    if x.dim() != 4:
        raise ValueError(f"rotate_2d expects (B, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[-1] != x.shape[-2]:
        raise ConfigError(
            f"2D rotation needs square images, got {tuple(x.shape[-2:])}", "resize or crop to a square size"
        )
    labels = _as_labels(k, x.shape[0], NUM_ROTATIONS_2D, x.device)
    return _rotate(x, labels, [(k, (2, 3)) for k in range(NUM_ROTATIONS_2D)])


def rotate_3d(x: torch.Tensor, idx: int | torch.Tensor) -> torch.Tensor:
    """Apply ``ROTATIONS_3D[idx]`` to ``(B, C, D, H, W)``, per sample (``idx`` in ``0..9``)."""
    if x.dim() != 5:
        raise ValueError(f"rotate_3d expects (B, C, D, H, W), got shape {tuple(x.shape)}")
    if len(set(x.shape[2:])) != 1:
        raise ConfigError(
            f"3D rotation needs cubic volumes, got {tuple(x.shape[2:])}", "resize or crop to a cubic size"
        )
    labels = _as_labels(idx, x.shape[0], NUM_ROTATIONS_3D, x.device)
    return _rotate(x, labels, [(r.k, r.dims) for r in ROTATIONS_3D])


def inverse_rotation_3d(idx: int | torch.Tensor) -> int | torch.Tensor:
    """Index of the rotation undoing ``ROTATIONS_3D[idx]`` (same axis, ``4 - k`` quarter turns)."""
    inv = torch.tensor([0] + [1 + 3 * a + (2 - j) for a in range(3) for j in range(3)])
    if isinstance(idx, torch.Tensor):
        return inv.to(idx.device)[idx]
    return int(inv[idx])


def random_rotation(
    x: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each sample by a uniformly drawn class; returns ``(rotated, labels)``.

    2D inputs get one of 4 classes, 3D inputs one of 10.
    """
    if x.dim() not in (4, 5):
        raise ValueError(f"expected (B, C, H, W) or (B, C, D, H, W), got shape {tuple(x.shape)}")
    num = NUM_ROTATIONS_2D if x.dim() == 4 else NUM_ROTATIONS_3D
    dev = generator.device if generator is not None else x.device
    labels = torch.randint(num, (x.shape[0],), generator=generator, device=dev).to(x.device)
    return (rotate_2d(x, labels) if x.dim() == 4 else rotate_3d(x, labels)), labels
