"""Batched views and augmentations for grey-scale medical images, 2D and 3D.

Every transform takes a whole batch — a float tensor ``(B, C, H, W)`` or ``(B, C, D, H, W)`` in
[0, 1], on any device — and draws independent random parameters per sample::

    aug = get_augmentation("S3", spatial_dims=2, seed=0)
    images = aug(images)                      # or: images, masks = aug(images, masks)
    v1, v2 = ContrastiveViews(spatial_dims=3, seed=0)(volumes)

Geometric transforms (flip, rot90, rotation, scaling, resized crop) apply the *same* transform to
``masks`` (segmentation targets, any dtype, nearest interpolation, so 0/1 masks stay 0/1);
intensity transforms (blur, noise) leave masks alone. No colour jitter: the data are grey-scale.

Randomness: each transform has a probability ``p`` (the chance that a sample is changed at all) and
a ``seed`` (an int or a CPU ``torch.Generator``; ``None`` uses torch's global RNG). A ``Compose``
passes its own generator down, and ``generator=`` at call time overrides both. Per-sample
parameters are drawn on the CPU (a few numbers per sample), so results are the same on every
device for a seed; only Gaussian noise is drawn on the images' device, from a generator seeded by
the CPU stream.

Why own batched code rather than MONAI or torchvision: MONAI's ``Rand*d`` transforms and
torchvision's v2 transforms work per sample (one Python call, one small kernel and, for MONAI, a
dictionary and metadata per image), which is the wrong shape for a pretext method that re-augments
every batch on the GPU. Here rotation, scaling and cropping are one ``affine_grid`` + ``grid_sample``
call for all selected samples (2D and 3D alike), flips and 90° rotations are indexed ``torch.flip`` /
``torch.rot90`` on sub-batches, and blur is one grouped separable convolution: one kernel per
batch instead of one Python call and kernel per image (``benchmarks/data_throughput.py`` compares
it with a loop of ``torchvision.transforms.v2.functional.rotate`` calls); on a GPU per-sample calls
are dominated by launch overhead, so batching matters even more there. MONAI is also not a
dependency.

The paper's augmentation ladder (Zhang, Zheng, Gu 2023, Aug-S1..Aug-S6) is ``get_augmentation(name)``:

====  ===================================================================
S1    flip (p 0.5)
S2    rot90 (p 0.5)
S3    flip (0.5) + rotation ±10° (p 0.3)
S4    rot90 (0.5) + rotation ±20° (p 0.3)
S5    flip (0.5) + rot90 (0.5) + rotation ±30° (p 0.6)
S6    S5 + scaling 0.8–1.2 (p 0.4)
none  identity
====  ===================================================================

"flip (p)" flips a sample with probability ``p`` along one spatial axis chosen uniformly; "rot90
(p)" rotates it with probability ``p`` by 90°, 180° or 270° (3D: about one of the three axes, chosen
uniformly among those whose rotation plane is square).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from hfssl.errors import ConfigError

__all__ = [
    "AUGMENTATION_PRESETS",
    "BatchTransform",
    "Compose",
    "ContrastiveViews",
    "RandomBrightnessContrast",
    "RandomFlip",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "RandomResizedCrop",
    "RandomRot90",
    "RandomRotation",
    "RandomScale",
    "get_augmentation",
]

SeedLike = int | torch.Generator | None


def _make_generator(seed: SeedLike) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed {seed!r} is not an int or torch.Generator", "pass an int seed, e.g. seed=0")
    return torch.Generator().manual_seed(seed)


def _check_p(p: float, name: str = "p") -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise ConfigError(f"probability {name}={p} is outside [0, 1]", f"pass {name} between 0 and 1")
    return float(p)


def _check_range(value: float | Sequence[float], name: str, symmetric: bool = False) -> tuple[float, float]:
    """``(lo, hi)`` from a pair, or from one number (``(-v, v)`` if ``symmetric`` else ``(v, v)``)."""
    if isinstance(value, (int, float)):
        lo, hi = (-abs(float(value)), abs(float(value))) if symmetric else (float(value), float(value))
    else:
        if len(value) != 2:
            raise ConfigError(
                f"{name}={value!r} must be a number or a (low, high) pair", f"e.g. {name}=(0.8, 1.2)"
            )
        lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise ConfigError(f"{name}=({lo}, {hi}) has low > high", f"swap the two values of {name}")
    return lo, hi


def _check_batch(images: torch.Tensor, masks: torch.Tensor | None) -> int:
    """Spatial dims of a valid batch (2 or 3)."""
    if not isinstance(images, torch.Tensor) or images.ndim not in (4, 5):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(
            f"augmentations take a batch (B, C, H, W) or (B, C, D, H, W); got {shape}",
            "batch the images first (hfssl.data.torch_data.to_tensor_batch)",
        )
    if not images.is_floating_point():
        raise ConfigError(
            f"augmentations take float images in [0, 1]; got dtype {images.dtype}",
            "convert with hfssl.data.torch_data.to_tensor_batch (uint8 / 255)",
        )
    if masks is not None and (
        masks.ndim != images.ndim or masks.shape[0] != images.shape[0] or masks.shape[2:] != images.shape[2:]
    ):
        raise ConfigError(
            f"masks of shape {tuple(masks.shape)} do not match images of shape {tuple(images.shape)}",
            "pass masks shaped (B, C_mask, *spatial) with the images' batch size and spatial size",
        )
    return images.ndim - 2


def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None, *extra: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand((n, *extra), generator=g, dtype=torch.float64)


class BatchTransform:
    """Base of the batched transforms: pick samples with probability ``p``, transform only those.

    Subclasses implement ``_sample(n, images, g)`` (per-sample parameters, drawn on CPU) and
    ``_apply(x, params, is_mask)`` on the selected sub-batch. ``geometric`` transforms are applied
    to masks too, with ``is_mask=True`` (nearest interpolation).
    """

    geometric = False

    def __init__(self, p: float, seed: SeedLike = None) -> None:
        self.p = _check_p(p)
        self.generator = _make_generator(seed)

    def _sample(self, n: int, images: torch.Tensor, g: torch.Generator | None) -> Any:
        raise NotImplementedError

    def _apply(self, x: torch.Tensor, params: Any, is_mask: bool) -> torch.Tensor:
        raise NotImplementedError

    def __call__(
        self,
        images: torch.Tensor,
        masks: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        _check_batch(images, masks)
        g = generator if generator is not None else self.generator
        out_images, out_masks = images, masks
        if self.p > 0:
            chosen = torch.rand(images.shape[0], generator=g) < self.p
            idx = chosen.nonzero().flatten()
            if idx.numel():
                params = self._sample(int(idx.numel()), images, g)
                out_images = self._put(images, idx, self._apply(images[idx.to(images.device)], params, False))
                if masks is not None and self.geometric:
                    sub = masks[idx.to(masks.device)]
                    out_masks = self._put(masks, idx, self._apply(sub, params, True))
        return out_images if masks is None else (out_images, out_masks)

    @staticmethod
    def _put(full: torch.Tensor, idx: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
        if idx.numel() == full.shape[0]:
            return part.to(full.dtype)
        return full.index_copy(0, idx.to(full.device), part.to(full.dtype))

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if k != "generator"}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


# ------------------------------------------------------------------------------ exact (index) ops


class RandomFlip(BatchTransform):
    """With probability ``p``, flip a sample along one spatial axis chosen uniformly from ``axes``.

    ``axes`` are spatial axis indices (2D: 0 = H, 1 = W; 3D: 0 = D, 1 = H, 2 = W); default all.
    """

    geometric = True

    def __init__(self, p: float = 0.5, axes: Sequence[int] | None = None, seed: SeedLike = None) -> None:
        super().__init__(p, seed)
        self.axes = tuple(axes) if axes is not None else None

    def _axes(self, spatial_dims: int) -> tuple[int, ...]:
        axes = self.axes if self.axes is not None else tuple(range(spatial_dims))
        if not axes or any(a not in range(spatial_dims) for a in axes):
            raise ConfigError(
                f"flip axes {axes} are not spatial axes of {spatial_dims}D images",
                f"use axes among {tuple(range(spatial_dims))}",
            )
        return axes

    def _sample(self, n: int, images: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        axes = self._axes(images.ndim - 2)
        return torch.tensor(axes)[torch.randint(len(axes), (n,), generator=g)]

    def _apply(self, x: torch.Tensor, params: torch.Tensor, is_mask: bool) -> torch.Tensor:
        out = torch.empty_like(x)
        for axis in params.unique().tolist():
            sel = (params == axis).nonzero().flatten().to(x.device)
            out[sel] = torch.flip(x[sel], dims=(axis + 2,))
        return out


# rotation axis (spatial index) -> the tensor dims of its rotation plane, for (B, C, D, H, W)
_ROT_PLANES_3D = {0: (3, 4), 1: (2, 4), 2: (2, 3)}


class RandomRot90(BatchTransform):
    """With probability ``p``, rotate a sample by ``k`` × 90°, ``k`` uniform in ``ks`` (default 1, 2, 3).

    2D: in the (H, W) plane. 3D: about one axis chosen uniformly from ``axes`` (0 = D, 1 = H, 2 = W;
    default: every axis whose rotation plane is square, since a batch must keep one shape). A
    rotation is ``torch.rot90`` (a true rotation: four quarter turns are the identity).
    """

    geometric = True

    def __init__(
        self,
        p: float = 0.5,
        axes: Sequence[int] | None = None,
        ks: Sequence[int] = (1, 2, 3),
        seed: SeedLike = None,
    ) -> None:
        super().__init__(p, seed)
        self.axes = tuple(axes) if axes is not None else None
        self.ks = tuple(int(k) for k in ks)
        if not self.ks:
            raise ConfigError("rot90 ks is empty", "pass ks=(1, 2, 3) or a non-empty subset")

    def _planes(self, images: torch.Tensor) -> dict[int, tuple[int, int]]:
        if images.ndim == 4:
            if self.axes not in (None, (0,)):
                raise ConfigError("2D rot90 has one rotation plane; axes must be None", "drop axes= for 2D")
            planes = {0: (2, 3)}
        else:
            wanted = self.axes if self.axes is not None else (0, 1, 2)
            if any(a not in _ROT_PLANES_3D for a in wanted):
                raise ConfigError(
                    f"rot90 axes {wanted} are not among 0, 1, 2", "use 3D axes 0 (D), 1 (H), 2 (W)"
                )
            planes = {a: _ROT_PLANES_3D[a] for a in wanted}
        square = {a: d for a, d in planes.items() if images.shape[d[0]] == images.shape[d[1]]}
        if (self.axes is not None and len(square) != len(planes)) or not square:
            raise ConfigError(
                f"rot90 needs square rotation planes; image shape {tuple(images.shape[2:])} has none for axes "
                f"{tuple(planes)}",
                "choose axes whose plane is square, or resize images to a cubic/square shape",
            )
        return square

    def _sample(self, n: int, images: torch.Tensor, g: torch.Generator | None) -> tuple:
        planes = self._planes(images)
        axes = torch.tensor(list(planes))
        axis = axes[torch.randint(len(axes), (n,), generator=g)]
        k = torch.tensor(self.ks)[torch.randint(len(self.ks), (n,), generator=g)]
        return planes, axis, k

    def _apply(self, x: torch.Tensor, params: tuple, is_mask: bool) -> torch.Tensor:
        planes, axis, k = params
        out = torch.empty_like(x)
        for a in axis.unique().tolist():
            for kk in k[axis == a].unique().tolist():
                sel = ((axis == a) & (k == kk)).nonzero().flatten().to(x.device)
                out[sel] = torch.rot90(x[sel], kk, dims=planes[a])
        return out


# ---------------------------------------------------------------------------- resampling (affine)


def _rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """2D: (n,) angles -> (n, 2, 2). 3D: (n, 3) Euler angles about x, y, z -> (n, 3, 3) = Rz Ry Rx."""
    if angles.ndim == 1:
        c, s = torch.cos(angles), torch.sin(angles)
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    n = angles.shape[0]
    cx, cy, cz = torch.cos(angles).unbind(-1)
    sx, sy, sz = torch.sin(angles).unbind(-1)
    one, zero = torch.ones(n, dtype=angles.dtype), torch.zeros(n, dtype=angles.dtype)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).view(n, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).view(n, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).view(n, 3, 3)
    return rz @ ry @ rx


def _resample(
    x: torch.Tensor,
    linear: torch.Tensor,
    translation: torch.Tensor | None,
    is_mask: bool,
    padding_mode: str,
    out_size: Sequence[int] | None = None,
) -> torch.Tensor:
    """Resample ``x`` (n, C, *S) so output pixel ``p`` reads input pixel ``linear @ p + t`` (centred,
    pixel units, axes in affine_grid order x = W, y = H, z = D); ``translation`` is in normalised units.

    The matrix is conjugated with the half-size scaling, so rotations stay rotations on non-square
    images. Masks use nearest interpolation and keep their dtype.
    """
    n, spatial = x.shape[0], x.shape[2:]
    sizes = torch.tensor(list(reversed(spatial)), dtype=torch.float64)  # (W, H[, D]) to match x, y, z
    theta_lin = linear / sizes.view(1, -1, 1) * sizes.view(1, 1, -1)  # S^-1 A S
    t = translation if translation is not None else torch.zeros(n, len(spatial), dtype=torch.float64)
    work = x if x.is_floating_point() else x.float()  # masks of any dtype: sample as float, cast back
    theta = torch.cat([theta_lin, t.unsqueeze(-1)], dim=-1).to(device=x.device, dtype=work.dtype)
    size = (n, x.shape[1], *(out_size if out_size is not None else spatial))
    grid = F.affine_grid(theta, list(size), align_corners=False)
    out = F.grid_sample(
        work, grid, mode="nearest" if is_mask else "bilinear", padding_mode=padding_mode, align_corners=False
    )
    return out.to(x.dtype)


_PADDING_MODES = ("zeros", "border", "reflection")


def _check_padding(padding_mode: str) -> str:
    if padding_mode not in _PADDING_MODES:
        raise ConfigError(
            f"padding_mode {padding_mode!r} is unknown", f"use one of {', '.join(_PADDING_MODES)}"
        )
    return padding_mode


class _AffineTransform(BatchTransform):
    """A transform that is one linear map about the image centre (rotation, scaling).

    ``Compose`` fuses consecutive ones into a single ``grid_sample`` per batch: one interpolation
    instead of several (S6's rotation + scaling: half the resampling time and no double blur). The
    random draws are the same as applying them one after the other.
    """

    geometric = True
    padding_mode = "zeros"

    def _linear(self, params: Any) -> torch.Tensor:
        """(n, d, d) sampling matrices (output pixel -> input pixel, affine_grid axis order)."""
        raise NotImplementedError

    def _apply(self, x: torch.Tensor, params: Any, is_mask: bool) -> torch.Tensor:
        return _resample(x, self._linear(params), None, is_mask, self.padding_mode)


def _apply_affine_run(
    run: Sequence[_AffineTransform],
    images: torch.Tensor,
    masks: torch.Tensor | None,
    g: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply consecutive affine transforms (same padding) as one resampling per sample."""
    n, dims = images.shape[0], images.ndim - 2
    total = torch.eye(dims, dtype=torch.float64).repeat(n, 1, 1)
    touched = torch.zeros(n, dtype=torch.bool)
    for op in run:  # same draw order as BatchTransform.__call__
        if op.p <= 0:
            continue
        chosen = torch.rand(n, generator=g) < op.p
        idx = chosen.nonzero().flatten()
        if idx.numel():
            # applying A1 then A2 samples the input at A1 @ A2 @ p
            total[idx] = total[idx] @ op._linear(op._sample(int(idx.numel()), images, g))
            touched |= chosen
    idx = touched.nonzero().flatten()
    if idx.numel():
        mode = run[0].padding_mode
        images = BatchTransform._put(
            images, idx, _resample(images[idx.to(images.device)], total[idx], None, False, mode)
        )
        if masks is not None:
            masks = BatchTransform._put(
                masks, idx, _resample(masks[idx.to(masks.device)], total[idx], None, True, mode)
            )
    return images, masks


class RandomRotation(_AffineTransform):
    """With probability ``p``, rotate by a random angle in ``degrees`` (a number d means ±d).

    2D: one angle. 3D: three independent angles about the D, H and W axes. Bilinear (trilinear)
    resampling; outside pixels follow ``padding_mode`` (``zeros``: black background).
    """

    geometric = True

    def __init__(
        self,
        degrees: float | Sequence[float] = 10.0,
        p: float = 0.5,
        padding_mode: str = "zeros",
        seed: SeedLike = None,
    ) -> None:
        super().__init__(p, seed)
        self.degrees = _check_range(degrees, "degrees", symmetric=True)
        self.padding_mode = _check_padding(padding_mode)

    def _sample(self, n: int, images: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        lo, hi = (math.radians(v) for v in self.degrees)
        return _uniform(n, lo, hi, g) if images.ndim == 4 else _uniform(n, lo, hi, g, 3)

    def _linear(self, params: torch.Tensor) -> torch.Tensor:
        return _rotation_matrix(params)


class RandomScale(_AffineTransform):
    """With probability ``p``, zoom by a factor in ``scale`` (> 1 enlarges), about the centre.

    ``isotropic=False`` draws one factor per spatial axis.
    """

    geometric = True

    def __init__(
        self,
        scale: float | Sequence[float] = (0.8, 1.2),
        p: float = 0.5,
        isotropic: bool = True,
        padding_mode: str = "zeros",
        seed: SeedLike = None,
    ) -> None:
        super().__init__(p, seed)
        self.scale = _check_range(scale, "scale")
        if self.scale[0] <= 0:
            raise ConfigError(f"scale {self.scale} must be positive", "e.g. scale=(0.8, 1.2)")
        self.isotropic = isotropic
        self.padding_mode = _check_padding(padding_mode)

    def _sample(self, n: int, images: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        dims = images.ndim - 2
        factors = _uniform(n, *self.scale, g, 1 if self.isotropic else dims)
        return factors.expand(n, dims)

    def _linear(self, params: torch.Tensor) -> torch.Tensor:
        return torch.diag_embed(1.0 / params)


class RandomResizedCrop(BatchTransform):
    """Crop a random box and resize it to ``size`` (default: the input size), like torchvision's
    ``RandomResizedCrop`` but batched and also 3D.

    The box covers a fraction of the area (volume) uniform in ``scale``; its aspect ratio
    (width/height; 3D: two log-uniform ratios) is log-uniform in ``ratio``; it lies inside the image.
    Samples not chosen (probability ``1 - p``) are kept whole (resized to ``size`` if it differs).
    """

    geometric = True

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        p: float = 1.0,
        seed: SeedLike = None,
    ) -> None:
        super().__init__(p, seed)
        self.size = size
        self.scale = _check_range(scale, "scale")
        self.ratio = _check_range(ratio, "ratio")
        if not (0 < self.scale[0] and self.scale[1] <= 1):
            raise ConfigError(f"crop scale {self.scale} must lie in (0, 1]", "e.g. scale=(0.2, 1.0)")
        if self.ratio[0] <= 0:
            raise ConfigError(f"crop ratio {self.ratio} must be positive", "e.g. ratio=(0.75, 1.333)")

    def _out_size(self, images: torch.Tensor) -> tuple[int, ...]:
        dims = images.ndim - 2
        if self.size is None:
            return tuple(images.shape[2:])
        size = (int(self.size),) * dims if isinstance(self.size, int) else tuple(int(s) for s in self.size)
        if len(size) != dims:
            raise ConfigError(
                f"crop size {self.size} does not fit {dims}D images", f"give {dims} sizes or one int"
            )
        return size

    def _sample(self, n: int, images: torch.Tensor, g: torch.Generator | None) -> tuple[torch.Tensor, ...]:
        dims = images.ndim - 2
        area = _uniform(n, *self.scale, g)
        log_r = _uniform(n, math.log(self.ratio[0]), math.log(self.ratio[1]), g, dims - 1)
        # side exponents sum to zero so the box keeps its area: 2D (r, 1/r) ** 0.5 like torchvision.
        expo = torch.cat([log_r, -log_r.sum(-1, keepdim=True)], -1) / 2
        rel = (area.unsqueeze(-1) ** (1.0 / dims) * torch.exp(expo)).clamp(max=1.0)  # (n, dims) in x, y, z
        centre = (torch.rand((n, dims), generator=g, dtype=torch.float64) * 2 - 1) * (1 - rel)
        return rel, centre

    def __call__(self, images, masks=None, *, generator=None):  # type: ignore[override]
        out_size = self._out_size(images)
        if out_size == tuple(images.shape[2:]):
            return super().__call__(images, masks, generator=generator)
        # A new size: every sample is resampled; unchosen ones with the identity box.
        _check_batch(images, masks)
        g = generator if generator is not None else self.generator
        n = images.shape[0]
        chosen = torch.rand(n, generator=g) < self.p
        rel, centre = self._sample(n, images, g)
        rel[~chosen], centre[~chosen] = 1.0, 0.0
        params = (rel, centre, out_size)
        out = self._apply(images, params, False)
        return out if masks is None else (out, self._apply(masks, params, True))

    def _apply(self, x: torch.Tensor, params: tuple, is_mask: bool) -> torch.Tensor:
        rel, centre = params[0], params[1]
        out_size = params[2] if len(params) > 2 else None
        # rel/centre are in affine_grid (x, y, z) order; a diagonal matrix is unchanged by the
        # half-size conjugation in _resample, so the normalised box is exactly diag(rel) + centre.
        return _resample(x, torch.diag_embed(rel), centre, is_mask, "border", out_size)


# ---------------------------------------------------------------------------------- intensity ops


def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(n,) sigmas -> (n, 2 * radius + 1) normalised 1D Gaussian kernels."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (offsets.view(1, -1) / sigma.view(-1, 1)) ** 2)
    return k / k.sum(-1, keepdim=True)


class RandomGaussianBlur(BatchTransform):
    """With probability ``p``, blur with a Gaussian of standard deviation (pixels) uniform in ``sigma``.

    Separable: one grouped 1D convolution per spatial axis for the whole sub-batch, each sample with
    its own kernel; reflect padding; kernel radius ``ceil(3 * max sigma)`` (capped by the image size).
    """

    def __init__(
        self, sigma: float | Sequence[float] = (0.1, 2.0), p: float = 0.5, seed: SeedLike = None
    ) -> None:
        super().__init__(p, seed)
        self.sigma = _check_range(sigma, "sigma")
        if self.sigma[0] <= 0:
            raise ConfigError(f"blur sigma {self.sigma} must be positive", "e.g. sigma=(0.1, 2.0)")

    def _sample(self, n: int, images: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return _uniform(n, *self.sigma, g)

    def _apply(self, x: torch.Tensor, params: torch.Tensor, is_mask: bool) -> torch.Tensor:
        n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
        dims = len(spatial)
        radius = min(math.ceil(3 * float(params.max())), min(spatial) - 1)
        if radius < 1:
            return x
        kernels = _gaussian_kernels(params, radius).to(device=x.device, dtype=x.dtype)
        kernels = kernels.repeat_interleave(c, dim=0)  # (n * c, K): one per (sample, channel)
        # 3D/2D separable blur as grouped conv1d over the lines of each axis, the (sample, channel)
        # pairs as channels: faster than grouped conv3d with (K, 1, 1) kernels for 3D batches on
        # CPU (about equal in 2D), and one code path for 2D and 3D.
        y = x.reshape(n * c, *spatial)
        for axis in range(dims):
            moved = y.movedim(1 + axis, -1)
            lines = moved.reshape(n * c, -1, spatial[axis]).transpose(0, 1)  # (lines, n * c, L)
            lines = F.conv1d(
                F.pad(lines, (radius, radius), mode="reflect"), kernels.unsqueeze(1), groups=n * c
            )
            y = lines.transpose(0, 1).reshape(moved.shape).movedim(-1, 1 + axis)
        return y.reshape(x.shape)


class RandomGaussianNoise(BatchTransform):
    """With probability ``p``, add Gaussian noise with a standard deviation uniform in ``std``; clip to
    [0, 1] when ``clip``. The noise is drawn on the images' device from a generator seeded by the
    transform's CPU stream (reproducible per device)."""

    def __init__(
        self,
        std: float | Sequence[float] = (0.0, 0.1),
        p: float = 0.5,
        clip: bool = True,
        seed: SeedLike = None,
    ) -> None:
        super().__init__(p, seed)
        self.std = _check_range(std, "std")
        if self.std[0] < 0:
            raise ConfigError(f"noise std {self.std} must be non-negative", "e.g. std=(0.0, 0.1)")
        self.clip = clip

    def _sample(self, n: int, images: torch.Tensor, g: torch.Generator | None) -> tuple[torch.Tensor, int]:
        std = _uniform(n, *self.std, g)
        seed = int(torch.randint(0, 2**62, (1,), generator=g))
        return std, seed

    def _apply(self, x: torch.Tensor, params: tuple, is_mask: bool) -> torch.Tensor:
        std, seed = params
        device_gen = torch.Generator(device=x.device).manual_seed(seed)
        noise = torch.randn(x.shape, generator=device_gen, device=x.device, dtype=x.dtype)
        out = x + noise * std.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.ndim - 1)))
        return out.clamp_(0.0, 1.0) if self.clip else out


class RandomBrightnessContrast(BatchTransform):
    """With probability ``p``, scale a sample's brightness by a factor uniform in ``brightness`` and
    its contrast (around the sample's own mean intensity) by one uniform in ``contrast``; clip to
    [0, 1] when ``clip``. Single-factor ranges ``b`` mean ``(1 - b, 1 + b)``, as in torchvision.

    The grey-level analogue of SimCLR's colour jitter: without it, two views of an image share
    their intensity histogram, which a contrastive or redundancy-reduction objective can match
    without looking at structure. torchvision's ``ColorJitter`` draws one factor per call, not one
    per sample of a batch, and is 2D only, hence this batched 2D/3D version.
    """

    def __init__(
        self,
        brightness: float | Sequence[float] = 0.4,
        contrast: float | Sequence[float] = 0.4,
        p: float = 0.8,
        clip: bool = True,
        seed: SeedLike = None,
    ) -> None:
        super().__init__(p, seed)
        self.brightness = _factor_range(brightness, "brightness")
        self.contrast = _factor_range(contrast, "contrast")
        self.clip = clip

    def _sample(self, n: int, images: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return torch.stack([_uniform(n, *self.brightness, g), _uniform(n, *self.contrast, g)], 1)

    def _apply(self, x: torch.Tensor, params: torch.Tensor, is_mask: bool) -> torch.Tensor:
        shape = (-1, *([1] * (x.ndim - 1)))
        factors = params.to(device=x.device, dtype=x.dtype)
        out = x * factors[:, 0].view(shape)
        mean = out.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
        out = (out - mean) * factors[:, 1].view(shape) + mean
        return out.clamp_(0.0, 1.0) if self.clip else out


def _factor_range(value: float | Sequence[float], name: str) -> tuple[float, float]:
    """A multiplicative factor range: ``b`` -> ``(1 - b, 1 + b)``, a pair as given; never negative."""
    if isinstance(value, (int, float)):
        lo, hi = 1.0 - float(value), 1.0 + float(value)
    else:
        lo, hi = _check_range(value, name)
    if lo < 0 or lo > hi:
        raise ConfigError(f"{name} factor range ({lo}, {hi}) is invalid", f"e.g. {name}=0.4 or (0.6, 1.4)")
    return lo, hi


# ----------------------------------------------------------------------------------- composition


class Compose:
    """Apply transforms in order with one shared generator (``seed``), to images and optional masks.

    Consecutive rotations/scalings (same ``padding_mode``) are fused into one resampling per sample
    (same random draws as running them one by one; one interpolation instead of several).
    ``spatial_dims`` (2 or 3), when given, is checked against the input.
    """

    def __init__(
        self, transforms: Sequence[Callable[..., Any]], seed: SeedLike = None, spatial_dims: int | None = None
    ) -> None:
        if spatial_dims not in (None, 2, 3):
            raise ConfigError(f"spatial_dims={spatial_dims} is not 2 or 3", "pass spatial_dims=2 or 3")
        self.transforms = list(transforms)
        self.generator = _make_generator(seed)
        self.spatial_dims = spatial_dims

    def __call__(
        self,
        images: torch.Tensor,
        masks: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        dims = _check_batch(images, masks)
        if self.spatial_dims is not None and dims != self.spatial_dims:
            raise ConfigError(
                f"this augmentation is for {self.spatial_dims}D images but got a {dims}D batch "
                f"of shape {tuple(images.shape)}",
                f"build it with spatial_dims={dims}",
            )
        g = generator if generator is not None else self.generator
        i = 0
        while i < len(self.transforms):
            t = self.transforms[i]
            run = [t] if isinstance(t, _AffineTransform) else []
            while run and i + len(run) < len(self.transforms):
                nxt = self.transforms[i + len(run)]
                if not (isinstance(nxt, _AffineTransform) and nxt.padding_mode == t.padding_mode):
                    break
                run.append(nxt)
            if len(run) > 1:
                images, masks = _apply_affine_run(run, images, masks, g)
                i += len(run)
                continue
            if masks is None:
                images = t(images, generator=g)
            else:
                images, masks = t(images, masks, generator=g)
            i += 1
        return images if masks is None else (images, masks)

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}], spatial_dims={self.spatial_dims})"


def _preset(name: str) -> list[BatchTransform]:
    flip, rot90 = RandomFlip(p=0.5), RandomRot90(p=0.5)
    table: dict[str, list[BatchTransform]] = {
        "none": [],
        "S1": [flip],
        "S2": [rot90],
        "S3": [flip, RandomRotation(10, p=0.3)],
        "S4": [rot90, RandomRotation(20, p=0.3)],
        "S5": [flip, rot90, RandomRotation(30, p=0.6)],
        "S6": [flip, rot90, RandomRotation(30, p=0.6), RandomScale((0.8, 1.2), p=0.4)],
    }
    return table[name]


AUGMENTATION_PRESETS: tuple[str, ...] = ("none", "S1", "S2", "S3", "S4", "S5", "S6")
"""Names accepted by ``get_augmentation`` (also as ``s3`` or ``Aug-S3``)."""


def get_augmentation(name: str, spatial_dims: int = 2, seed: SeedLike = None) -> Compose:
    """The paper's augmentation preset ``name`` (``none``, ``S1`` .. ``S6``) as a batched ``Compose``."""
    key = str(name).strip()
    key = key[4:] if key.lower().startswith("aug-") else key
    key = "none" if key.lower() == "none" else key.upper()
    if key not in AUGMENTATION_PRESETS:
        raise ConfigError(
            f"unknown augmentation preset {name!r}", f"use one of {', '.join(AUGMENTATION_PRESETS)}"
        )
    if spatial_dims not in (2, 3):
        raise ConfigError(f"spatial_dims={spatial_dims} is not 2 or 3", "pass spatial_dims=2 or 3")
    return Compose(_preset(key), seed=seed, spatial_dims=spatial_dims)


class ContrastiveViews:
    """Two independently augmented views of a batch, for SimCLR/BYOL/MoCo-style methods (2D and 3D).

    Per view: random resized crop (``crop_scale``, back to ``size`` or the input size) -> flip
    (``flip_p``) -> rot90 (``rot90_p``) -> brightness/contrast (``intensity_p``, off by default so
    that views built before it existed come out the same) -> Gaussian blur (``blur_p``, ``blur_sigma`` in pixels) ->
    Gaussian noise (``noise_p``, ``noise_std``). Set a probability to 0 (or ``crop_scale=None``) to
    drop a step. ``views(images)`` -> ``(view_1, view_2)``, both ``(B, C, *size)``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        size: int | Sequence[int] | None = None,
        crop_scale: Sequence[float] | None = (0.2, 1.0),
        crop_ratio: Sequence[float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        rot90_p: float = 0.5,
        intensity_p: float = 0.0,
        brightness: float | Sequence[float] = 0.4,
        contrast: float | Sequence[float] = 0.4,
        blur_p: float = 0.5,
        blur_sigma: Sequence[float] = (0.1, 2.0),
        noise_p: float = 0.5,
        noise_std: Sequence[float] = (0.0, 0.05),
        seed: SeedLike = None,
    ) -> None:
        steps: list[BatchTransform] = []
        if crop_scale is not None:
            steps.append(RandomResizedCrop(size=size, scale=crop_scale, ratio=crop_ratio, p=1.0))
        if _check_p(flip_p, "flip_p") > 0:
            steps.append(RandomFlip(p=flip_p))
        if _check_p(rot90_p, "rot90_p") > 0:
            steps.append(RandomRot90(p=rot90_p))
        # built even when off, so that a bad factor range is refused whatever the probability
        jitter = RandomBrightnessContrast(
            brightness=brightness, contrast=contrast, p=_check_p(intensity_p, "intensity_p")
        )
        if jitter.p > 0:
            steps.append(jitter)
        if _check_p(blur_p, "blur_p") > 0:
            steps.append(RandomGaussianBlur(sigma=blur_sigma, p=blur_p))
        if _check_p(noise_p, "noise_p") > 0:
            steps.append(RandomGaussianNoise(std=noise_std, p=noise_p))
        self.transform = Compose(steps, seed=seed, spatial_dims=spatial_dims)

    def __call__(
        self, images: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        g = generator if generator is not None else self.transform.generator
        return self.transform(images, generator=g), self.transform(images, generator=g)

    def __repr__(self) -> str:
        return f"ContrastiveViews({self.transform!r})"
