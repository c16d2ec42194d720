"""Models Genesis transforms (Zhou et al. 2019/2021), batched, 2D and 3D, seedable.

Each transform takes ``x`` ``(B, C, H, W)`` or ``(B, C, D, H, W)`` with values in [0, 1],
decides per sample with probability ``p`` whether to act, and returns a new tensor in
[0, 1]. :func:`models_genesis_transform` chains them as the reference ``generate_pair``:
flip (input and target), local pixel shuffling (p .5), non-linear intensity (p .9), then
in-/out-painting (p .9; outpainting .8, inpainting .2). The network restores the target
(the flipped original) from the transformed input with an MSE loss.

Randomness comes from the optional ``generator`` (drawn on its device), so a seed fixes
the views. Shapes follow the reference: in-painting boxes are 1/6..1/3 of each side, out-
painting keeps boxes of 3/7..4/7 of each side, local shuffling windows are up to 1/10 of
each side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import _rng


@dataclass(frozen=True)
class GenesisConfig:
    """Per-sample probabilities of the Models Genesis reference configuration."""

    flip_rate: float = 0.4
    local_rate: float = 0.5
    nonlinear_rate: float = 0.9
    paint_rate: float = 0.9
    outpaint_rate: float = 0.8  # in-painting is chosen with 1 - outpaint_rate

    def __post_init__(self) -> None:
        for name in ("flip_rate", "local_rate", "nonlinear_rate", "paint_rate", "outpaint_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(
                    f"Models Genesis {name} must be in [0, 1], got {value}", "use a probability"
                )


def _check(x: torch.Tensor, p: float) -> None:
    if x.dim() not in (4, 5) or not x.is_floating_point():
        raise ValueError(
            f"expected a float (B, C, H, W) or (B, C, D, H, W) tensor, got {x.dtype} {tuple(x.shape)}"
        )
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"probability must be in [0, 1], got {p}", "use a probability")


def _apply_to_subset(
    x: torch.Tensor, p: float, fn: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator | None
) -> torch.Tensor:
    _check(x, p)
    selected = _rng.bernoulli(p, (x.shape[0],), generator, x.device)
    out = x.clone()
    if bool(selected.any()):
        out[selected] = fn(x[selected])
    return out


# ---------------------------------------------------------------- non-linear intensity


def _bezier_curves(batch: int, num: int, generator: torch.Generator | None, device: torch.device):
    """Cubic Bezier curves through (0,0), P1, P2, (1,1) with P1, P2 ~ U[0,1]^2, per sample.

    Follows the reference's Bernstein ordering (t=0 at (1,1)); returns x, y ``(B, num)``.
    """
    ctrl = _rng.rand((batch, 2, 2), generator, device)  # (B, point, xy)
    zeros = torch.zeros(batch, 1, 2, device=device)
    points = torch.cat([zeros, ctrl, torch.ones(batch, 1, 2, device=device)], dim=1)  # (B, 4, 2)
    t = torch.linspace(0.0, 1.0, num, device=device)
    basis = torch.stack([math.comb(3, i) * t ** (3 - i) * (1 - t) ** i for i in range(4)])  # (4, num)
    curve = torch.einsum("bpk,pn->bkn", points, basis)
    return curve[:, 0], curve[:, 1]


def _interp(v: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Batched ``np.interp``: ``v`` (B, M), increasing ``xp`` and ``fp`` (B, N). torch has no interp."""
    n = xp.shape[1]
    idx = torch.searchsorted(xp, v.contiguous()).clamp(1, n - 1)
    x0, x1 = xp.gather(1, idx - 1), xp.gather(1, idx)
    y0, y1 = fp.gather(1, idx - 1), fp.gather(1, idx)
    w = ((v - x0) / (x1 - x0).clamp(min=1e-12)).clamp(0.0, 1.0)
    return y0 + w * (y1 - y0)


def bezier_nonlinear(
    x: torch.Tensor,
    p: float = 0.9,
    generator: torch.Generator | None = None,
    num_points: int = 1000,
    lut_size: int = 1024,
) -> torch.Tensor:
    """Monotone random intensity mapping by a cubic Bezier curve; half of the time inverting.

    The curve (``num_points`` samples) is turned into a ``lut_size``-entry lookup table per
    sample, which is then linearly interpolated per pixel: ~10x faster than a per-pixel
    ``searchsorted`` on large 3D batches, with an error below 1e-3 for smooth curves.
    """

    def fn(sub: torch.Tensor) -> torch.Tensor:
        b = sub.shape[0]
        xs, ys = _bezier_curves(b, num_points, generator, sub.device)
        xs = xs.sort(dim=1).values
        increasing = _rng.bernoulli(0.5, (b, 1), generator, sub.device)
        # reference: sort x only (intensity inversion) or x and y (increasing map)
        ys = torch.where(increasing, ys.sort(dim=1).values, ys)
        grid = torch.linspace(0.0, 1.0, lut_size, device=sub.device).expand(b, lut_size)
        lut = _interp(grid, xs, ys)  # (B, lut_size): the mapping at evenly spaced intensities
        pos = sub.clamp(0.0, 1.0).reshape(b, -1).float() * (lut_size - 1)
        i0 = pos.floor().long().clamp(max=lut_size - 2)
        y0, y1 = lut.gather(1, i0), lut.gather(1, i0 + 1)
        out = y0 + (pos - i0) * (y1 - y0)
        return out.clamp(0.0, 1.0).reshape(sub.shape).to(sub.dtype)

    return _apply_to_subset(x, p, fn, generator)


# ---------------------------------------------------------------- local pixel shuffling


def _shuffle_round(x: torch.Tensor, block_prob: float, generator: torch.Generator | None) -> torch.Tensor:
    b, c = x.shape[:2]
    spatial = list(x.shape[2:])
    dims = len(spatial)
    sizes = [int(_rng.randint(1, max(2, s // 10), (), generator)) for s in spatial]
    if math.prod(sizes) < 2:  # a 1-pixel window cannot shuffle anything
        sizes[spatial.index(max(spatial))] = 2
    offsets = [int(_rng.randint(0, k - 1, (), generator)) for k in sizes]
    counts = [(s - o) // k for s, o, k in zip(spatial, offsets, sizes)]
    region = (slice(None), slice(None)) + tuple(
        slice(o, o + n * k) for o, n, k in zip(offsets, counts, sizes)
    )
    blocks = x[region].reshape(b, c, *[v for n, k in zip(counts, sizes) for v in (n, k)])
    to_blocks = [0, 1] + [2 + 2 * i for i in range(dims)] + [3 + 2 * i for i in range(dims)]
    blocks = blocks.permute(to_blocks)  # (B, C, n..., k...)
    num, vol = math.prod(counts), math.prod(sizes)
    flat = blocks.reshape(b, c, num, vol)
    keys = _rng.rand((b, 1, num, vol), generator, x.device)
    keep = ~_rng.bernoulli(block_prob, (b, 1, num, 1), generator, x.device)
    # identity keys for untouched windows; one permutation per window shared by all channels
    keys = torch.where(keep, torch.arange(vol, device=x.device, dtype=keys.dtype) / vol, keys)
    order = keys.argsort(dim=-1).expand(b, c, num, vol)
    shuffled = flat.gather(-1, order).reshape(blocks.shape)
    out = x.clone()
    out[region] = shuffled.permute(torch.argsort(torch.tensor(to_blocks)).tolist()).reshape(x[region].shape)
    return out


def local_pixel_shuffle(
    x: torch.Tensor,
    p: float = 0.5,
    generator: torch.Generator | None = None,
    rounds: int = 2,
    block_prob: float = 0.5,
) -> torch.Tensor:
    """Shuffle pixels inside small random windows (texture destroyed, global shape kept).

    Vectorised version of the reference's 10,000 sequential windows: in each of ``rounds``
    rounds a window size (1..L/10 per side, at least 2 pixels) and a grid offset are drawn,
    the image is tiled into such windows, and each window is shuffled with ``block_prob``
    (one permutation per window for all channels).
    """

    def fn(sub: torch.Tensor) -> torch.Tensor:
        for _ in range(rounds):
            sub = _shuffle_round(sub, block_prob, generator)
        return sub

    return _apply_to_subset(x, p, fn, generator)


# ---------------------------------------------------------------- in-/out-painting


def _box_union(
    lo: torch.Tensor, extent: torch.Tensor, active: torch.Tensor, spatial: list[int]
) -> torch.Tensor:
    """Union of boxes ``lo/extent`` ``(B, K, dims)`` with ``active`` ``(B, K)`` -> ``(B, 1, *spatial)``."""
    b, k, dims = lo.shape
    ones = [1] * dims
    inside = active.view(b, k, *ones)
    for d in range(dims):
        shape = list(ones)
        shape[d] = spatial[d]
        coord = torch.arange(spatial[d], device=lo.device).view(1, 1, *shape)
        lo_d = lo[..., d].view(b, k, *ones)
        inside = inside & (coord >= lo_d) & (coord < lo_d + extent[..., d].view(b, k, *ones))
    return inside.any(dim=1, keepdim=True)


def _random_boxes(
    b: int, k: int, spatial: list[int], lo_frac: tuple[int, int], hi_frac: tuple[int, int], generator, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes with side in ``[L*lo_frac, L*hi_frac]`` (integer fractions ``num // den``), kept 3 px off the border."""
    side = torch.tensor(spatial, device=device)
    ext_lo = (side * lo_frac[0] // lo_frac[1]).clamp(min=1)
    ext_hi = torch.maximum(side * hi_frac[0] // hi_frac[1], ext_lo)
    extent = _rng.randint(ext_lo, ext_hi, (b, k, len(spatial)), generator, device)
    start_lo = torch.full_like(extent, 3)
    start_hi = side - extent - 3
    small = start_hi < start_lo  # too small for the 3-pixel margin: use the full range
    start_lo = torch.where(small, torch.zeros_like(start_lo), start_lo)
    start_hi = torch.where(small, side - extent, start_hi)
    return _rng.randint(start_lo, start_hi, extent.shape, generator, device), extent


def _geometric_active(b: int, k: int, q: float, first_always: bool, generator, device) -> torch.Tensor:
    """``while cnt > 0 and random() < q``: box ``i`` is active if the first ``i + 1`` draws succeed."""
    draws = _rng.bernoulli(q, (b, k), generator, device)
    if first_always:
        draws[:, 0] = True
    return draws.long().cumprod(dim=1).bool()


def in_painting(x: torch.Tensor, p: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace up to 5 random boxes (1/6..1/3 of each side) with uniform noise."""

    def fn(sub: torch.Tensor) -> torch.Tensor:
        b, spatial = sub.shape[0], list(sub.shape[2:])
        lo, extent = _random_boxes(b, 5, spatial, (1, 6), (1, 3), generator, sub.device)
        active = _geometric_active(b, 5, 0.95, False, generator, sub.device)
        noise = _rng.rand(sub.shape, generator, sub.device).to(sub.dtype)
        return torch.where(_box_union(lo, extent, active, spatial), noise, sub)

    return _apply_to_subset(x, p, fn, generator)


def out_painting(x: torch.Tensor, p: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace everything but 1-5 random boxes (3/7..4/7 of each side) with uniform noise."""

    def fn(sub: torch.Tensor) -> torch.Tensor:
        b, spatial = sub.shape[0], list(sub.shape[2:])
        lo, extent = _random_boxes(b, 5, spatial, (3, 7), (4, 7), generator, sub.device)
        active = _geometric_active(b, 5, 0.95, True, generator, sub.device)
        noise = _rng.rand(sub.shape, generator, sub.device).to(sub.dtype)
        return torch.where(_box_union(lo, extent, active, spatial), sub, noise)

    return _apply_to_subset(x, p, fn, generator)


# ---------------------------------------------------------------- flip and the full chain


def random_flip(
    x: torch.Tensor,
    p: float = 0.4,
    generator: torch.Generator | None = None,
    target: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Reference flip augmentation: up to 3 flips of random spatial axes, each continuing with ``p``.

    The same flips are applied to ``target`` (flip is an augmentation, not a corruption).
    Returns ``(x, target)``.
    """
    _check(x, p)
    b, dims = x.shape[0], x.dim() - 2
    active = _geometric_active(b, 3, p, False, generator, x.device)  # (B, 3)
    axes = _rng.randint(0, dims - 1, (b, 3), generator, x.device)
    shape = (b,) + (1,) * (x.dim() - 1)
    for d in range(dims):
        odd = ((active & (axes == d)).sum(dim=1) % 2 == 1).view(shape)
        x = torch.where(odd, x.flip(2 + d), x)
        if target is not None:
            target = torch.where(odd, target.flip(2 + d), target)
    return x, target


def models_genesis_transform(
    x: torch.Tensor, cfg: GenesisConfig | None = None, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Models Genesis pair ``(transformed input, restoration target)`` for a batch."""
    cfg = cfg or GenesisConfig()
    _check(x, 0.0)
    flipped, target = random_flip(x, cfg.flip_rate, generator, target=x.clone())
    assert target is not None
    out = local_pixel_shuffle(flipped, cfg.local_rate, generator)
    out = bezier_nonlinear(out, cfg.nonlinear_rate, generator)
    paint = _rng.bernoulli(cfg.paint_rate, (x.shape[0],), generator, x.device)
    outpaint = _rng.bernoulli(cfg.outpaint_rate, (x.shape[0],), generator, x.device)
    for sel, op in ((paint & ~outpaint, in_painting), (paint & outpaint, out_painting)):
        if bool(sel.any()):
            out[sel] = op(out[sel], 1.0, generator)
    return out, target
