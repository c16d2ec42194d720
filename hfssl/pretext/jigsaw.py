"""Jigsaw puzzles (Noroozi & Favaro, ECCV 2016; 3D as in Taleb et al. 2020), 2D and 3D.

The image is cut into a grid of tiles (2D: 3x3, 3D: 2x2x2 cubes), jittered and separated by a
gap so edges cannot be matched (:func:`~hfssl.pretext.blocks.jigsaw_tiles`). The tiles are
shuffled by one member of a fixed set of permutations chosen for maximal Hamming distance
(:func:`~hfssl.pretext.blocks.hamming_permutation_set`, deterministic for ``perm_seed``), and
the network predicts which one. Every tile goes through the same backbone (the shared tile
encoder, one batched call); the pooled tile embeddings are concatenated in shuffled order and
classified by FC 1024-1024-#perm.

The permutation set is a persistent buffer, so a checkpoint carries the exact classes it was
trained on.
"""

from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch.nn import functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextConfig, PretextModel, PretextOutput, accuracy
from hfssl.pretext.blocks import classification_head, encode_tiles, hamming_permutation_set, jigsaw_tiles
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import check_permutation_config, check_tile_config, default_grid, resize_tiles


@strict
class JigsawConfig(PretextConfig):
    r"""Configuration of Jigsaw.

    Args:
        grid (`int`, *optional*): tiles per side; default 3 in 2D (9 tiles), 2 in 3D (8 cubes).
        num_perms (`int`, defaults to 100): size of the permutation set (= number of classes).
        perm_seed (`int`, defaults to 0): seed of the greedy Hamming-distance selection.
        perm_method (`str`, defaults to `"maxmin"`): ``"maxmin"`` (maximise the minimum Hamming
            distance) or ``"maxmean"`` (Noroozi & Favaro's released code).
        gap (`int`, *optional*): minimum pixels between tiles; default ``max(1, cell // 10)``.
        jitter (`int`, *optional*): maximum random shift of a tile in its cell; same default.
        tile_size (`int`, *optional*): side the tiles are resized to before the shared encoder;
            default: the cut size, raised to the backbone's minimum (8 for ``unet3d_encoder``).
        head_depth (`int`, defaults to 2): hidden FC layers of the classifier (2 = FC 1024-1024-#perm).
        head_hidden_dim (`int`, defaults to 1024): their width.
    """

    model_type = "hfssl_jigsaw"

    grid: int | None = None
    num_perms: int = 100
    perm_seed: int = 0
    perm_method: str = "maxmin"
    gap: int | None = None
    jitter: int | None = None
    tile_size: int | None = None
    head_depth: int = 2
    head_hidden_dim: int = 1024

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.grid is None:
            object.__setattr__(self, "grid", default_grid(self.spatial_dims))
        if self.grid < 2:
            raise ConfigError(f"grid must be >= 2, got {self.grid}", "use 3 for 2D, 2 for 3D")
        if self.head_depth < 0 or self.head_hidden_dim < 1:
            raise ConfigError(
                f"head_depth must be >= 0 and head_hidden_dim >= 1, got {self.head_depth} / {self.head_hidden_dim}",
                "use head_depth=2 and head_hidden_dim=1024 (FC 1024-1024-#perm)",
            )
        check_permutation_config(self.num_tiles, self.num_perms, self.perm_method)
        check_tile_config(self.get_backbone_config(), self.grid, self.gap, self.jitter, self.tile_size)

    @property
    def num_tiles(self) -> int:
        return int(self.grid) ** self.spatial_dims


@register_pretext("jigsaw")
class JigsawForPretraining(PretextModel):
    """Jigsaw puzzle: classify which of ``num_perms`` permutations shuffled the tiles."""

    config_class = JigsawConfig

    def __init__(self, config: JigsawConfig) -> None:
        super().__init__(config)
        perms = hamming_permutation_set(
            config.num_tiles, config.num_perms, config.perm_seed, config.perm_method
        )
        self.register_buffer("permutations", perms, persistent=True)
        self.head = classification_head(
            config.num_tiles * self.backbone.num_features,
            config.num_perms,
            depth=config.head_depth,
            hidden_dim=config.head_hidden_dim,
        )
        self.post_init()

    def make_views(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(shuffled tiles (B, T, C, *tile), labels (B,))``.

        ``tiles[:, i]`` is the original tile ``permutations[label, i]`` (row-major grid order).
        """
        cfg = self.config
        tiles, labels = jigsaw_tiles(pixel_values, self.permutations, cfg.gap, cfg.jitter, generator)
        return resize_tiles(tiles, self.backbone.config, cfg.tile_size), labels

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        tiles, labels = self.make_views(pixel_values, generator)
        features = encode_tiles(self.embed, tiles)  # (B, T, D)
        logits = self.head(features.flatten(1))
        loss = F.cross_entropy(logits, labels)
        out = PretextOutput(
            loss=loss,
            logits=logits,
            labels=labels,
            embeddings=features.mean(dim=1),  # order-invariant summary of the image's tiles
            metrics={"accuracy": accuracy(logits, labels)},
        )
        return out if return_dict is not False else out.to_tuple()
