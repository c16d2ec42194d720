"""Parts shared by several pretext methods, so that no method module imports another.

* :func:`cpu_generator` - the CPU generator the batched augmentations draw from (Rot, the
  contrastive methods);
* the grid tasks' geometry checks (RPL, Jigsaw, RKB/RKB+): :func:`check_tile_config`,
  :func:`resize_tiles`, :func:`default_grid`, :func:`check_permutation_config`;
* the restoration methods' decoder (AE, Models Genesis, PCRL): :class:`GenerativeConfig`,
  :class:`RestorationModel`, :func:`mean_image_mse`;
* the two-view contrastive methods' views (SimCLR, BYOL, MoCo v2): :class:`ContrastiveConfig`,
  :func:`make_contrastive_views`, :class:`ContrastiveViewsMixin`, :func:`pair_similarity_metrics`.
  Medical views are geometric + blur + noise, never colour jitter or greyscale (the images are
  grey already): 2D a random resized crop per view, 3D two *overlapping* random crops (IoU >
  ``crop_iou_threshold``, the paper's 3D positive pairs), then per view flip, rot90, Gaussian
  blur and noise (:class:`hfssl.data.augment.ContrastiveViews`).

Building blocks without any method's settings live in :mod:`hfssl.pretext.blocks`.
"""

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict

from hfssl.errors import ConfigError
from hfssl.models import HfsslConfig
from hfssl.models.decoders import UNetDecoder
from hfssl.pretext.base import PretextConfig, PretextModel
from hfssl.pretext.blocks import overlapping_crop_pairs, patch_geometry


# ---------------------------------------------------------------------- random draws
def cpu_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """A CPU generator for the batched augmentations (they draw parameters on the CPU).

    A CPU generator is returned as is; one on another device seeds a fresh CPU generator from
    its own stream, so views stay reproducible for a seed.
    """
    if generator is None or generator.device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------- grid tasks (RPL, Jigsaw, RKB/RKB+)
# Smallest tile side each backbone accepts (others: any side >= 1). The U-Net encoder max-pools
# (kernel 2, floor) three times, so 7^3 tiles would shrink to nothing.
_MIN_TILE_SIDE: dict[str, int] = {"unet3d_encoder": 8}


def min_tile_side(backbone: HfsslConfig) -> int:
    """Smallest tile side the backbone can encode."""
    return _MIN_TILE_SIDE.get(backbone.backbone, 1)


def check_tile_config(
    backbone: HfsslConfig, grid: int, gap: int | None, jitter: int | None, tile_size: int | None
) -> tuple[int, ...]:
    """Validate a grid task's geometry for the backbone's ``image_size``; returns the cut patch size.

    Raises :class:`ConfigError` when the image is too small for the grid or ``tile_size`` is
    below what the backbone accepts.
    """
    size, _, _ = patch_geometry((backbone.image_size,) * backbone.spatial_dims, grid, gap, jitter)
    minimum = min_tile_side(backbone)
    if tile_size is not None and tile_size < minimum:
        raise ConfigError(
            f"tile_size={tile_size} is too small for the {backbone.backbone} backbone (needs >= {minimum})",
            f"use tile_size >= {minimum}, or leave it unset to resize only when needed",
        )
    return size


def resize_tiles(tiles: torch.Tensor, backbone: HfsslConfig, tile_size: int | None) -> torch.Tensor:
    """Resize tiles ``(B, T, C, *size)`` to ``tile_size`` (or up to the backbone's minimum side).

    Unchanged when ``tile_size`` is ``None`` and the tiles are large enough for the backbone.
    (Bi/trilinear interpolation, ``align_corners=False``.)
    """
    spatial = tuple(tiles.shape[3:])
    target: Sequence[int] | None = None
    if tile_size is not None:
        target = (tile_size,) * len(spatial)
    elif min(spatial) < min_tile_side(backbone):
        side = min_tile_side(backbone)
        target = tuple(max(s, side) for s in spatial)
    if target is None or tuple(target) == spatial:
        return tiles
    mode = "bilinear" if len(spatial) == 2 else "trilinear"
    flat = F.interpolate(tiles.flatten(0, 1), size=tuple(target), mode=mode, align_corners=False)
    return flat.reshape(*tiles.shape[:3], *target)


_PERM_METHODS = ("maxmin", "maxmean")


def default_grid(spatial_dims: int) -> int:
    """Tiles per side when ``grid`` is unset: 3 (3x3) for images, 2 (2x2x2) for volumes."""
    return 3 if spatial_dims == 2 else 2


def check_permutation_config(num_tiles: int, num_perms: int, perm_method: str) -> None:
    """Refuse permutation settings that cannot give ``num_perms`` distinct classes."""
    import math

    if perm_method not in _PERM_METHODS:
        raise ConfigError(f"unknown perm_method {perm_method!r}", f"use one of {', '.join(_PERM_METHODS)}")
    if num_perms < 2:
        raise ConfigError(f"num_perms must be >= 2, got {num_perms}", "use e.g. 100 (the paper's default)")
    if num_tiles <= 10 and num_perms > math.factorial(num_tiles):
        raise ConfigError(
            f"num_perms={num_perms} exceeds the {math.factorial(num_tiles)} orderings of {num_tiles} tiles",
            f"use num_perms <= {math.factorial(num_tiles)} or a larger grid",
        )


# ---------------------------------------------- restoration (AE, Models Genesis, PCRL)
@strict
class GenerativeConfig(PretextConfig):
    r"""Decoder settings shared by the restoration methods (AE, Models Genesis, PCRL).

    Args:
        skip_connections (`bool`, defaults to `True`): concatenate the encoder's shallower maps in
            the decoder (U-Net) or decode from the deepest map only.
        decoder_channels (`list[int]`, *optional*): widths of the decoder stages, deep to
            shallow; defaults to the backbone config's ``decoder_channels`` (256, 128, 64), which
            keeps the decoder transferable to ``HfsslForSegmentation``.
    """

    skip_connections: bool = True
    decoder_channels: list[int] | tuple[int, ...] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        if self.decoder_channels is not None:
            channels = list(self.decoder_channels)
            if not channels or any(not isinstance(c, int) or c < 1 for c in channels):
                raise ConfigError(
                    f"decoder_channels must be a non-empty list of positive ints, got {self.decoder_channels}",
                    "use e.g. [256, 128, 64], or leave it unset for the backbone's default",
                )
            object.__setattr__(self, "decoder_channels", channels)
        super().__post_init__(**kwargs)
        maps = len(self.get_backbone_config().feature_channels)
        if len(self.resolved_decoder_channels()) >= maps:
            raise ConfigError(
                f"decoder_channels {self.resolved_decoder_channels()} has too many stages for a backbone "
                f"with {maps} feature maps",
                f"use at most {maps - 1} decoder stages",
            )

    def resolved_decoder_channels(self) -> list[int]:
        """The decoder widths in use: this config's, else the backbone config's."""
        if self.decoder_channels is not None:
            return list(self.decoder_channels)
        return [int(c) for c in self.backbone_config["decoder_channels"]]


class RestorationModel(PretextModel):
    """A pretext model with a sigmoid ``UNetDecoder`` restoring images from backbone feature maps."""

    config: GenerativeConfig

    def _build_decoder(self) -> UNetDecoder:
        """The restoration decoder: backbone maps -> ``in_chans`` channels at the input size."""
        return UNetDecoder(
            self.backbone.feature_channels,
            self.config.resolved_decoder_channels(),
            out_channels=self.config.in_chans,
            spatial_dims=self.spatial_dims,
            skip_connections=self.config.skip_connections,
        )

    def restore(self, feature_maps: Sequence[torch.Tensor], output_size: Sequence[int]) -> torch.Tensor:
        """Decode ``feature_maps`` into an image in (0, 1) of spatial size ``output_size``."""
        return torch.sigmoid(self.decoder(feature_maps, output_size=output_size))


def mean_image_mse(target: torch.Tensor) -> torch.Tensor:
    """MSE of predicting the batch's per-pixel mean image: the trivial baseline a restorer must beat."""
    return F.mse_loss(target.mean(dim=0, keepdim=True).expand_as(target), target).detach()


# -------------------------------------------- two-view contrastive (SimCLR, BYOL, MoCo v2)
CROP_MODES = ("auto", "resized", "overlapping", "none")


@strict
class ContrastiveConfig(PretextConfig):
    r"""View settings shared by the contrastive methods (SimCLR, BYOL, MoCo v2).

    Args:
        crop_mode (`str`, defaults to `"auto"`): ``"auto"`` (2D: ``"resized"``, 3D:
            ``"overlapping"``), ``"resized"`` (an independent random resized crop per view),
            ``"overlapping"`` (two crops with IoU > ``crop_iou_threshold``) or ``"none"``.
        crop_min_area (`float`, defaults to 0.2): smallest area (volume) fraction of a resized crop.
        crop_min_side (`float`, defaults to 0.5): smallest side fraction of an overlapping crop.
        crop_iou_threshold (`float`, defaults to 0.25): minimum IoU of the overlapping crops.
        flip_prob (`float`, defaults to 0.5): flip along one random axis.
        rot90_prob (`float`, defaults to 0.5): rotate by 90/180/270 degrees.
        intensity_prob (`float`, defaults to 0.0): brightness/contrast jitter, the grey-level
            analogue of SimCLR's colour jitter (SimCLR uses 0.8). Off by default: the zoo's entries
            were built without it, and a default change would alter every one of them.
        brightness (`list[float]`, defaults to `(0.6, 1.4)`): brightness factor range.
        contrast (`list[float]`, defaults to `(0.6, 1.4)`): contrast factor range (around each
            image's mean).
        blur_prob (`float`, defaults to 0.5): Gaussian blur.
        blur_sigma (`list[float]`, defaults to `(0.1, 2.0)`): blur standard deviation range, pixels.
        noise_prob (`float`, defaults to 0.5): additive Gaussian noise (clipped to [0, 1]).
        noise_std (`list[float]`, defaults to `(0.0, 0.05)`): noise standard deviation range.
    """

    model_type = "hfssl_contrastive"

    crop_mode: str = "auto"
    crop_min_area: float = 0.2
    crop_min_side: float = 0.5
    crop_iou_threshold: float = 0.25
    flip_prob: float = 0.5
    rot90_prob: float = 0.5
    intensity_prob: float = 0.0
    brightness: list[float] | tuple[float, ...] = (0.6, 1.4)
    contrast: list[float] | tuple[float, ...] = (0.6, 1.4)
    blur_prob: float = 0.5
    blur_sigma: list[float] | tuple[float, ...] = (0.1, 2.0)
    noise_prob: float = 0.5
    noise_std: list[float] | tuple[float, ...] = (0.0, 0.05)

    def __post_init__(self, **kwargs: Any) -> None:
        if self.crop_mode not in CROP_MODES:
            raise ConfigError(f"unknown crop_mode {self.crop_mode!r}", f"use one of {', '.join(CROP_MODES)}")
        if not 0.0 < self.crop_min_area <= 1.0:
            raise ConfigError(f"crop_min_area must be in (0, 1], got {self.crop_min_area}", "use e.g. 0.2")
        if not 0.0 < self.crop_min_side <= 1.0:
            raise ConfigError(f"crop_min_side must be in (0, 1], got {self.crop_min_side}", "use e.g. 0.5")
        if not 0.0 <= self.crop_iou_threshold < 1.0:
            raise ConfigError(
                f"crop_iou_threshold must be in [0, 1), got {self.crop_iou_threshold}", "use e.g. 0.25"
            )
        for name in ("blur_sigma", "noise_std", "brightness", "contrast"):
            value = getattr(self, name)
            if len(value) != 2:
                raise ConfigError(
                    f"{name} must be a (low, high) pair, got {value}", f"e.g. {name}=[0.1, 2.0]"
                )
            object.__setattr__(self, name, [float(v) for v in value])
        super().__post_init__(**kwargs)
        self.view_maker()  # validates probabilities and ranges (ConfigError)

    def resolved_crop_mode(self) -> str:
        """The crop mode in use (``"auto"`` resolved by the data's dimensionality)."""
        if self.crop_mode != "auto":
            return self.crop_mode
        return "resized" if self.spatial_dims == 2 else "overlapping"

    def view_maker(self, size: int | None = None, crop_scale: tuple[float, float] | None = None):
        """The per-view augmentation (:class:`hfssl.data.augment.ContrastiveViews`); ``size`` and
        ``crop_scale`` override the crop (DINO's local crops), the other steps are this config's."""
        from hfssl.data.augment import ContrastiveViews

        if crop_scale is None and self.resolved_crop_mode() == "resized":
            crop_scale = (self.crop_min_area, 1.0)
        return ContrastiveViews(
            spatial_dims=self.spatial_dims,
            size=size,
            crop_scale=crop_scale,
            flip_p=self.flip_prob,
            rot90_p=self.rot90_prob,
            intensity_p=self.intensity_prob,
            brightness=tuple(self.brightness),
            contrast=tuple(self.contrast),
            blur_p=self.blur_prob,
            blur_sigma=tuple(self.blur_sigma),
            noise_p=self.noise_prob,
            noise_std=tuple(self.noise_std),
        )


def make_contrastive_views(
    config: ContrastiveConfig,
    view_maker: Any,
    pixel_values: torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two augmented views ``(B, C, *size)`` of a batch, as ``config`` says (see the module doc)."""
    gen = cpu_generator(generator)
    if config.resolved_crop_mode() == "overlapping":
        pair = overlapping_crop_pairs(
            pixel_values,
            tuple(pixel_values.shape[2:]),
            iou_threshold=config.crop_iou_threshold,
            scale=(config.crop_min_side, 1.0),
            generator=gen,
        )
        first, second = pair.view_a, pair.view_b
    else:
        first = second = pixel_values
    transform = view_maker.transform
    return transform(first, generator=gen), transform(second, generator=gen)


@torch.no_grad()
def pair_similarity_metrics(z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
    """Monitoring of two views' embeddings ``(B, D)``: positive vs negative cosine, retrieval accuracy.

    ``pos_sim``: mean cosine of the two views of an image; ``neg_sim``: mean cosine of views of
    different images; ``accuracy``: fraction of first views whose most similar second view
    (among the batch) is their own.
    """
    a = F.normalize(z_a.detach().float(), dim=1)
    b = F.normalize(z_b.detach().float(), dim=1)
    sim = a @ b.T
    n = sim.shape[0]
    pos = sim.diagonal()
    neg = (sim.sum() - pos.sum()) / max(n * n - n, 1)
    acc = (sim.argmax(dim=1) == torch.arange(n, device=sim.device)).float().mean()
    return {"pos_sim": pos.mean(), "neg_sim": neg, "accuracy": acc}


class ContrastiveViewsMixin:
    """``make_views`` of the two-view methods (SimCLR, BYOL, MoCo v2); they set ``view_maker``."""

    config: ContrastiveConfig
    view_maker: Any

    def make_views(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two augmented views of the batch."""
        return make_contrastive_views(self.config, self.view_maker, pixel_values, generator)

    def project_views(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(pooled, z_a, z_b)``: both views through the backbone in one pass (BatchNorm sees the
        whole 2N batch, as in SimCLR) and through ``self.projector``; ``pooled`` is ``(2N, D)``."""
        view_a, view_b = self.make_views(pixel_values, generator)
        pooled = self.embed(torch.cat([view_a, view_b]))  # type: ignore[attr-defined]
        z_a, z_b = self.projector(pooled).chunk(2)  # type: ignore[attr-defined]
        return pooled, z_a, z_b


def check_positive_sizes(config: Any, names: tuple[str, ...]) -> None:
    """Refuse a projector/head size field below 1 (one line naming the field)."""
    for name in names:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(config, name)}", "use a positive size")
