"""NT-Xent / InfoNCE / BYOL losses against straightforward reference formulations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import NTXentLoss, byol_loss, info_nce


def reference_nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, t: float) -> torch.Tensor:
    """The textbook SimCLR formulation: a (2N, 2N) similarity matrix with the diagonal removed."""
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    n = z_a.shape[0]
    sim = z @ z.T / t
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, target)


def test_nt_xent_matches_reference_and_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    z_a = torch.randn(6, 5, generator=g, requires_grad=True)
    z_b = torch.randn(6, 5, generator=g, requires_grad=True)
    loss = NTXentLoss(temperature=0.3)(z_a, z_b)
    ref = reference_nt_xent(z_a, z_b, 0.3)
    torch.testing.assert_close(loss, ref)
    ga, gb = torch.autograd.grad(loss, (z_a, z_b))
    ra, rb = torch.autograd.grad(ref, (z_a, z_b))
    torch.testing.assert_close(ga, ra)
    torch.testing.assert_close(gb, rb)


def test_nt_xent_stats_are_pos_and_neg_cosines() -> None:
    g = torch.Generator().manual_seed(1)
    z_a, z_b = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    _, stats = NTXentLoss()(z_a, z_b, return_stats=True)
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    cos = z @ z.T
    n = 4
    pos = torch.stack([cos[i, i + n] for i in range(n)]).mean()
    neg_mask = ~torch.eye(2 * n, dtype=torch.bool)
    for i in range(n):
        neg_mask[i, i + n] = neg_mask[i + n, i] = False
    torch.testing.assert_close(stats.pos_sim, pos)
    torch.testing.assert_close(stats.neg_sim, cos[neg_mask].mean())


def test_nt_xent_decreases_when_views_align() -> None:
    g = torch.Generator().manual_seed(2)
    base = torch.randn(8, 4, generator=g)
    z_b = base + 0.5 * torch.randn(8, 4, generator=g)
    z_a = torch.nn.Parameter(torch.randn(8, 4, generator=g))
    loss_fn = NTXentLoss(temperature=0.5)
    opt = torch.optim.SGD([z_a], lr=0.5)
    first = float(loss_fn(z_a, z_b).detach())
    for _ in range(50):
        opt.zero_grad()
        loss = loss_fn(z_a, z_b)
        loss.backward()
        opt.step()
    _, stats = loss_fn(z_a, z_b, return_stats=True)
    assert float(loss.detach()) < 0.7 * first
    assert float(stats.pos_sim) > float(stats.neg_sim) + 0.5


def test_info_nce_matches_manual_formula() -> None:
    g = torch.Generator().manual_seed(3)
    q = torch.randn(5, 4, generator=g, requires_grad=True)
    k = torch.randn(5, 4, generator=g)
    queue = torch.randn(7, 4, generator=g)
    loss, stats = info_nce(q, k, queue, temperature=0.2, return_stats=True)
    qn, kn, nn_ = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    manual = []
    for i in range(5):
        pos = torch.exp(qn[i] @ kn[i] / 0.2)
        manual.append(-torch.log(pos / (pos + torch.exp(nn_ @ qn[i] / 0.2).sum())))
    torch.testing.assert_close(loss, torch.stack(manual).mean())
    torch.testing.assert_close(stats.pos_sim, (qn * kn).sum(1).mean().detach())
    loss.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_byol_loss_range_and_stop_gradient() -> None:
    p = torch.randn(4, 8, requires_grad=True)
    z = torch.randn(4, 8, requires_grad=True)
    assert float(byol_loss(p, p.detach() * 3.0).detach()) == pytest.approx(0.0, abs=1e-6)
    assert float(byol_loss(p, -p.detach()).detach()) == pytest.approx(4.0, abs=1e-5)
    byol_loss(p, z).backward()
    assert z.grad is None and p.grad is not None


def test_bad_temperature_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        NTXentLoss(temperature=0.0)
    with pytest.raises(ConfigError):
        info_nce(torch.randn(2, 3), torch.randn(2, 3), torch.randn(4, 3), temperature=-1.0)
