"""RKB: Rubik's cube (Zhuang et al., MICCAI 2019) and RKB+: Rubik's cube+ (Zhu et al., MedIA 2020).

The volume is cut into a 2x2x2 grid of cubes (2D: a 3x3 grid of tiles), the cubes are
shuffled by one member of a maximal-Hamming-distance permutation set (as Jigsaw) and each
cube is, with probability ``rotate_prob``, turned by 180 degrees horizontally or vertically
(:func:`~hfssl.pretext.blocks.rubik_cubes`; in 2D the out-of-plane 180-degree turns are
mirrors: horizontal flips W, vertical flips H). RKB+ also masks each cube with probability
``mask_prob`` (a random sub-box replaced by noise).

A shared encoder (the backbone) embeds every cube; the embeddings are concatenated in
shuffled order and fed to

* the ordering head (FC 1024-1024-#perm by default; cross-entropy),
* two per-cube rotation heads, horizontal and vertical (one logit per cube; binary
  cross-entropy), and for RKB+
* a per-cube masking head (one logit per cube; binary cross-entropy).

Zhang et al. (2023) found deep rotation heads collapse to the constant "not rotated", so the
rotation and mask heads default to shallow (FC 1024 -> classes); ``rotation_head_depth`` /
``mask_head_depth`` make the depth a choice for the architecture study. The loss is
``order_weight * L_order + rotation_weight * (L_hrot + L_vrot) / 2 [+ mask_weight * L_mask]``.
"""

from dataclasses import dataclass
from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch.nn import functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextConfig, PretextModel, PretextOutput, accuracy
from hfssl.pretext.blocks import (
    RubikCubes,
    classification_head,
    encode_tiles,
    hamming_permutation_set,
    rubik_cubes,
)
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import check_permutation_config, check_tile_config, default_grid, resize_tiles


@strict
class RKBConfig(PretextConfig):
    r"""Configuration of RKB (Rubik's cube: cube ordering + per-cube rotations).

    Args:
        grid (`int`, *optional*): cubes per side; default 2 in 3D (2x2x2), 3 in 2D (3x3 tiles).
        num_perms (`int`, defaults to 100): size of the ordering permutation set.
        perm_seed (`int`, defaults to 0): seed of the greedy Hamming-distance selection.
        perm_method (`str`, defaults to `"maxmin"`): ``"maxmin"`` or ``"maxmean"``.
        rotate_prob (`float`, defaults to 0.5): probability that a cube is turned by 180 degrees
            (then horizontally or vertically with equal chance, never both).
        gap (`int`, *optional*): minimum pixels between cubes; default ``max(1, cell // 10)``.
        jitter (`int`, *optional*): maximum random shift of a cube in its cell; same default.
        tile_size (`int`, *optional*): side the cubes are resized to before the shared encoder;
            default: the cut size, raised to the backbone's minimum (8 for ``unet3d_encoder``).
        order_head_depth (`int`, defaults to 2): hidden FC layers of the ordering head
            (FC 1024-1024-#perm as Jigsaw).
        rotation_head_depth (`int`, defaults to 1): hidden FC layers of each rotation head
            (1 = shallow FC 1024 -> per-cube logits; deeper heads tend to collapse).
        head_hidden_dim (`int`, defaults to 1024): width of every hidden FC layer.
        order_weight (`float`, defaults to 1.0): weight of the ordering loss.
        rotation_weight (`float`, defaults to 1.0): weight of the (mean) rotation loss.
    """

    model_type = "hfssl_rkb"

    grid: int | None = None
    num_perms: int = 100
    perm_seed: int = 0
    perm_method: str = "maxmin"
    rotate_prob: float = 0.5
    gap: int | None = None
    jitter: int | None = None
    tile_size: int | None = None
    order_head_depth: int = 2
    rotation_head_depth: int = 1
    head_hidden_dim: int = 1024
    order_weight: float = 1.0
    rotation_weight: float = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.grid is None:
            object.__setattr__(self, "grid", default_grid(self.spatial_dims))
        if self.grid < 2:
            raise ConfigError(f"grid must be >= 2, got {self.grid}", "use 2 for 3D (2x2x2), 3 for 2D")
        if not 0.0 <= self.rotate_prob <= 1.0:
            raise ConfigError(f"rotate_prob must be in [0, 1], got {self.rotate_prob}", "use e.g. 0.5")
        depths = {name: getattr(self, name) for name in self._depth_fields()}
        if min(depths.values()) < 0 or self.head_hidden_dim < 1:
            raise ConfigError(
                f"head depths must be >= 0 and head_hidden_dim >= 1, got {depths} / {self.head_hidden_dim}",
                "use order_head_depth=2, rotation/mask head depth 1 and head_hidden_dim=1024",
            )
        weights = {name: getattr(self, name) for name in self._weight_fields()}
        if min(weights.values()) < 0 or sum(weights.values()) <= 0:
            raise ConfigError(
                f"loss weights must be >= 0 and not all 0, got {weights}", "use e.g. 1.0 for every task"
            )
        check_permutation_config(self.num_tiles, self.num_perms, self.perm_method)
        check_tile_config(self.get_backbone_config(), self.grid, self.gap, self.jitter, self.tile_size)

    def _depth_fields(self) -> tuple[str, ...]:
        return ("order_head_depth", "rotation_head_depth")

    def _weight_fields(self) -> tuple[str, ...]:
        return ("order_weight", "rotation_weight")

    @property
    def num_tiles(self) -> int:
        return int(self.grid) ** self.spatial_dims


@strict
class RKBPlusConfig(RKBConfig):
    r"""Configuration of RKB+ (Rubik's cube+: ordering + rotations + per-cube masking).

    Takes every :class:`RKBConfig` argument, and:

    Args:
        mask_prob (`float`, defaults to 0.5): probability that a cube is masked (a random
            sub-box of 25-50 % of its side per dimension replaced by uniform noise).
        mask_head_depth (`int`, defaults to 1): hidden FC layers of the masking head (shallow).
        mask_weight (`float`, defaults to 1.0): weight of the masking loss.
    """

    model_type = "hfssl_rkb_plus"

    mask_prob: float = 0.5
    mask_head_depth: int = 1
    mask_weight: float = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        if not 0.0 <= self.mask_prob <= 1.0:
            raise ConfigError(f"mask_prob must be in [0, 1], got {self.mask_prob}", "use e.g. 0.5")
        super().__post_init__(**kwargs)

    def _depth_fields(self) -> tuple[str, ...]:
        return (*super()._depth_fields(), "mask_head_depth")

    def _weight_fields(self) -> tuple[str, ...]:
        return (*super()._weight_fields(), "mask_weight")


@dataclass
class RubikOutput(PretextOutput):
    """:class:`PretextOutput` (``logits`` / ``labels`` = cube ordering) plus the per-cube tasks.

    Args:
        hrot_logits / vrot_logits: ``(B, T)`` logits "cube in slot i was turned horizontally /
            vertically"; ``hrot_labels`` / ``vrot_labels`` their 0/1 targets.
        mask_logits / mask_labels: the same for "cube in slot i was masked" (RKB+ only).
    """

    hrot_logits: torch.FloatTensor | None = None
    vrot_logits: torch.FloatTensor | None = None
    mask_logits: torch.FloatTensor | None = None
    hrot_labels: torch.LongTensor | None = None
    vrot_labels: torch.LongTensor | None = None
    mask_labels: torch.LongTensor | None = None


def _binary_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return ((logits.detach() > 0).long() == labels).float().mean()


@register_pretext("rkb")
class RKBForPretraining(PretextModel):
    """Rubik's cube: cube ordering + per-cube horizontal / vertical rotation recognition."""

    config_class = RKBConfig

    def __init__(self, config: RKBConfig) -> None:
        super().__init__(config)
        self.use_masking = isinstance(config, RKBPlusConfig)
        perms = hamming_permutation_set(
            config.num_tiles, config.num_perms, config.perm_seed, config.perm_method
        )
        self.register_buffer("permutations", perms, persistent=True)
        in_dim = config.num_tiles * self.backbone.num_features

        def head(out_dim: int, depth: int) -> torch.nn.Module:
            return classification_head(in_dim, out_dim, depth=depth, hidden_dim=config.head_hidden_dim)

        self.order_head = head(config.num_perms, config.order_head_depth)
        self.hrot_head = head(config.num_tiles, config.rotation_head_depth)
        self.vrot_head = head(config.num_tiles, config.rotation_head_depth)
        if self.use_masking:
            self.mask_head = head(config.num_tiles, config.mask_head_depth)
        self.post_init()

    def make_views(self, pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> RubikCubes:
        """The shuffled, rotated (and masked) cubes and their labels (:class:`~hfssl.pretext.blocks.RubikCubes`).

        Per-cube labels refer to the shuffled slots; cubes are resized for the encoder if needed.
        """
        cfg = self.config
        views = rubik_cubes(
            pixel_values,
            self.permutations,
            rotate_prob=cfg.rotate_prob,
            mask_prob=cfg.mask_prob if self.use_masking else None,
            gap=cfg.gap,
            jitter=cfg.jitter,
            generator=generator,
        )
        return views._replace(cubes=resize_tiles(views.cubes, self.backbone.config, cfg.tile_size))

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> RubikOutput | tuple:
        self.check_pixel_values(pixel_values)
        cfg = self.config
        views = self.make_views(pixel_values, generator)
        features = encode_tiles(self.embed, views.cubes)  # (B, T, D)
        flat = features.flatten(1)
        logits = self.order_head(flat)
        hrot_logits = self.hrot_head(flat)
        vrot_logits = self.vrot_head(flat)
        order_loss = F.cross_entropy(logits, views.order)
        rotation_loss = 0.5 * (
            F.binary_cross_entropy_with_logits(hrot_logits, views.hrot.float())
            + F.binary_cross_entropy_with_logits(vrot_logits, views.vrot.float())
        )
        loss = cfg.order_weight * order_loss + cfg.rotation_weight * rotation_loss
        metrics = {
            "accuracy": accuracy(logits, views.order),
            "order_loss": order_loss.detach(),
            "rotation_loss": rotation_loss.detach(),
            "hrot_accuracy": _binary_accuracy(hrot_logits, views.hrot),
            "vrot_accuracy": _binary_accuracy(vrot_logits, views.vrot),
        }
        mask_logits = None
        if self.use_masking:
            mask_logits = self.mask_head(flat)
            mask_loss = F.binary_cross_entropy_with_logits(mask_logits, views.mask.float())
            loss = loss + cfg.mask_weight * mask_loss
            metrics["mask_loss"] = mask_loss.detach()
            metrics["mask_accuracy"] = _binary_accuracy(mask_logits, views.mask)
        out = RubikOutput(
            loss=loss,
            logits=logits,
            labels=views.order,
            embeddings=features.mean(dim=1),
            metrics=metrics,
            hrot_logits=hrot_logits,
            vrot_logits=vrot_logits,
            mask_logits=mask_logits,
            hrot_labels=views.hrot,
            vrot_labels=views.vrot,
            mask_labels=views.mask,
        )
        return out if return_dict is not False else out.to_tuple()


@register_pretext("rkb_plus")
class RKBPlusForPretraining(RKBForPretraining):
    """Rubik's cube+: RKB plus per-cube masking recognition."""

    config_class = RKBPlusConfig
