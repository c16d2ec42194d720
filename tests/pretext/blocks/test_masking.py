"""MAE random masking (against the reference algorithm), patchify, Rubik's cube+ masking."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import cube_masking, patchify, random_masking, restore_tokens, unpatchify


def mae_reference(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor):
    """``MaskedAutoencoderViT.random_masking`` from facebookresearch/mae, with given noise."""
    n, length, d = x.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, d))
    mask = torch.ones([n, length])
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return x_masked, mask, ids_restore


def test_random_masking_equals_mae_reference() -> None:
    tokens = torch.randn(3, 16, 5)
    kept, mask, ids_restore = random_masking(tokens, 0.75, torch.Generator().manual_seed(0))
    noise = torch.rand(3, 16, generator=torch.Generator().manual_seed(0))
    ref = mae_reference(tokens, 0.75, noise)
    assert torch.equal(kept, ref[0]) and torch.equal(mask, ref[1]) and torch.equal(ids_restore, ref[2])
    assert kept.shape == (3, 4, 5) and mask.sum(1).tolist() == [12.0] * 3


def test_restore_tokens_puts_tokens_back() -> None:
    tokens = torch.randn(2, 10, 3)
    kept, mask, ids_restore = random_masking(tokens, 0.6, torch.Generator().manual_seed(1))
    mask_token = torch.full((3,), 7.0)
    full = restore_tokens(kept, mask_token, ids_restore)
    keep = mask == 0
    assert torch.equal(full[keep], tokens[keep])
    assert bool((full[~keep] == 7.0).all())
    with pytest.raises(ConfigError):
        random_masking(tokens, 1.0)


def test_patchify_matches_mae_and_round_trips() -> None:
    imgs = torch.randn(2, 3, 8, 12)
    p = 4
    ref = imgs.reshape(2, 3, 2, p, 3, p)
    ref = torch.einsum("nchpwq->nhwpqc", ref).reshape(2, 6, p * p * 3)
    assert torch.equal(patchify(imgs, p), ref)
    assert torch.equal(unpatchify(ref, p, (8, 12)), imgs)
    vol = torch.randn(2, 1, 8, 8, 8)
    tokens = patchify(vol, (2, 4, 4))
    assert tokens.shape == (2, 16, 32)
    assert torch.equal(unpatchify(tokens, (2, 4, 4), (8, 8, 8)), vol)
    torch.testing.assert_close(tokens[:, 0], vol[:, 0, :2, :4, :4].reshape(2, -1))
    with pytest.raises(ConfigError):
        patchify(imgs, 5)


def test_cube_masking_labels_are_exact() -> None:
    cubes = torch.full((4, 8, 1, 6, 6, 6), 2.0)
    masked, labels = cube_masking(
        cubes, prob=0.5, ratio=(0.5, 0.5), generator=torch.Generator().manual_seed(2)
    )
    changed = (masked != cubes).flatten(2)
    assert torch.equal(changed.any(-1).long(), labels)
    assert 0 < int(labels.sum()) < labels.numel()
    # a masked cube loses exactly a 3x3x3 box (ratio 0.5 of side 6)
    assert set(changed[labels.bool()].sum(-1).tolist()) == {27}
    same, none = cube_masking(cubes, prob=0.0)
    assert torch.equal(same, cubes) and int(none.sum()) == 0
    tiles2d = torch.rand(2, 4, 1, 8, 8)
    masked2d, labels2d = cube_masking(
        tiles2d, prob=1.0, fill="zero", generator=torch.Generator().manual_seed(3)
    )
    assert bool(labels2d.all()) and bool(((masked2d == 0).flatten(2).sum(-1) >= 4).all())
