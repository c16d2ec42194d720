"""Modality-specific image corruptions at five severities, as batched tensor ops (2D and 3D).

Test-time robustness (``hfssl evaluate --corruption NAME[:SEVERITY]|all``) and a training
augmentation (``--augment corrupt:P``, :class:`RandomCorruption`) share these definitions::

    from hfssl.data.corruptions import apply_corruption, corruptions_for
    corruptions_for("breastmnist")                 # ('speckle_noise', 'motion_blur', ...)
    x = apply_corruption(images, "speckle_noise", 3, modality="ultrasound", seed=0)

Images are float tensors in [0, 1], ``(B, C, H, W)`` or ``(B, C, D, H, W)``; the output has the
same shape, dtype and range. Randomness (noise, motion direction, dropped slices) is drawn per
image from a generator seeded by ``(seed, corruption, image index)``, so the corrupted
test split is the same whatever the batch size or device, and image ``i`` is corrupted the same way
in every run with the same seed.

Definitions and severity tables
-------------------------------
2D corruptions and their parameter tables are MedMNIST-C's (Di Salvo, Doerrich, Ledig, "MedMNIST-C:
Comprehensive benchmark and improved classifier robustness by simulating realistic image
corruptions", 2024; ``medmnistc`` 0.1.0 ``corruptions/registry.py``): ultrasound = its
``breastmnist`` table, fundus = its ``retinamnist`` table (DRIVE and RetinaMNIST are both colour
fundus photographs). The operations follow its code, itself after ImageNet-C (Hendrycks &
Dietterich, "Benchmarking neural network robustness to common corruptions and perturbations",
ICLR 2019):

* ``gaussian_noise``: ``clip(x + N(0, c))``; ``speckle_noise``: ``clip(x + x * N(0, c))``;
* ``brightness_up`` / ``brightness_down``: PIL ``ImageEnhance.Brightness`` = ``clip(x * c)``
  (``torchvision`` ``adjust_brightness``); ``contrast_down``: PIL ``ImageEnhance.Contrast`` = blend
  with the image's mean grey level (``torchvision`` ``adjust_contrast``);
* ``pixelate``: box-downsample to ``c`` times the side, nearest-upsample back;
* ``jpeg_compression``: JPEG at quality ``c`` (``torchvision.io`` encode/decode, libjpeg);
* ``motion_blur``: ImageMagick's ``MotionBlurImage`` (radius, sigma, angle uniform in
  [-45, 45] deg): a one-sided line kernel with Gaussian weights ``exp(-i^2 / 2 sigma^2)``;
* ``defocus_blur``: ImageNet-C's disk kernel of radius ``r`` smoothed by a 3x3 Gaussian (``alias``).

MedMNIST-C tunes its tables for 224 px images. Spatial parameters (blur radius and sigma in
pixels) are scaled by ``side / 224`` here, so a corruption is the same physical degradation at
28, 64 or 224 px (MedMNIST's small images are downsampled 224 px ones); ``pixelate`` is a relative
factor and needs no scaling. At 28 px this makes blurs mild - compare the PSNR per severity in
``reports/robustness/``.

3D CT (AdrenalMNIST3D and the other CT volumes) has no MedMNIST-C table; the set follows the
artefacts the issue names, with these tables:

* ``gaussian_noise``: std ``(0.04, 0.08, 0.12, 0.16, 0.20)`` (MedMNIST-C's CT table, ``organamnist``);
* ``gaussian_blur``: isotropic sigma ``(0.5, 0.75, 1.0, 1.25, 1.5)`` voxels at 28 px, scaled by
  ``side / 28`` (our table: ImageNet-C's ``(1, 2, 3, 4, 6)`` px at 224 px would leave a 28 px
  volume unchanged after uint8 rounding at severity 1);
* ``intensity_shift``: ``clip(x + c)``, ``c = (0.1, 0.2, 0.3, 0.4, 0.5)`` (ImageNet-C's brightness
  shift, applied to the intensity directly as CT has no colour);
* ``slice_dropout``: a fraction ``(0.05, 0.1, 0.2, 0.3, 0.4)`` of the axial slices (depth axis),
  chosen at random per volume, set to 0 (missing/corrupted slices; our table).

Why hand-written kernels for motion and defocus blur: torchvision has no motion or disk blur and
kornia (which has ``motion_blur``) is not a dependency; both are one grouped ``conv2d`` per batch.
Brightness, contrast and JPEG use torchvision's functional ops; the 3D Gaussian blur is a separable
convolution (torchvision's ``gaussian_blur`` is 2D only).

``medmnistc`` itself was not used: it installs, but importing its corruptions needs the
ImageMagick C library (``wand``), works per PIL image (slow, single image), and only on 2D RGB
224 px images; ``benchmarks/corruption_parity.py`` compares the statistics of both where it runs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from hfssl.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = [
    "CORRUPTIONS",
    "MODALITIES",
    "SEVERITIES",
    "CorruptionSpec",
    "RandomCorruption",
    "apply_corruption",
    "corrupt_dataset",
    "corruptions_for",
    "modality_of",
    "parse_corruption",
]

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
_REFERENCE_SIDE = 224  # the image side MedMNIST-C's spatial parameters are tuned for

Fn = Callable[[torch.Tensor, Any, list[torch.Generator]], torch.Tensor]


# ----------------------------------------------------------------------------- helpers


def _clip(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_(0.0, 1.0)


def _scale(x: torch.Tensor) -> float:
    """Spatial scale of ``x`` against the 224 px reference (smallest spatial side)."""
    return min(x.shape[2:]) / _REFERENCE_SIDE


def _per_image_normal(x: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, image ``i`` drawn from ``gens[i]`` (on the CPU, so the
    draw is the same on every device)."""
    noise = torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens])
    return noise.to(device=x.device, dtype=x.dtype)


def _depthwise(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """2D convolution of every (image, channel) with its image's kernel ``kernels[i]`` (K, K), reflect
    padding (cv2's default border, BORDER_REFLECT_101); kernels larger than the image are cropped."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    limit = 2 * (min(h, w) - 1) + 1  # reflect padding needs pad < side
    if k > limit:
        cut = (k - limit) // 2
        kernels = kernels[:, cut : cut + limit, cut : cut + limit]
        kernels = kernels / kernels.sum(dim=(1, 2), keepdim=True)
        k = limit
    pad = k // 2
    weight = kernels.to(device=x.device, dtype=x.dtype).repeat_interleave(c, dim=0).unsqueeze(1)
    y = F.conv2d(F.pad(x.reshape(1, n * c, h, w), (pad, pad, pad, pad), mode="reflect"), weight, groups=n * c)
    return y.reshape(n, c, h, w)


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


# ----------------------------------------------------------------------------- 2D and 3D operations


def _gaussian_noise(x: torch.Tensor, std: float, gens: list[torch.Generator]) -> torch.Tensor:
    return _clip(x + std * _per_image_normal(x, gens))


def _speckle_noise(x: torch.Tensor, std: float, gens: list[torch.Generator]) -> torch.Tensor:
    return _clip(x + x * std * _per_image_normal(x, gens))


def _brightness(x: torch.Tensor, factor: float, gens: list[torch.Generator]) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    return TF.adjust_brightness(x, factor)


def _contrast(x: torch.Tensor, factor: float, gens: list[torch.Generator]) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    return TF.adjust_contrast(x, factor)


def _pixelate(x: torch.Tensor, factor: float, gens: list[torch.Generator]) -> torch.Tensor:
    h, w = x.shape[-2:]
    small = (max(1, int(h * factor)), max(1, int(w * factor)))
    # 'area' = PIL's BOX filter when shrinking; nearest blow-up = BOX when enlarging
    down = F.interpolate(x, size=small, mode="area")
    return F.interpolate(down, size=(h, w), mode="nearest-exact")


def _jpeg(x: torch.Tensor, quality: int, gens: list[torch.Generator]) -> torch.Tensor:
    from torchvision.io import decode_jpeg, encode_jpeg

    u8 = (x * 255.0).round_().clamp_(0, 255).to(torch.uint8).cpu()
    decoded = decode_jpeg(encode_jpeg(list(u8), quality=int(quality)))
    return torch.stack(decoded).to(device=x.device, dtype=x.dtype) / 255.0


def _motion_kernel(radius: float, sigma: float, angle_deg: float) -> torch.Tensor:
    """ImageMagick ``MotionBlurImage``'s kernel: taps ``i = 0, 1, ..`` along the direction ``a`` at
    offset ``round(i * (cos a, sin a))`` weighted ``exp(-i^2 / 2 sigma^2)``, on a square grid.

    ImageMagick takes ``2 * ceil(radius) + 1`` taps; here the line is ``2 * radius`` long with a
    fractional last tap, so scaled-down radii (28 px) still grow with the severity."""
    length = 2.0 * radius
    taps = math.floor(length) + 2
    a = math.radians(angle_deg)
    i = torch.arange(taps, dtype=torch.float64)
    weights = torch.exp(-(i**2) / (2 * sigma**2)) * (length + 1 - i).clamp(0.0, 1.0)
    dx = torch.round(i * math.cos(a)).long()
    dy = torch.round(i * math.sin(a)).long()
    half = taps - 1
    kernel = torch.zeros(2 * half + 1, 2 * half + 1, dtype=torch.float64)
    kernel.index_put_((half + dy, half + dx), weights, accumulate=True)
    return kernel / kernel.sum()


def _motion_blur(x: torch.Tensor, params: tuple[float, float], gens: list[torch.Generator]) -> torch.Tensor:
    radius, sigma = (p * _scale(x) for p in params)
    kernels = torch.stack([_motion_kernel(radius, max(sigma, 1e-3), _uniform(g, -45.0, 45.0)) for g in gens])
    return _clip(_depthwise(x, kernels))


def _disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """ImageNet-C's ``disk``: an aliased disk of ``radius`` (pixels), normalised, smoothed by a 3x3
    Gaussian of sigma ``alias_blur``; the grid is the disk plus one pixel (ImageNet-C's fixed 17x17
    grid holds only zeros beyond that)."""
    from torchvision.transforms.v2 import functional as TF

    half = math.ceil(radius) + 1  # one pixel of margin for the alias smoothing
    grid = torch.arange(-half, half + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    disk = ((xx**2 + yy**2) <= radius**2).double()
    disk = disk / disk.sum()
    smoothed = TF.gaussian_blur(
        disk[None, None].float(), kernel_size=[3, 3], sigma=[max(alias_blur, 1e-3)] * 2
    )
    return (smoothed[0, 0] / smoothed.sum()).double()


def _defocus_blur(x: torch.Tensor, params: tuple[float, float], gens: list[torch.Generator]) -> torch.Tensor:
    radius, alias = params
    kernel = _disk_kernel(max(radius * _scale(x), 0.5), alias)
    return _clip(_depthwise(x, kernel.expand(x.shape[0], *kernel.shape)))


def _gaussian_blur(x: torch.Tensor, sigma_28: float, gens: list[torch.Generator]) -> torch.Tensor:
    """Isotropic Gaussian blur, the same sigma for every image, separable with reflect padding: per
    axis a weighted sum of shifted views. On CPU this was 5-10x faster than both a single-channel
    ``conv3d`` with ``(K, 1, 1)`` kernels and the grouped per-image ``conv1d`` of
    ``hfssl.data.augment.RandomGaussianBlur`` (which draws a sigma per image); torchvision's
    ``gaussian_blur`` is 2D only."""
    spatial = x.shape[2:]
    sigma = sigma_28 * min(spatial) / 28
    radius = min(math.ceil(3 * sigma), min(spatial) - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    weights = (kernel / kernel.sum()).tolist()
    y = x
    for axis in range(2, x.ndim):
        n = y.shape[axis]
        moved = y.movedim(axis, -1)
        padded = F.pad(moved.reshape(-1, 1, n), (radius, radius), mode="reflect").reshape(
            *moved.shape[:-1], -1
        )
        acc = padded[..., 0:n] * weights[0]
        for k in range(1, len(weights)):
            acc.add_(padded[..., k : k + n], alpha=weights[k])
        y = acc.movedim(-1, axis)
    return _clip(y.contiguous())


def _intensity_shift(x: torch.Tensor, shift: float, gens: list[torch.Generator]) -> torch.Tensor:
    return _clip(x + shift)


def _slice_dropout(x: torch.Tensor, fraction: float, gens: list[torch.Generator]) -> torch.Tensor:
    depth = x.shape[2]
    k = max(1, round(fraction * depth))
    out = x.clone()
    for i, g in enumerate(gens):
        drop = torch.randperm(depth, generator=g)[:k].to(x.device)
        out[i, :, drop] = 0.0
    return out


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class CorruptionSpec:
    """One corruption of one modality: its operation and the parameter of each severity 1-5."""

    name: str
    fn: Fn
    params: tuple[Any, ...]
    source: str

    def param(self, severity: int) -> Any:
        return self.params[severity - 1]


def _specs(source: str, table: dict[str, tuple[Fn, tuple[Any, ...]]]) -> dict[str, CorruptionSpec]:
    return {name: CorruptionSpec(name, fn, params, source) for name, (fn, params) in table.items()}


MODALITIES: dict[str, dict[str, CorruptionSpec]] = {
    "ultrasound": _specs(
        "MedMNIST-C breastmnist",
        {
            "speckle_noise": (_speckle_noise, (0.10, 0.15, 0.20, 0.25, 0.30)),
            "motion_blur": (_motion_blur, ((5, 5), (9, 7), (9, 10), (13, 10), (17, 12))),
            "contrast_down": (_contrast, (0.9, 0.8, 0.7, 0.6, 0.4)),
            "brightness_up": (_brightness, (1.4, 1.5, 1.6, 1.8, 2.0)),
            "brightness_down": (_brightness, (0.55, 0.5, 0.45, 0.4, 0.3)),
            "pixelate": (_pixelate, (0.30, 0.25, 0.20, 0.15, 0.10)),
            "jpeg_compression": (_jpeg, (50, 30, 15, 10, 7)),
        },
    ),
    "fundus": _specs(
        "MedMNIST-C retinamnist",
        {
            "defocus_blur": (_defocus_blur, ((4, 0.1), (5, 0.2), (6, 0.3), (7, 0.4), (8, 0.5))),
            "motion_blur": (_motion_blur, ((8, 5), (15, 5), (15, 8), (15, 12), (20, 15))),
            "gaussian_noise": (_gaussian_noise, (0.04, 0.08, 0.12, 0.16, 0.20)),
            "speckle_noise": (_speckle_noise, (0.10, 0.15, 0.20, 0.25, 0.30)),
            "brightness_down": (_brightness, (0.9, 0.8, 0.7, 0.6, 0.5)),
            "contrast_down": (_contrast, (0.9, 0.8, 0.7, 0.6, 0.4)),
            "pixelate": (_pixelate, (0.8, 0.6, 0.5, 0.4, 0.35)),
            "jpeg_compression": (_jpeg, (30, 25, 20, 10, 5)),
        },
    ),
    "ct3d": _specs(
        "hfssl (MedMNIST-C CT noise, ImageNet-C blur/brightness)",
        {
            "gaussian_noise": (_gaussian_noise, (0.04, 0.08, 0.12, 0.16, 0.20)),
            "gaussian_blur": (_gaussian_blur, (0.5, 0.75, 1.0, 1.25, 1.5)),
            "intensity_shift": (_intensity_shift, (0.1, 0.2, 0.3, 0.4, 0.5)),
            "slice_dropout": (_slice_dropout, (0.05, 0.1, 0.2, 0.3, 0.4)),
        },
    ),
}
"""modality -> corruption name -> spec (the order is the report order)."""

MODALITY_DIMS = {"ultrasound": 2, "fundus": 2, "ct3d": 3}

DATASET_MODALITY: dict[str, str] = {
    "breastmnist": "ultrasound",
    "drive": "fundus",
    "retinamnist": "fundus",
    "adrenalmnist3d": "ct3d",
    "organmnist3d": "ct3d",
    "nodulemnist3d": "ct3d",
    "fracturemnist3d": "ct3d",
}
"""Datasets with a corruption set (the imaging modality decides which artefacts are realistic)."""

CORRUPTIONS: tuple[str, ...] = tuple(dict.fromkeys(n for table in MODALITIES.values() for n in table))
"""Every corruption name of any modality."""


def modality_of(dataset: str) -> str:
    """The corruption modality of ``dataset`` (a MedMNIST name, ``drive``, or a modality name itself);
    ``DataError`` for a dataset without a corruption set."""
    key = str(dataset).strip().lower().split(":")[-1]
    if key in MODALITIES:
        return key
    if key not in DATASET_MODALITY:
        raise DataError(
            f"dataset {dataset!r} has no corruption set (its imaging modality has none defined)",
            f"use --corruption with one of: {', '.join(DATASET_MODALITY)}",
        )
    return DATASET_MODALITY[key]


def corruptions_for(dataset_or_modality: str) -> tuple[str, ...]:
    """The corruption names defined for a dataset or modality, in report order."""
    return tuple(MODALITIES[modality_of(dataset_or_modality)])


def check_syntax(text: str) -> None:
    """Refuse malformed ``--corruption`` values before any data is loaded: unknown names (of every
    modality) and severities outside 1-5."""
    for part in _parts(text):
        if part == "all":
            continue
        name, _, sev = part.partition(":")
        if name not in CORRUPTIONS:
            raise ConfigError(
                f"unknown corruption {name!r}",
                f"use all, or NAME[:SEVERITY] with NAME one of: {', '.join(CORRUPTIONS)}",
            )
        if sev:
            _severity(sev, name)


def _parts(text: str) -> list[str]:
    parts = [p.strip().lower() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ConfigError("empty --corruption", "pass all, or NAME[:SEVERITY] (e.g. speckle_noise:3)")
    return parts


def _severity(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if str(value) != text.strip() or value not in SEVERITIES:
        raise ConfigError(
            f"severity {text!r} of corruption {name!r} is not 1-5",
            f"pass {name}:1 .. {name}:5, or {name} for all five",
        )
    return value


def parse_corruption(text: str, dataset: str, spatial_dims: int | None = None) -> list[tuple[str, int]]:
    """``NAME[:SEVERITY]`` (comma-separated) or ``all`` -> ``[(name, severity), ...]`` for ``dataset``.

    A name without severity means all five severities; ``all`` every corruption of the dataset's
    modality at every severity. Raises ``ConfigError`` (one line, valid choices listed) for unknown
    names, severities outside 1-5, names that exist only for another modality, and a dataset whose
    dimensionality does not match its modality's."""
    check_syntax(text)
    modality = modality_of(dataset)
    valid = MODALITIES[modality]
    if spatial_dims is not None and MODALITY_DIMS[modality] != spatial_dims:
        raise ConfigError(
            f"the {modality} corruptions are for {MODALITY_DIMS[modality]}D images but {dataset} is {spatial_dims}D",
            "use a dataset of that modality",
        )
    out: list[tuple[str, int]] = []
    for part in _parts(text):
        if part == "all":
            out.extend((n, s) for n in valid for s in SEVERITIES)
            continue
        name, _, sev = part.partition(":")
        if name not in valid:
            dims = f"{MODALITY_DIMS[modality]}D"
            raise ConfigError(
                f"corruption {name!r} does not exist for {dataset} ({modality}, {dims})",
                f"use all, or one of: {', '.join(valid)}",
            )
        out.extend((name, s) for s in ([_severity(sev, name)] if sev else SEVERITIES))
    return list(dict.fromkeys(out))


def _seed_for(seed: int, name: str, index: int) -> int:
    # not the severity: image i gets the same noise draw / motion direction / slice order at every
    # severity, so a higher severity is the same artefact, stronger (monotone statistics)
    digest = hashlib.blake2b(f"{seed}|{name}|{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def apply_corruption(
    images: torch.Tensor,
    name: str,
    severity: int,
    *,
    modality: str,
    seed: int = 0,
    indices: Sequence[int] | torch.Tensor | None = None,
) -> torch.Tensor:
    """``images`` (float in [0, 1], ``(B, C, H, W)`` or ``(B, C, D, H, W)``) corrupted by ``name`` at
    ``severity`` (1-5) as defined for ``modality``; same shape, dtype, device and range.

    ``indices`` are the images' positions in their split (default ``0 .. B-1``): image ``indices[i]``
    gets the randomness of ``(seed, name, indices[i])``, independent of batching and the same at
    every severity."""
    spec = MODALITIES[modality_of(modality)].get(name)
    if spec is None:
        raise ConfigError(
            f"corruption {name!r} does not exist for {modality}",
            f"use one of: {', '.join(MODALITIES[modality])}",
        )
    if severity not in SEVERITIES:
        raise ConfigError(f"severity {severity!r} is not 1-5", "pass a severity 1..5")
    dims = images.ndim - 2
    if dims != MODALITY_DIMS[modality_of(modality)] or not images.is_floating_point():
        raise DataError(
            f"{modality} corruptions take float {MODALITY_DIMS[modality_of(modality)]}D batches, got "
            f"{images.dtype} of shape {tuple(images.shape)}",
            "pass (B, C, H, W) (2D) or (B, C, D, H, W) (3D) floats in [0, 1]",
        )
    n = images.shape[0]
    idx = list(range(n)) if indices is None else [int(i) for i in indices]
    if len(idx) != n:
        raise ConfigError(f"{len(idx)} indices for {n} images", "pass one index per image")
    gens = [torch.Generator().manual_seed(_seed_for(seed, name, i)) for i in idx]
    with torch.no_grad():
        out = spec.fn(images.clone(), spec.param(severity), gens)
    return out.to(images.dtype)


def corrupt_dataset(
    split: Dataset,
    name: str,
    severity: int,
    *,
    modality: str,
    seed: int = 0,
    batch_size: int = 512,
) -> Dataset:
    """A copy of ``split`` (hfssl's Arrow image schema) with every image corrupted, rounded back to
    uint8 like MedMNIST-C's output; the other columns (labels, masks) are unchanged."""
    import numpy as np
    from datasets import Dataset

    from hfssl.data.torch_data import arrow_to_numpy, image_layout

    table = split.with_format("arrow")[:]
    raw = arrow_to_numpy(table.column("image"))
    layout = image_layout(split.features["image"])
    out = np.empty_like(raw)
    for start in range(0, len(raw), batch_size):
        chunk = torch.from_numpy(raw[start : start + batch_size])
        x = chunk.permute(0, 3, 1, 2) if layout == "hwc" else chunk.unsqueeze(1)
        x = x.float() / 255.0
        y = apply_corruption(
            x, name, severity, modality=modality, seed=seed, indices=range(start, start + len(chunk))
        )
        y8 = (y * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        y8 = y8.permute(0, 2, 3, 1) if layout == "hwc" else y8.squeeze(1)
        out[start : start + len(chunk)] = y8.numpy()
    columns = {c: table.column(c) for c in table.column_names if c != "image"}
    data: dict[str, Any] = {"image": out}
    for c, col in columns.items():
        data[c] = (
            arrow_to_numpy(col)
            if split.features[c].__class__.__name__.startswith("Array")
            else col.to_pylist()
        )
    return Dataset.from_dict(data, features=split.features)


class RandomCorruption:
    """Training augmentation ``corrupt:P``: with probability ``p`` an image gets one corruption of
    ``modality``, chosen uniformly, at a severity uniform in 1-5 (MedMNIST-C's augmentation idea,
    with the test-time definitions). A batched transform like :mod:`hfssl.data.augment`'s."""

    def __init__(self, modality: str, p: float = 0.5, seed: int | torch.Generator | None = None) -> None:
        if not 0.0 <= float(p) <= 1.0:
            raise ConfigError(
                f"corruption probability {p} is outside [0, 1]", "pass e.g. --augment corrupt:0.5"
            )
        self.modality = modality_of(modality)
        self.p = float(p)
        self.names = tuple(MODALITIES[self.modality])
        self.generator = torch.Generator().manual_seed(seed) if isinstance(seed, int) else seed

    def __call__(self, images: torch.Tensor, masks: torch.Tensor | None = None, *, generator=None):
        g = generator if generator is not None else self.generator
        n = images.shape[0]
        chosen = torch.rand(n, generator=g) < self.p
        which = torch.randint(len(self.names), (n,), generator=g)
        severity = torch.randint(1, 6, (n,), generator=g)
        seed = int(torch.randint(0, 2**62, (1,), generator=g))
        out = images
        for k, name in enumerate(self.names):
            for s in SEVERITIES:
                idx = (chosen & (which == k) & (severity == s)).nonzero().flatten()
                if idx.numel():
                    part = apply_corruption(
                        out[idx.to(out.device)], name, s, modality=self.modality, seed=seed, indices=idx
                    )
                    out = out.index_copy(0, idx.to(out.device), part)
        return out if masks is None else (out, masks)

    def __repr__(self) -> str:
        return f"RandomCorruption(modality={self.modality!r}, p={self.p})"
