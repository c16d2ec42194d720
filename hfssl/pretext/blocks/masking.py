"""Masking blocks: MAE's per-sample random token masking (He et al. 2022), patchify helpers
for MAE's pixel targets, and the per-cube masking of Rubik's cube+ (Zhu et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import _rng


def random_masking(
    tokens: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep a random ``1 - mask_ratio`` subset of tokens per sample, as in the MAE reference.

    ``tokens`` is ``(B, L, D)``. Returns ``(kept (B, L_keep, D), mask (B, L), ids_restore (B, L))``
    where ``mask`` is 1 for removed tokens and 0 for kept ones, in the original order, and
    ``ids_restore`` un-shuffles ``[kept, mask tokens]`` back to the original order
    (:func:`restore_tokens`).
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ConfigError(f"mask_ratio must be in [0, 1), got {mask_ratio}", "MAE uses 0.75")
    if tokens.dim() != 3:
        raise ValueError(f"tokens must be (B, L, D), got shape {tuple(tokens.shape)}")
    b, length, dim = tokens.shape
    len_keep = int(length * (1 - mask_ratio))
    noise = _rng.rand((b, length), generator, tokens.device)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small noise is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    kept = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))
    mask = torch.ones(b, length, device=tokens.device, dtype=tokens.dtype)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return kept, mask, ids_restore


def restore_tokens(kept: torch.Tensor, mask_token: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
    """Append ``mask_token`` (D,) for the removed tokens and undo the shuffle: ``(B, L, D)``."""
    b, len_keep, dim = kept.shape
    length = ids_restore.shape[1]
    fill = mask_token.to(kept.dtype).reshape(1, 1, dim).expand(b, length - len_keep, dim)
    full = torch.cat([kept, fill], dim=1)
    return torch.gather(full, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dim))


def _patch_sizes(x: torch.Tensor, patch_size: int | Sequence[int]) -> tuple[int, ...]:
    spatial = tuple(x.shape[2:])
    sizes = (patch_size,) * len(spatial) if isinstance(patch_size, int) else tuple(patch_size)
    if len(sizes) != len(spatial) or any(s % p for s, p in zip(spatial, sizes)):
        raise ConfigError(
            f"input size {spatial} is not divisible by patch size {sizes}",
            "pick an image size that is a multiple of the patch size",
        )
    return sizes


def patchify(x: torch.Tensor, patch_size: int | Sequence[int]) -> torch.Tensor:
    """``(B, C, *S)`` -> ``(B, L, prod(p) * C)`` in row-major patch order (MAE's pixel targets).

    Within a token the layout is ``(*p, C)`` as in the MAE reference.
    """
    sizes = _patch_sizes(x, patch_size)
    b, c = x.shape[:2]
    dims = len(sizes)
    grid = [s // p for s, p in zip(x.shape[2:], sizes)]
    shape = [b, c] + [v for g, p in zip(grid, sizes) for v in (g, p)]
    y = x.reshape(shape)
    # (B, C, g1, p1, g2, p2, ...) -> (B, g1, g2, ..., p1, p2, ..., C)
    perm = [0] + [2 + 2 * i for i in range(dims)] + [3 + 2 * i for i in range(dims)] + [1]
    return y.permute(perm).reshape(b, -1, int(torch.tensor(sizes).prod()) * c)


def unpatchify(tokens: torch.Tensor, patch_size: int | Sequence[int], spatial: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, L, prod(p) * C)`` -> ``(B, C, *spatial)``."""
    dims = len(spatial)
    sizes = (patch_size,) * dims if isinstance(patch_size, int) else tuple(patch_size)
    grid = [s // p for s, p in zip(spatial, sizes)]
    b = tokens.shape[0]
    c = tokens.shape[-1] // int(torch.tensor(sizes).prod())
    y = tokens.reshape(b, *grid, *sizes, c)
    perm = [0, 2 * dims + 1] + [v for i in range(dims) for v in (1 + i, 1 + dims + i)]
    return y.permute(perm).reshape(b, c, *spatial)


def cube_masking(
    cubes: torch.Tensor,
    prob: float = 0.5,
    ratio: tuple[float, float] = (0.25, 0.5),
    fill: str | float = "noise",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rubik's cube+ cube masking: each cube is masked with probability ``prob``.

    A masked cube gets a random sub-box (side ``ratio`` of the cube side, per dimension, at a
    random position) replaced by ``fill``: ``"noise"`` (uniform [0, 1)), ``"zero"`` or a
    constant. ``cubes`` is ``(B, T, C, *size)``. Returns ``(masked cubes, labels (B, T))``
    with label 1 for masked cubes.
    """
    if not 0.0 <= prob <= 1.0:
        raise ConfigError(f"mask prob must be in [0, 1], got {prob}", "use e.g. 0.5")
    if not 0.0 < ratio[0] <= ratio[1] <= 1.0:
        raise ConfigError(
            f"mask ratio range must satisfy 0 < lo <= hi <= 1, got {ratio}", "use e.g. (0.25, 0.5)"
        )
    b, t = cubes.shape[:2]
    size = cubes.shape[3:]
    dims = len(size)
    dev = cubes.device
    labels = _rng.bernoulli(prob, (b, t), generator, dev)
    side = torch.tensor(size, device=dev)
    frac = ratio[0] + (ratio[1] - ratio[0]) * _rng.rand((b, t, dims), generator, dev)
    extent = (frac * side).round().long().clamp(min=1)
    lo = _rng.randint(0, side - extent, (b, t, dims), generator, dev)
    hit = labels.view(b, t, *([1] * dims))
    for d in range(dims):
        shape = [1] * dims
        shape[d] = size[d]
        coord = torch.arange(size[d], device=dev).view(1, 1, *shape)
        lo_d = lo[..., d].view(b, t, *([1] * dims))
        hit = hit & (coord >= lo_d) & (coord < lo_d + extent[..., d].view(b, t, *([1] * dims)))
    hit = hit.unsqueeze(2)  # broadcast over channels
    if fill == "noise":
        value = _rng.rand(cubes.shape, generator, dev).to(cubes.dtype)
    elif fill == "zero":
        value = torch.zeros((), dtype=cubes.dtype, device=dev)
    elif isinstance(fill, (int, float)):
        value = torch.full((), float(fill), dtype=cubes.dtype, device=dev)
    else:
        raise ConfigError(f"unknown mask fill {fill!r}", "use 'noise', 'zero' or a number")
    return torch.where(hit, value, cubes), labels.long()
