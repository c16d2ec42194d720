"""Barlow Twins and VICReg losses equal lightly's reference implementations (single process)."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import barlow_twins_loss, off_diagonal, vicreg_terms
from hfssl.pretext.blocks.redundancy import off_diagonal_sum


def _pair(n: int = 16, d: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


def test_off_diagonal():
    m = torch.arange(9.0).reshape(3, 3)
    assert off_diagonal(m).tolist() == [1.0, 2.0, 3.0, 5.0, 6.0, 7.0]


def test_off_diagonal_sum_matches_the_copy():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(7, 7, generator=g, requires_grad=True)
    copy = m.detach().clone().requires_grad_(True)
    off_diagonal_sum(m.pow(2)).backward()
    off_diagonal(copy).pow(2).sum().backward()
    torch.testing.assert_close(off_diagonal_sum(m.detach().pow(2)), off_diagonal(copy.detach()).pow(2).sum())
    torch.testing.assert_close(off_diagonal_sum(m.detach().abs()), off_diagonal(copy.detach()).abs().sum())
    torch.testing.assert_close(m.grad, copy.grad)
    assert float(m.grad.diagonal().abs().max()) == 0.0  # the diagonal gets no gradient


def test_barlow_twins_matches_lightly():
    from lightly.loss import BarlowTwinsLoss

    z_a, z_b = _pair()
    loss, corr = barlow_twins_loss(z_a, z_b, 5e-3)
    torch.testing.assert_close(loss, BarlowTwinsLoss(lambda_param=5e-3)(z_a, z_b))
    assert corr.shape == (8, 8)
    # identical views: the diagonal is exactly 1, the loss only the off-diagonal part
    same, corr_same = barlow_twins_loss(z_a, z_a, 1.0)
    torch.testing.assert_close(torch.diagonal(corr_same), torch.ones(8), atol=1e-4, rtol=0)
    torch.testing.assert_close(same, off_diagonal(corr_same).pow(2).sum(), atol=1e-4, rtol=1e-4)


def test_vicreg_matches_lightly():
    from lightly.loss import VICRegLoss

    z_a, z_b = _pair()
    inv, var, cov = vicreg_terms(z_a, z_b)
    torch.testing.assert_close(25 * inv + 25 * var + 1 * cov, VICRegLoss()(z_a, z_b))
    # collapsed embeddings: the variance hinge is (almost) 1, the invariance 0
    inv0, var0, _ = vicreg_terms(torch.ones(4, 3), torch.ones(4, 3))
    assert float(inv0) == 0.0 and float(var0) > 0.98


def test_batch_of_one_is_refused():
    with pytest.raises(ConfigError):
        barlow_twins_loss(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(ConfigError):
        vicreg_terms(torch.randn(1, 4), torch.randn(1, 4))
