"""SimCLR (Chen et al., ICML 2020): contrast two augmented views of each image with NT-Xent.

Both views of a batch go through the backbone and a projector (FC 512 -> BN -> ReLU -> FC 256
by default); the NT-Xent loss pulls the two projections of an image together and pushes the
other ``2N - 2`` projections of the (global) batch away. Negatives are gathered across
processes with gradients by :class:`~hfssl.pretext.blocks.NTXentLoss`.

This module also holds the view settings shared by the contrastive methods (SimCLR, BYOL,
MoCo v2): :class:`ContrastiveConfig`, :func:`make_contrastive_views` and :class:`ContrastiveViewsMixin`. Medical views are
geometric + blur + noise, never colour jitter or greyscale (the images are grey already):

* **crop** - 2D: a random resized crop per view (area ``crop_min_area``..1, back to the input
  size); 3D: two *overlapping* random crops (side ``crop_min_side``..1 of the volume, IoU >
  ``crop_iou_threshold`` = 0.25, the paper's 3D positive pairs), resized to the input size.
  ``crop_mode`` picks one explicitly (``"resized"``, ``"overlapping"``, ``"none"``).
* then per view: flip (``flip_prob``), rot90 (``rot90_prob``), Gaussian blur (``blur_prob``,
  ``blur_sigma`` px), Gaussian noise (``noise_prob``, ``noise_std``) - the batched transforms of
  :class:`hfssl.data.augment.ContrastiveViews`.
"""

from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextConfig, PretextModel, PretextOutput
from hfssl.pretext.blocks import MLPHead, NTXentLoss, overlapping_crop_pairs
from hfssl.pretext.registry import register_pretext

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
        for name in ("blur_sigma", "noise_std"):
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

    def view_maker(self):
        """The per-view augmentation (:class:`hfssl.data.augment.ContrastiveViews`)."""
        from hfssl.data.augment import ContrastiveViews

        resized = self.resolved_crop_mode() == "resized"
        return ContrastiveViews(
            spatial_dims=self.spatial_dims,
            crop_scale=(self.crop_min_area, 1.0) if resized else None,
            flip_p=self.flip_prob,
            rot90_p=self.rot90_prob,
            blur_p=self.blur_prob,
            blur_sigma=tuple(self.blur_sigma),
            noise_p=self.noise_prob,
            noise_std=tuple(self.noise_std),
        )


def cpu_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """A CPU generator for the batched augmentations (they draw parameters on the CPU).

    A CPU generator is returned as is; one on another device seeds a fresh CPU generator from
    its own stream, so views stay reproducible for a seed.
    """
    if generator is None or generator.device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return torch.Generator().manual_seed(seed)


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


@strict
class SimCLRConfig(ContrastiveConfig):
    r"""Configuration of SimCLR (plus the view settings of :class:`ContrastiveConfig`).

    Args:
        projection_dim (`int`, defaults to 256): projector output (the paper's 512 -> 256).
        projection_hidden_dim (`int`, defaults to 512): projector hidden width.
        projection_layers (`int`, defaults to 2): Linear layers of the projector (SimCLR v1: 2).
        temperature (`float`, defaults to 0.1): NT-Xent temperature.
        gather_distributed (`bool`, defaults to `True`): use the other processes' embeddings as
            negatives (gathered with gradients).
    """

    model_type = "hfssl_simclr"

    projection_dim: int = 256
    projection_hidden_dim: int = 512
    projection_layers: int = 2
    temperature: float = 0.1
    gather_distributed: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        for name in ("projection_dim", "projection_hidden_dim", "projection_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}", "use a positive size")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}", "use e.g. 0.1")
        super().__post_init__(**kwargs)


@register_pretext("simclr")
class SimCLRForPretraining(ContrastiveViewsMixin, PretextModel):
    """SimCLR: backbone + projector, NT-Xent between two views of each image."""

    config_class = SimCLRConfig

    def __init__(self, config: SimCLRConfig) -> None:
        super().__init__(config)
        self.projector = MLPHead(
            self.backbone.num_features,
            config.projection_hidden_dim,
            config.projection_dim,
            num_layers=config.projection_layers,
        )
        self.criterion = NTXentLoss(config.temperature, gather_distributed=config.gather_distributed)
        self.view_maker = config.view_maker()
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        view_a, view_b = self.make_views(pixel_values, generator)
        # one backbone pass over both views: BatchNorm sees the whole 2N batch, as in SimCLR
        pooled = self.embed(torch.cat([view_a, view_b]))
        z_a, z_b = self.projector(pooled).chunk(2)
        loss, stats = self.criterion(z_a, z_b, return_stats=True)
        metrics = pair_similarity_metrics(z_a, z_b)
        # NT-Xent's own statistics (over the gathered batch, both views as negatives)
        metrics["pos_sim"], metrics["neg_sim"] = stats.pos_sim, stats.neg_sim
        out = PretextOutput(loss=loss, embeddings=pooled[: pixel_values.shape[0]], metrics=metrics)
        return out if return_dict is not False else out.to_tuple()
