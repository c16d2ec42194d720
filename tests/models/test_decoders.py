"""UNetDecoder (reused by generative pretext tasks) and the losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hfssl.errors import ConfigError
from hfssl.models import UNetDecoder, dice_loss, segmentation_loss


def _features(channels, sizes, dims=2):
    return [torch.rand(1, c, *([s] * dims)) for c, s in zip(channels, sizes)]


@pytest.mark.parametrize("skips", [True, False])
def test_unet_decoder_2d_odd_sizes_and_skips(skips):
    enc = [64, 64, 128, 256, 512]
    dec = UNetDecoder(enc, (256, 128, 64), out_channels=3, spatial_dims=2, skip_connections=skips)
    feats = _features(enc, [28, 28, 14, 7, 4])
    out = dec(feats, output_size=(28, 28))
    assert out.shape == (1, 3, 28, 28)
    # uses the deepest 4 maps: 512 -> 256 (+256 skip) -> 128 (+128) -> 64 (+64)
    assert [b[0][0].in_channels for b in dec.blocks] == (
        [512 + 256, 256 + 128, 128 + 64] if skips else [512, 256, 128]
    )
    # without skips the shallow maps' values do not matter, with skips they do
    changed = list(feats)
    changed[2] = torch.rand_like(feats[2])
    dec.eval()
    with torch.no_grad():
        same = torch.equal(dec(feats, (28, 28)), dec(changed, (28, 28)))
    assert same is (not skips)


def test_unet_decoder_3d_reconstruction_use():
    """Generative pretext tasks decode to the input's channels at the input's size."""
    enc = [64, 128, 256, 512]
    dec = UNetDecoder(enc, out_channels=1, spatial_dims=3)
    out = dec(_features(enc, [14, 7, 3, 1], dims=3), output_size=(14, 14, 14))
    assert out.shape == (1, 1, 14, 14, 14)
    assert abs(dec.head.weight.std().item() - np.sqrt(2.0 / (64 + 1))) < 0.05  # Xavier, not kaiming (1.4)


def test_unet_decoder_needs_enough_maps():
    with pytest.raises(ConfigError, match="needs at least 4"):
        UNetDecoder([64, 128, 256], (256, 128, 64))


def test_dice_loss_matches_numpy_definition():
    torch.manual_seed(0)
    probs = torch.rand(2, 3, 5, 5)
    target = (torch.rand(2, 3, 5, 5) > 0.5).float()
    p, t = probs.numpy(), target.numpy()
    inter = (p * t).sum(axis=(2, 3))
    dice = (2 * inter + 1e-5) / (p.sum(axis=(2, 3)) + t.sum(axis=(2, 3)) + 1e-5)
    assert np.isclose(dice_loss(probs, target).item(), 1 - dice.mean(), atol=1e-6)
    assert dice_loss(target, target).item() < 1e-6


def test_segmentation_loss_binary_and_multiclass():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 6, 6)
    mask = (torch.rand(2, 6, 6) > 0.5).long()
    expected = F.binary_cross_entropy_with_logits(logits, mask[:, None].float()) + dice_loss(
        torch.sigmoid(logits), mask[:, None].float()
    )
    assert torch.allclose(segmentation_loss(logits, mask), expected)
    assert torch.allclose(segmentation_loss(logits, mask[:, None]), expected)  # (B, 1, H, W) masks too
    logits3 = torch.randn(2, 3, 6, 6)
    classes = torch.randint(0, 3, (2, 6, 6))
    onehot = F.one_hot(classes, 3).permute(0, 3, 1, 2).float()
    expected3 = F.cross_entropy(logits3, classes) + dice_loss(logits3.softmax(1)[:, 1:], onehot[:, 1:])
    assert torch.allclose(segmentation_loss(logits3, classes), expected3)
    # a confident correct prediction has a small loss
    perfect = onehot * 20 - 10
    assert segmentation_loss(perfect, classes).item() < 0.01


def test_segmentation_loss_rejects_wrong_mask_shape():
    from hfssl.errors import DataError

    with pytest.raises(DataError, match="segmentation labels"):
        segmentation_loss(torch.randn(2, 1, 6, 6), torch.zeros(2, 5, 5))
