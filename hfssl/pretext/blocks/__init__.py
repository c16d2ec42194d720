"""Reusable building blocks of the pretext tasks, independent of the model core.

Every block is batched, works on 2D ``(B, C, H, W)`` and 3D ``(B, C, D, H, W)`` inputs where
that makes sense, takes an optional ``torch.Generator`` for reproducible randomness, and is
tested on its own:

* losses: :class:`NTXentLoss`, :func:`info_nce`, :func:`byol_loss`, :func:`barlow_twins_loss`,
  :func:`vicreg_terms` (multi-process correct)
* heads: :class:`MLPHead`, :func:`classification_head`, :func:`encode_tiles`, :class:`DINOHead`
* DINO: :func:`dino_loss`, :func:`teacher_distribution`, :func:`dino_cross_entropy`, :func:`centre_update` (the running centre, averaged over processes)
* momentum: :func:`frozen_copy`, :func:`update_momentum`, :func:`cosine_momentum_schedule`,
  :class:`EMAUpdater`, :class:`MomentumCopiesMixin`, :class:`MemoryQueue`
* context tasks: :func:`hamming_permutation_set`, :func:`grid_patches`, :func:`rpl_pairs`,
  :func:`jigsaw_tiles`, :func:`rubik_cubes`, :func:`rotate_2d`, :func:`rotate_3d`
* restoration: :func:`models_genesis_transform` and its parts, :func:`random_masking`,
  :func:`patchify`, :func:`cube_masking`
* views: :func:`overlapping_crop_pairs`
"""

from hfssl.pretext.blocks.crops import CropPair, box_iou, crop_resize, overlapping_crop_pairs, random_boxes
from hfssl.pretext.blocks.dino import (
    DINOHead,
    NormalizedLinear,
    centre_update,
    dino_cross_entropy,
    dino_loss,
    teacher_distribution,
)
from hfssl.pretext.blocks.distributed import (
    gather_no_grad,
    gather_with_grad,
    is_distributed,
    rank,
    world_size,
)
from hfssl.pretext.blocks.ema import (
    EMAUpdater,
    MomentumCopiesMixin,
    cosine_momentum_schedule,
    frozen_copy,
    update_momentum,
)
from hfssl.pretext.blocks.genesis import (
    GenesisConfig,
    bezier_nonlinear,
    in_painting,
    local_pixel_shuffle,
    models_genesis_transform,
    out_painting,
    random_flip,
)
from hfssl.pretext.blocks.heads import MLPHead, classification_head, encode_tiles
from hfssl.pretext.blocks.masking import cube_masking, patchify, random_masking, restore_tokens, unpatchify
from hfssl.pretext.blocks.nt_xent import ContrastiveStats, NTXentLoss, byol_loss, info_nce
from hfssl.pretext.blocks.patches import (
    RubikCubes,
    extract_patches,
    grid_patch_starts,
    grid_patches,
    jigsaw_tiles,
    patch_geometry,
    permute_tiles,
    rotate_cubes,
    rpl_pairs,
    rubik_cubes,
)
from hfssl.pretext.blocks.permutations import hamming_permutation_set, min_hamming_distance
from hfssl.pretext.blocks.queue import MemoryQueue
from hfssl.pretext.blocks.redundancy import barlow_twins_loss, off_diagonal, off_diagonal_sum, vicreg_terms
from hfssl.pretext.blocks.rotations import (
    NUM_ROTATIONS_2D,
    NUM_ROTATIONS_3D,
    ROTATIONS_3D,
    Rotation3D,
    inverse_rotation_3d,
    random_rotation,
    rotate_2d,
    rotate_3d,
)

__all__ = [
    "CropPair",
    "ContrastiveStats",
    "EMAUpdater",
    "GenesisConfig",
    "MLPHead",
    "MemoryQueue",
    "MomentumCopiesMixin",
    "NTXentLoss",
    "NUM_ROTATIONS_2D",
    "NUM_ROTATIONS_3D",
    "ROTATIONS_3D",
    "Rotation3D",
    "RubikCubes",
    "bezier_nonlinear",
    "box_iou",
    "byol_loss",
    "classification_head",
    "cosine_momentum_schedule",
    "crop_resize",
    "cube_masking",
    "encode_tiles",
    "extract_patches",
    "frozen_copy",
    "gather_no_grad",
    "gather_with_grad",
    "grid_patch_starts",
    "grid_patches",
    "hamming_permutation_set",
    "in_painting",
    "info_nce",
    "inverse_rotation_3d",
    "is_distributed",
    "jigsaw_tiles",
    "local_pixel_shuffle",
    "min_hamming_distance",
    "models_genesis_transform",
    "out_painting",
    "overlapping_crop_pairs",
    "patch_geometry",
    "patchify",
    "permute_tiles",
    "random_boxes",
    "random_flip",
    "random_masking",
    "random_rotation",
    "rank",
    "restore_tokens",
    "rotate_2d",
    "rotate_3d",
    "rotate_cubes",
    "rpl_pairs",
    "rubik_cubes",
    "unpatchify",
    "update_momentum",
    "world_size",
    "barlow_twins_loss",
    "off_diagonal",
    "off_diagonal_sum",
    "vicreg_terms",
    "DINOHead",
    "NormalizedLinear",
    "centre_update",
    "dino_cross_entropy",
    "dino_loss",
    "teacher_distribution",
]
