"""DINO blocks: the head's last layer is weight-normalised, the loss skips same-crop pairs, the centre."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import DINOHead, centre_update, dino_cross_entropy, dino_loss, teacher_distribution


def test_head_normalises_the_last_layer():
    torch.manual_seed(0)
    head = DINOHead(16, 32, hidden_dim=24, bottleneck_dim=8, num_layers=3)
    out = head(torch.randn(5, 16))
    assert out.shape == (5, 32)
    # unit bottleneck x unit weight rows: every logit is a cosine
    assert float(out.abs().max()) <= 1.0 + 1e-5
    head.last_layer.weight.data.mul_(7.0)  # the norm of the weight rows does not matter
    torch.testing.assert_close(head(torch.randn(5, 16, generator=torch.Generator().manual_seed(1))),
                               DINOHead.forward(head, torch.randn(5, 16, generator=torch.Generator().manual_seed(1))))  # fmt: skip
    assert list(head.state_dict()) == [
        "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias", "mlp.4.weight", "mlp.4.bias", "last_layer.weight",
    ]  # fmt: skip


def test_loss_is_the_mean_over_other_crop_pairs():
    g = torch.Generator().manual_seed(0)
    s = [torch.randn(4, 6, generator=g) for _ in range(3)]  # 2 global + 1 local
    t = [torch.randn(4, 6, generator=g) for _ in range(2)]
    centre = torch.randn(1, 6, generator=g)
    expected = 0.0
    for i in range(2):
        p = F.softmax((t[i] - centre) / 0.04, dim=-1)
        for j in range(3):
            if i != j:
                expected += (-p * F.log_softmax(s[j] / 0.1, dim=-1)).sum(-1).mean() / 4
    torch.testing.assert_close(dino_loss(s, t, centre, 0.1, 0.04), expected)
    # the teacher's distribution computed once by the caller gives the same loss
    probs = teacher_distribution(t, centre, 0.04)
    assert probs.shape == (2, 4, 6)
    torch.testing.assert_close(dino_cross_entropy(s, probs, 0.1), expected)
    with pytest.raises(ConfigError):
        dino_loss(s, t, centre, 0.0, 0.04)
    with pytest.raises(ConfigError):
        dino_loss(s[:1], t[:1], centre, 0.1, 0.04)  # one crop: no pair


def test_loss_gradient_matches_the_pairwise_loop():
    g = torch.Generator().manual_seed(1)
    s = [torch.randn(3, 5, generator=g, requires_grad=True) for _ in range(4)]
    t = [torch.randn(3, 5, generator=g) for _ in range(2)]
    centre = torch.randn(1, 5, generator=g)
    dino_loss(s, t, centre, 0.1, 0.05).backward()
    batched = [x.grad.clone() for x in s]
    for x in s:
        x.grad = None
    loop, n = 0.0, 0
    for i in range(2):
        p = F.softmax((t[i] - centre) / 0.05, dim=-1)
        for j in range(4):
            if i != j:
                loop, n = loop + (-p * F.log_softmax(s[j] / 0.1, dim=-1)).sum(-1).mean(), n + 1
    (loop / n).backward()
    for got, x in zip(batched, s):
        torch.testing.assert_close(got, x.grad)


def test_centre_is_a_running_mean_of_the_teacher():
    centre = torch.ones(1, 3)
    t = [torch.zeros(2, 3), torch.full((2, 3), 2.0)]
    centre_update(centre, t, 0.9)
    torch.testing.assert_close(centre, torch.full((1, 3), 0.9 * 1 + 0.1 * 1.0))
    centre_update(centre, [torch.full((4, 3), 5.0)], 0.0)
    assert torch.equal(centre, torch.full((1, 3), 5.0))
