"""MLP heads: layer layout, shapes, and the shared tile encoder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import MLPHead, classification_head, encode_tiles


def _kinds(module: nn.Module) -> list[str]:
    return [type(m).__name__ for m in module]


def test_mlp_head_layout_and_shape() -> None:
    head = MLPHead(512, 512, 256)  # SimCLR projector
    assert _kinds(head) == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head[0].bias is None and head[-1].bias is not None
    assert head(torch.randn(4, 512)).shape == (4, 256)

    byol = MLPHead(32, 64, 16, num_layers=3, last_bn=True)
    assert _kinds(byol) == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear", "BatchNorm1d"]
    assert not byol[-1].affine

    moco = MLPHead(32, 32, 8, batch_norm=False)
    assert _kinds(moco) == ["Linear", "ReLU", "Linear"]
    assert _kinds(MLPHead(8, 8, 2, num_layers=1)) == ["Linear"]


def test_classification_head_depth_counts_hidden_fc_1024_layers() -> None:
    for depth in (0, 1, 2, 3):
        head = classification_head(256, 100, depth=depth)
        linears = [m for m in head if isinstance(m, nn.Linear)]
        assert len(linears) == depth + 1
        assert all(m.out_features == 1024 for m in linears[:-1])
        assert linears[-1].out_features == 100
    jigsaw = classification_head(9 * 64, 100, depth=2)  # FC 1024-1024-#perm
    assert jigsaw(torch.randn(2, 9 * 64)).shape == (2, 100)


def test_heads_learn_a_separable_task() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    head = classification_head(8, 2, depth=1, hidden_dim=32)
    opt = torch.optim.Adam(head.parameters(), lr=3e-2)
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(x), y)
        loss.backward()
        opt.step()
    assert (head(x).argmax(1) == y).float().mean() > 0.95


def test_encode_tiles_matches_a_loop_over_tiles() -> None:
    encoder = nn.Sequential(nn.Conv3d(2, 4, 3), nn.AdaptiveAvgPool3d(1), nn.Flatten())
    tiles = torch.randn(3, 8, 2, 5, 5, 5)
    out = encode_tiles(encoder, tiles)
    assert out.shape == (3, 8, 4)
    for t in range(8):
        torch.testing.assert_close(out[:, t], encoder(tiles[:, t]))


def test_bad_head_arguments_raise_config_errors() -> None:
    with pytest.raises(ConfigError):
        MLPHead(8, 8, 8, num_layers=0)
    with pytest.raises(ConfigError):
        classification_head(8, 4, depth=-1)
