"""Batched grid cutting for the context-based pretext tasks (RPL, Jigsaw, Rubik's cube).

An image ``(B, C, H, W)`` or volume ``(B, C, D, H, W)`` is divided into ``grid**dims``
cells (row-major order over (D,) H, W). From each cell one patch is cut, smaller than the
cell by ``gap + jitter`` pixels per dimension, and shifted inside its cell by a random
per-sample, per-tile ``jitter`` offset; the leftover ``L % grid`` pixels become a random
per-sample global shift. Consequently neighbouring patches are always at least ``gap``
pixels apart (they never touch) and their relative offsets vary between samples, so a
network cannot solve the task by matching edges or constant offsets (Doersch et al. 2015,
Noroozi & Favaro 2016).

Label conventions (exact, tested):

* :func:`rpl_pairs` -- ``label`` in ``0..T-2`` indexes the non-centre positions in
  row-major order: position ``label + (label >= centre)``.
* :func:`jigsaw_tiles` / :func:`rubik_cubes` -- ``out[:, i] = tiles[:, perms[label, i]]``, so
  ``out[:, argsort(perms[label])]`` restores the original order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import _rng
from hfssl.pretext.blocks.masking import cube_masking


def _spatial(x: torch.Tensor) -> tuple[int, ...]:
    if x.dim() not in (4, 5):
        raise ValueError(f"expected (B, C, H, W) or (B, C, D, H, W), got shape {tuple(x.shape)}")
    return tuple(x.shape[2:])


def patch_geometry(
    spatial: Sequence[int], grid: int = 3, gap: int | None = None, jitter: int | None = None
) -> tuple[tuple[int, ...], int, int]:
    """Return ``(patch_size, gap, jitter)`` for an input of spatial size ``spatial``.

    Defaults: ``gap = jitter = max(1, cell // 10)`` where ``cell = min(L) // grid``.
    """
    if grid < 1:
        raise ConfigError(f"grid must be >= 1, got {grid}", "use e.g. 3 (RPL/Jigsaw) or 2 (3D cubes)")
    cells = [s // grid for s in spatial]
    auto = max(1, min(cells) // 10)
    gap = auto if gap is None else int(gap)
    jitter = auto if jitter is None else int(jitter)
    if gap < 0 or jitter < 0:
        raise ConfigError(
            f"gap and jitter must be >= 0, got gap={gap} jitter={jitter}", "use small pixel counts"
        )
    size = tuple(c - gap - jitter for c in cells)
    if min(size) < 1:
        raise ConfigError(
            f"input {tuple(spatial)} is too small for a {grid}-grid with gap={gap} and jitter={jitter}",
            "use larger images, a smaller grid, or smaller gap/jitter",
        )
    return size, gap, jitter


def grid_patch_starts(
    spatial: Sequence[int],
    batch: int,
    grid: int = 3,
    gap: int | None = None,
    jitter: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Random patch corners ``(B, grid**dims, dims)`` (long) and the patch size."""
    size, gap, jitter = patch_geometry(spatial, grid, gap, jitter)
    dims = len(spatial)
    cells = torch.tensor([s // grid for s in spatial], device=device)
    leftover = torch.tensor([s - grid * (s // grid) for s in spatial], device=device)
    # cell index of every tile, row-major: (T, dims)
    index = torch.cartesian_prod(*[torch.arange(grid, device=device)] * dims).reshape(-1, dims)
    shift = _rng.randint(0, leftover, (batch, 1, dims), generator, device)  # per-sample global shift
    offset = _rng.randint(0, jitter, (batch, index.shape[0], dims), generator, device)  # per-tile jitter
    starts = shift + index * cells + gap // 2 + offset
    return starts, size


def extract_patches(x: torch.Tensor, starts: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Cut patches of ``size`` at ``starts`` ``(B, T, dims)``; returns ``(B, T, C, *size)``.

    One advanced-indexing gather for the whole batch (no Python loop over samples/tiles).
    """
    spatial = _spatial(x)
    b, t, dims = starts.shape
    if dims != len(spatial) or len(size) != dims or b != x.shape[0]:
        raise ValueError(
            f"starts {tuple(starts.shape)} / size {tuple(size)} do not fit input {tuple(x.shape)}"
        )
    limit = torch.tensor([s - p for s, p in zip(spatial, size)], device=starts.device)
    if bool((starts < 0).any()) or bool((starts > limit).any()):
        raise ValueError("patch corners fall outside the input")
    ones = [1] * dims
    index: list[torch.Tensor] = [torch.arange(b, device=x.device).view(b, 1, *ones)]
    for d in range(dims):
        shape = list(ones)
        shape[d] = size[d]
        steps = torch.arange(size[d], device=x.device).view(1, 1, *shape)
        index.append(starts[..., d].to(x.device).view(b, t, *ones) + steps)
    return x.movedim(1, -1)[tuple(index)].movedim(-1, 2)  # (B, T, *size, C) -> (B, T, C, *size)


def grid_patches(
    x: torch.Tensor,
    grid: int = 3,
    gap: int | None = None,
    jitter: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """All ``grid**dims`` jittered, non-touching patches: ``(B, grid**dims, C, *patch_size)``."""
    starts, size = grid_patch_starts(_spatial(x), x.shape[0], grid, gap, jitter, generator, x.device)
    return extract_patches(x, starts, size)


def rpl_pairs(
    x: torch.Tensor,
    grid: int = 3,
    gap: int | None = None,
    jitter: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Relative patch location pairs: ``(centre, other, label)``.

    ``centre`` and ``other`` are ``(B, C, *patch_size)``; ``label`` ``(B,)`` is in ``0..7``
    (2D, 3x3) or ``0..25`` (3D, 3x3x3) and names the position of ``other`` relative to the
    centre (see the module docstring).
    """
    spatial = _spatial(x)
    if grid % 2 == 0:
        raise ConfigError(
            f"relative patch location needs an odd grid (a centre patch), got {grid}", "use grid=3"
        )
    starts, size = grid_patch_starts(spatial, x.shape[0], grid, gap, jitter, generator, x.device)
    num_tiles = starts.shape[1]
    centre = (num_tiles - 1) // 2
    label = _rng.randint(0, num_tiles - 2, (x.shape[0],), generator, x.device)
    position = label + (label >= centre).long()
    pair_idx = torch.stack([torch.full_like(position, centre), position], dim=1)  # (B, 2)
    pair_starts = torch.gather(starts, 1, pair_idx[..., None].expand(-1, -1, starts.shape[-1]))
    pair = extract_patches(x, pair_starts, size)
    return pair[:, 0], pair[:, 1], label


def _grid_for(num_tiles: int, dims: int) -> int:
    grid = round(num_tiles ** (1.0 / dims))
    if grid**dims != num_tiles:
        raise ConfigError(
            f"{num_tiles} tiles do not form a {dims}D grid",
            "use permutations of 4 or 9 tiles for 2D, 8 or 27 for 3D",
        )
    return grid


def permute_tiles(tiles: torch.Tensor, perms: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``out[:, i] = tiles[:, perms[labels, i]]`` for ``tiles`` ``(B, T, ...)``."""
    order = perms.to(tiles.device)[labels]  # (B, T)
    view = order.view(*order.shape, *([1] * (tiles.dim() - 2))).expand_as(tiles)
    return torch.gather(tiles, 1, view)


def jigsaw_tiles(
    x: torch.Tensor,
    perms: torch.Tensor,
    gap: int | None = None,
    jitter: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a grid of tiles and shuffle them by a random member of ``perms`` ``(P, T)``.

    The grid is ``T ** (1 / dims)`` (3x3 for 9 tiles in 2D, 2x2x2 for 8 cubes in 3D).
    Returns ``(tiles (B, T, C, *patch_size), labels (B,) in 0..P-1)``.
    """
    spatial = _spatial(x)
    grid = _grid_for(perms.shape[1], len(spatial))
    tiles = grid_patches(x, grid, gap, jitter, generator)
    labels = _rng.randint(0, perms.shape[0] - 1, (x.shape[0],), generator, x.device)
    return permute_tiles(tiles, perms, labels), labels


class RubikCubes(NamedTuple):
    """Output of :func:`rubik_cubes`; per-cube labels refer to the *shuffled* slots."""

    cubes: torch.Tensor  # (B, T, C, *size) shuffled, rotated (and masked) cubes
    order: torch.Tensor  # (B,) index into the permutation set
    hrot: torch.Tensor  # (B, T) 1 = rotated 180 degrees about the vertical axis (horizontal rotation)
    vrot: torch.Tensor  # (B, T) 1 = rotated 180 degrees about a horizontal axis (vertical rotation)
    mask: torch.Tensor | None  # (B, T) 1 = cube was masked (RKB+), None when masking is off


def rotate_cubes(cubes: torch.Tensor, hrot: torch.Tensor, vrot: torch.Tensor) -> torch.Tensor:
    """Apply the Rubik's-cube 180-degree rotations per cube (each is its own inverse).

    3D cubes ``(B, T, C, D, H, W)``: horizontal = 180 degrees in the axial (H, W) plane, i.e.
    about the D axis; vertical = 180 degrees in the (D, H) plane, about the W axis. For 2D tiles
    ``(B, T, C, H, W)`` the out-of-plane 180-degree turns reduce to mirrors: horizontal flips W,
    vertical flips H.
    """
    dims_h, dims_v = ((-2, -1), (-3, -2)) if cubes.dim() == 6 else ((-1,), (-2,))
    shape = (*hrot.shape, *([1] * (cubes.dim() - 2)))
    out = torch.where(hrot.bool().view(shape), cubes.flip(dims_h), cubes)
    return torch.where(vrot.bool().view(shape), out.flip(dims_v), out)


def rubik_cubes(
    x: torch.Tensor,
    perms: torch.Tensor,
    rotate_prob: float = 0.5,
    mask_prob: float | None = None,
    gap: int | None = None,
    jitter: int | None = None,
    generator: torch.Generator | None = None,
) -> RubikCubes:
    """Rubik's cube (Zhuang et al. 2019) / Rubik's cube+ (Zhu et al. 2020) views and labels.

    Cuts ``T = perms.shape[1]`` cubes (2x2x2 for 8), shuffles them by a random member of
    ``perms``, then rotates each cube with probability ``rotate_prob`` by 180 degrees either
    horizontally or vertically (equally likely, never both), and, with ``mask_prob`` set
    (RKB+), masks each cube with that probability (:func:`cube_masking`).
    """
    if not 0.0 <= rotate_prob <= 1.0:
        raise ConfigError(f"rotate_prob must be in [0, 1], got {rotate_prob}", "use e.g. 0.5")
    cubes, order = jigsaw_tiles(x, perms, gap, jitter, generator)
    b, t = cubes.shape[:2]
    rotated = _rng.bernoulli(rotate_prob, (b, t), generator, x.device)
    horizontal = _rng.bernoulli(0.5, (b, t), generator, x.device)
    hrot = (rotated & horizontal).long()
    vrot = (rotated & ~horizontal).long()
    cubes = rotate_cubes(cubes, hrot, vrot)
    mask = None
    if mask_prob is not None:
        cubes, mask = cube_masking(cubes, prob=mask_prob, generator=generator)
    return RubikCubes(cubes, order, hrot, vrot, mask)
