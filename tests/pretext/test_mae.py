"""MAE: masking, patch order, loss on masked patches only, ViT-only config, round trip, and learning."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.mae import MAEConfig, MAEForPretraining
from hfssl.pretext.registry import get_pretext_class
from tests.pretext._helpers import (
    assert_grads_reach_backbone,
    assert_round_trip,
    backbone_2d,
    backbone_3d,
    evaluate,
    train_briefly,
)

TINY_DECODER = {"decoder_dim": 64, "decoder_depth": 1, "decoder_num_heads": 4}


def vit_config(depth: int = 2):
    """A light ViT-Tiny for 28 px: 4 px patches (7 x 7 = 49 tokens), ``depth`` blocks."""
    return backbone_2d(
        "vit_tiny_patch16_224", backbone_kwargs={"patch_size": 4, "depth": depth}, decoder_channels=[64]
    )


def _model(**kwargs) -> MAEForPretraining:
    return MAEForPretraining(MAEConfig(backbone_config=vit_config(), **{**TINY_DECODER, **kwargs}))


def test_registered_by_name():
    assert get_pretext_class("mae") is MAEForPretraining


def test_needs_a_2d_vit():
    with pytest.raises(ConfigError, match="ViT"):
        MAEConfig(backbone_config=backbone_2d())
    with pytest.raises(ConfigError, match="3D"):
        MAEConfig(backbone_config=backbone_3d())


@pytest.mark.parametrize(
    "bad",
    [
        {"mask_ratio": 1.0},
        {"mask_ratio": 0.0},
        {"decoder_dim": 66, "decoder_num_heads": 4},
        {"decoder_depth": 0},
    ],
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ConfigError):
        MAEConfig(backbone_config=vit_config(), **{**TINY_DECODER, **bad})


def test_patch_targets_follow_the_vit_token_order():
    model = _model()
    x = torch.zeros(1, 1, 28, 28)
    x[..., 8:12, 20:24] = 1.0  # patch at grid row 2, column 5 -> token 2 * 7 + 5 = 19
    target = model.patchify(x)
    assert target.shape == (1, 49, 16)
    assert target[0].sum(dim=1).nonzero().flatten().tolist() == [19]
    vit = model.backbone.backbone
    with torch.no_grad():
        tokens = vit.patch_embed(x).reshape(1, 49, -1) - vit.patch_embed(torch.zeros_like(x)).reshape(
            1, 49, -1
        )
    assert tokens[0].abs().sum(dim=1).nonzero().flatten().tolist() == [19]


def test_encoder_sees_only_the_visible_patches():
    model = _model(mask_ratio=0.75)
    x = torch.rand(3, 1, 28, 28)
    encoded, mask, ids_restore, grid = model.encode(x, torch.Generator().manual_seed(0))
    keep = int(49 * 0.25)
    assert grid == (7, 7)
    assert encoded.shape == (3, 1 + keep, 192)  # class token + visible tokens
    assert mask.shape == (3, 49) and mask.sum(dim=1).tolist() == [49 - keep] * 3
    # different images get different masks; the same seed gives the same mask
    assert not torch.equal(mask[0], mask[1])
    _, mask2, _, _ = model.encode(x, torch.Generator().manual_seed(0))
    assert torch.equal(mask, mask2)


def test_loss_counts_masked_patches_only():
    model = _model().eval()
    x = torch.rand(2, 1, 28, 28)
    out = model(x, generator=torch.Generator().manual_seed(4))
    encoded, mask, ids_restore, grid = model.encode(x, torch.Generator().manual_seed(4))
    pred = model.decoder(encoded, ids_restore, 1, grid)
    per_patch = (pred - model.patchify(x)).pow(2).mean(dim=-1)
    torch.testing.assert_close(out.loss, (per_patch * mask).sum() / mask.sum())
    assert not torch.allclose(out.loss, per_patch.mean())
    # visible patches get no gradient through the loss
    pred.retain_grad()
    ((per_patch * mask).sum() / mask.sum()).backward()
    visible = mask == 0
    assert torch.count_nonzero(pred.grad[visible]) == 0 and torch.count_nonzero(pred.grad[~visible]) > 0
    assert out.reconstruction.shape == x.shape


def test_norm_pix_targets_are_normalised_per_patch():
    model = _model(norm_pix_loss=True)
    target = model.targets(torch.rand(2, 1, 28, 28))
    torch.testing.assert_close(target.mean(dim=-1), torch.zeros(2, 49), atol=1e-5, rtol=0)
    torch.testing.assert_close(target.std(dim=-1), torch.ones(2, 49), atol=1e-3, rtol=0)


def test_forward_backward_and_round_trip(breast28):
    model = _model()
    x = breast28["train"][:4]
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss) and out.embeddings.shape == (4, 192)
    out.loss.backward()
    assert_grads_reach_backbone(model)
    assert model.decoder.mask_token.grad is not None
    assert model.backbone.backbone.patch_embed.proj.weight.grad is not None
    assert_round_trip(model, x)


def test_learns_to_beat_the_mean_image(breast28):
    torch.manual_seed(0)
    model = MAEForPretraining(
        MAEConfig(
            backbone_config=vit_config(depth=4),
            decoder_dim=128,
            decoder_depth=1,
            decoder_num_heads=4,
            # half the patches: at 0.75 a run this short only reaches the mean image
            mask_ratio=0.5,
        )
    )
    before = evaluate(model, breast28["test"])
    train_briefly(model, breast28["train"], steps=100, batch_size=32, lr=1e-3)
    after = evaluate(model, breast28["test"])
    assert after["mse"] < before["mse"] / 4, (before, after)
    # held-out masked-patch MSE clearly below predicting the per-pixel mean image
    assert after["mse"] < 0.85 * after["mean_image_mse"], after
