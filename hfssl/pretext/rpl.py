"""RPL: relative patch location (Doersch et al., ICCV 2015), 2D and 3D.

The image is divided into a 3x3 grid (3D: 3x3x3); the centre patch is the reference and the
network predicts where one other, randomly chosen patch lies relative to it (8-way in 2D,
26-way in 3D). Patches are cut smaller than their grid cells and jittered inside them
(``gap`` / ``jitter``, see :func:`~hfssl.pretext.blocks.rpl_pairs`), so the task cannot be
solved by matching edges or constant offsets. Both patches go through the same backbone
(two weight-sharing branches); their pooled embeddings are concatenated and classified by
the paper's shallow head (FC 1024 -> classes; ``head_depth`` sets the hidden layers).

This module also holds the small tile helpers shared by the grid tasks (RPL, Jigsaw,
Rubik's cube): tiles cut from 28 px images are tiny (7 px for a 3x3 grid), so a tile size can
be set (``tile_size``) at which tiles are resized before the shared encoder, and encoders that
need a minimum input side (the 3D U-Net encoder's three max-pools need 8 voxels) get their
tiles upsampled to it automatically.
"""

from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch.nn import functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextConfig, PretextModel, PretextOutput, accuracy
from hfssl.pretext.blocks import classification_head, encode_tiles, rpl_pairs
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import check_tile_config, resize_tiles


@strict
class RPLConfig(PretextConfig):
    r"""Configuration of RPL (relative patch location).

    Args:
        grid (`int`, defaults to 3): patches per side (3x3 in 2D, 3x3x3 in 3D); must be odd so
            there is a centre patch. Classes: ``grid**dims - 1`` (8 in 2D, 26 in 3D).
        gap (`int`, *optional*): minimum pixels between neighbouring patches; default
            ``max(1, cell // 10)`` with ``cell = image_size // grid``.
        jitter (`int`, *optional*): maximum random shift of a patch inside its cell; same default.
        tile_size (`int`, *optional*): side the two patches are resized to before the backbone;
            default: the cut size (7 px for 28 px images), raised to the backbone's minimum
            (8 for ``unet3d_encoder``) when needed.
        head_depth (`int`, defaults to 1): hidden FC layers of the classifier (1 = the shallow
            FC 1024 -> classes head).
        head_hidden_dim (`int`, defaults to 1024): their width.
    """

    model_type = "hfssl_rpl"

    grid: int = 3
    gap: int | None = None
    jitter: int | None = None
    tile_size: int | None = None
    head_depth: int = 1
    head_hidden_dim: int = 1024

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.grid < 3 or self.grid % 2 == 0:
            raise ConfigError(
                f"RPL needs an odd grid >= 3 (a centre patch with neighbours), got grid={self.grid}",
                "use grid=3",
            )
        if self.head_depth < 0 or self.head_hidden_dim < 1:
            raise ConfigError(
                f"head_depth must be >= 0 and head_hidden_dim >= 1, got {self.head_depth} / {self.head_hidden_dim}",
                "use head_depth=1 (shallow) and head_hidden_dim=1024",
            )
        check_tile_config(self.get_backbone_config(), self.grid, self.gap, self.jitter, self.tile_size)

    @property
    def num_classes(self) -> int:
        """Number of relative positions: every grid cell but the centre."""
        return self.grid**self.spatial_dims - 1


@register_pretext("rpl")
class RPLForPretraining(PretextModel):
    """Relative patch location: classify the position of a patch relative to the centre patch."""

    config_class = RPLConfig

    def __init__(self, config: RPLConfig) -> None:
        super().__init__(config)
        self.head = classification_head(
            2 * self.backbone.num_features,
            config.num_classes,
            depth=config.head_depth,
            hidden_dim=config.head_hidden_dim,
        )
        self.post_init()

    def make_views(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pairs (B, 2, C, *tile), labels (B,))``: centre patch, other patch, relative position.

        ``labels`` index the non-centre cells in row-major order (see
        :func:`~hfssl.pretext.blocks.rpl_pairs`); the pair is resized for the encoder if needed.
        """
        cfg = self.config
        centre, other, labels = rpl_pairs(pixel_values, cfg.grid, cfg.gap, cfg.jitter, generator)
        pairs = torch.stack([centre, other], dim=1)
        return resize_tiles(pairs, self.backbone.config, cfg.tile_size), labels

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        pairs, labels = self.make_views(pixel_values, generator)
        features = encode_tiles(self.embed, pairs)  # (B, 2, D), one shared encoder call
        logits = self.head(features.flatten(1))
        loss = F.cross_entropy(logits, labels)
        out = PretextOutput(
            loss=loss,
            logits=logits,
            labels=labels,
            embeddings=features[:, 0],
            metrics={"accuracy": accuracy(logits, labels)},
        )
        return out if return_dict is not False else out.to_tuple()
