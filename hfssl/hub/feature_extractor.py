"""The feature extractor: the one thing evaluation protocols see, whatever the checkpoint's origin.

A :class:`FeatureExtractor` wraps a backbone (hfssl, timm or transformers) behind a uniform,
trainable ``nn.Module``:

* ``embed(pixel_values) -> (B, D)`` pooled embedding (``forward`` is ``embed``);
* ``feature_maps(pixel_values) -> list[Tensor]`` multi-scale maps, shallow to deep;
* ``embed_with_map(pixel_values) -> (embedding, map or None)`` the pooled embedding and the
  deepest feature map (``(B, C, h, w)``: CNN stage output, ViT patch tokens on their grid without
  class/register tokens) from one forward pass where the backbone allows - what distillation
  matches; ``None`` where the model gives no spatial map;
* ``in_chans``, ``image_size``, ``spatial_dims``, ``embed_dim``, ``feature_channels``,
  ``normalisation`` (``(mean, std)`` or ``None``) and ``channel_adapter``.

Inputs are always what hfssl's data layer yields: float in [0, 1], ``(B, C, H, W)`` or
``(B, C, D, H, W)`` with the *dataset's* channel count. The extractor applies the model's
normalisation and, when a grey-scale image meets an RGB model, the explicit channel adapter
(``"repeat"``: copy the grey channel; recorded in results so they say what was done).

Input size: by default images reach the backbone at the dataset's size. :meth:`FeatureExtractor.set_input_size`
makes :meth:`~FeatureExtractor.prepare` resize them (``bilinear``/``bicubic``, antialiased when
shrinking) or zero-pad them (``pad``, centred, black borders) to a square side first - how a
foundation model trained at 224 px sees 28/64 px MedMNIST images. ``interpolation`` is the model's
own resampling (its image processor's / timm ``pretrained_cfg``), which ``resize="auto"`` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hfssl.errors import DataError


@dataclass
class ExtractorInfo:
    """Where an extractor came from; goes into evaluation records verbatim."""

    spec: str
    source: str  # "hfssl" | "timm" | "transformers"
    content_hash: str  # sha256 of the weights file(s), or of the architecture for random init
    random_init: bool = False
    details: dict[str, Any] = field(default_factory=dict)


RESIZE_MODES = ("bilinear", "bicubic", "pad")


class FeatureExtractor(nn.Module):
    """Uniform view of a backbone: pooled embedding + feature maps, with input adaptation.

    Args:
        backbone: the wrapped module (its parameters are this module's parameters, so finetuning
            the extractor finetunes the backbone).
        embed_fn: ``(backbone, x) -> (B, D)`` on adapted, normalised input.
        maps_fn: ``(backbone, x) -> list of (B, C_i, ...)`` on adapted, normalised input.
        in_chans: channels the backbone expects.
        image_size: side of the images the backbone was trained on (``None`` if any size).
        spatial_dims: 2 or 3.
        embed_dim: size of the embedding.
        feature_channels: channels of each feature map, shallow to deep.
        normalisation: ``(mean, std)`` per channel applied to [0, 1] inputs, or ``None``.
        info: provenance for result records.
        interpolation: the model's own resampling for resized input (``bilinear`` or ``bicubic``).
        features_fn: optional ``(backbone, x) -> (embedding, list of maps)`` in one pass (the same
            values as ``embed_fn`` and ``maps_fn``); without it :meth:`embed_with_map` runs both.
    """

    def __init__(
        self,
        backbone: nn.Module,
        embed_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
        maps_fn: Callable[[nn.Module, torch.Tensor], Sequence[torch.Tensor]],
        *,
        in_chans: int,
        image_size: int | None,
        spatial_dims: int,
        embed_dim: int,
        feature_channels: Sequence[int],
        normalisation: tuple[Sequence[float], Sequence[float]] | None,
        info: ExtractorInfo,
        interpolation: str = "bilinear",
        features_fn: Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, Sequence[torch.Tensor]]]
        | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self._embed_fn = embed_fn
        self._maps_fn = maps_fn
        self._features_fn = features_fn
        self.in_chans = int(in_chans)
        self.image_size = image_size
        self.spatial_dims = int(spatial_dims)
        self.embed_dim = int(embed_dim)
        self.feature_channels = [int(c) for c in feature_channels]
        self.normalisation = normalisation
        self.info = info
        self.channel_adapter = "none"
        self.interpolation = interpolation if interpolation in RESIZE_MODES else "bilinear"
        self.input_size: int | None = None  # None: images go in at the dataset's size
        self.resize = "none"
        shape = (1, -1) + (1,) * self.spatial_dims
        if normalisation is not None:
            mean, std = normalisation
            self.register_buffer(
                "_mean", torch.tensor(list(mean), dtype=torch.float32).view(shape), persistent=False
            )
            self.register_buffer(
                "_std", torch.tensor(list(std), dtype=torch.float32).view(shape), persistent=False
            )
        else:
            self._mean = self._std = None

    # ------------------------------------------------------------------ input adaptation
    def prepare(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Adapt dataset images (float [0, 1], dataset channels) to what the backbone expects."""
        want_ndim = self.spatial_dims + 2
        if pixel_values.ndim != want_ndim:
            kind = "2D images (B, C, H, W)" if self.spatial_dims == 2 else "3D volumes (B, C, D, H, W)"
            raise DataError(
                f"this {self.info.source} checkpoint ({self.info.spec}) takes {kind}; got shape "
                f"{tuple(pixel_values.shape)}",
                "pair 2D checkpoints with 2D datasets and 3D checkpoints with 3D datasets",
            )
        channels = pixel_values.shape[1]
        if channels != self.in_chans:
            if channels == 1:
                # grey-scale into a multi-channel model: repeat the channel (stated in results)
                pixel_values = pixel_values.expand(-1, self.in_chans, *pixel_values.shape[2:])
                self.channel_adapter = "repeat"
            elif self.in_chans == 1 and channels == 3:
                pixel_values = pixel_values.mean(dim=1, keepdim=True)
                self.channel_adapter = "rgb-to-grey-mean"
            else:
                raise DataError(
                    f"images have {channels} channels but {self.info.spec} expects {self.in_chans}",
                    "use a checkpoint trained on images with the same channels (1 or 3)",
                )
        if self.input_size is not None:
            pixel_values = self._resize(pixel_values)
        if self._mean is not None:
            pixel_values = (pixel_values - self._mean.to(pixel_values.dtype)) / self._std.to(
                pixel_values.dtype
            )
        return pixel_values

    def set_input_size(self, size: int | None, resize: str = "auto") -> None:
        """Feed the backbone ``size``-px square inputs (``None``: the dataset's own size).

        ``resize``: ``auto`` (the model's own :attr:`interpolation`), ``bilinear``, ``bicubic`` or
        ``pad`` (zero-padding, centred; the image must not be larger than ``size``)."""
        if size is None:
            self.input_size, self.resize = None, "none"
            return
        mode = self.interpolation if resize == "auto" else resize
        if mode not in RESIZE_MODES:
            raise DataError(f"unknown resize mode {resize!r}", f"use one of: auto, {', '.join(RESIZE_MODES)}")
        if int(size) < 1:
            raise DataError(f"input size {size} is not a positive side length", "pass e.g. 224 or auto")
        self.input_size, self.resize = int(size), mode

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (channels already adapted, values in [0, 1]) brought to :attr:`input_size`."""
        size = self.input_size
        spatial = tuple(x.shape[2:])
        if all(s == size for s in spatial):
            return x
        if self.resize == "pad":
            if any(s > size for s in spatial):
                raise DataError(
                    f"cannot zero-pad {'x'.join(map(str, spatial))} images to {size} px (they are larger)",
                    "use --resize bilinear/bicubic, or a larger --input-size",
                )
            pads: list[int] = []
            for s in reversed(spatial):  # F.pad takes the last dimension first
                before = (size - s) // 2
                pads += [before, size - s - before]
            return F.pad(x, pads, value=0.0)
        mode = self.resize
        if self.spatial_dims == 3:
            mode = "trilinear"  # volumes: no bicubic in torch; trilinear is the 3D bilinear
        shrink = any(s > size for s in spatial)
        out = F.interpolate(
            x.float(),
            size=(size,) * self.spatial_dims,
            mode=mode,
            align_corners=False,
            antialias=shrink and mode in ("bilinear", "bicubic"),
        ).to(x.dtype)
        return out.clamp_(0.0, 1.0) if mode == "bicubic" else out  # bicubic overshoots [0, 1]

    # ------------------------------------------------------------------ the contract
    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pooled embedding ``(B, embed_dim)``."""
        return self._embed_fn(self.backbone, self.prepare(pixel_values))

    def feature_maps(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps, shallow to deep."""
        return list(self._maps_fn(self.backbone, self.prepare(pixel_values)))

    def embed_with_map(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(embedding (B, embed_dim), deepest map (B, C, *grid) or None)``, one pass where possible.

        The map is the last of :meth:`feature_maps` (channels first, ``spatial_dims`` grid axes);
        ``None`` when the model has none (no maps, or the deepest one is not spatial)."""
        x = self.prepare(pixel_values)
        if self._features_fn is not None:
            pooled, maps = self._features_fn(self.backbone, x)
        else:
            pooled, maps = self._embed_fn(self.backbone, x), self._maps_fn(self.backbone, x)
        maps = list(maps)
        deepest = maps[-1] if maps else None
        if deepest is None or deepest.ndim != self.spatial_dims + 2:
            deepest = None
        return pooled, deepest

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.embed(pixel_values)

    def describe(self) -> dict[str, Any]:
        """Plain-data summary for result records."""
        return {
            "spec": self.info.spec,
            "source": self.info.source,
            "content_hash": self.info.content_hash,
            "random_init": self.info.random_init,
            "in_chans": self.in_chans,
            "image_size": self.image_size,
            "spatial_dims": self.spatial_dims,
            "embed_dim": self.embed_dim,
            "normalisation": None if self.normalisation is None else [list(x) for x in self.normalisation],
            "channel_adapter": self.channel_adapter,
            "interpolation": self.interpolation,
            "input_size": self.input_size,
            "resize": self.resize,
            **self.info.details,
        }
