"""EMA target networks and BYOL's momentum schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import EMAUpdater, cosine_momentum_schedule, frozen_copy, update_momentum


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    target = frozen_copy(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    return online, target


def test_frozen_copy_is_independent_and_frozen() -> None:
    online = nn.Linear(3, 2)
    target = frozen_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    torch.testing.assert_close(target.weight, online.weight)
    assert target.weight.data_ptr() != online.weight.data_ptr()


def test_update_momentum_formula() -> None:
    online, target = _pair()
    before = [p.clone() for p in target.parameters()]
    update_momentum(online, target, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    # buffers are left alone unless asked
    online[1].running_mean.fill_(5.0)
    update_momentum(online, target, 0.9)
    assert float(target[1].running_mean.abs().max()) == 0.0
    update_momentum(online, target, 1.0, copy_buffers=True)
    assert float(target[1].running_mean.min()) == 5.0


def test_update_momentum_extremes() -> None:
    online, target = _pair()
    before = [p.clone() for p in target.parameters()]
    update_momentum(online, target, 1.0)
    for t, b in zip(target.parameters(), before):
        torch.testing.assert_close(t, b)
    update_momentum(online, target, 0.0)
    for t, o in zip(target.parameters(), online.parameters()):
        torch.testing.assert_close(t, o)
    with pytest.raises(ConfigError):
        update_momentum(online, target, 1.5)


def test_cosine_momentum_schedule() -> None:
    assert cosine_momentum_schedule(0, 100) == pytest.approx(0.996)
    assert cosine_momentum_schedule(100, 100) == pytest.approx(1.0)
    assert cosine_momentum_schedule(50, 100) == pytest.approx(0.998)
    values = [cosine_momentum_schedule(s, 100) for s in range(101)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    expected = 1 - (1 - 0.99) * (math.cos(math.pi * 0.3) + 1) / 2
    assert cosine_momentum_schedule(30, 100, base=0.99) == pytest.approx(expected)


def test_ema_updater_follows_schedule_and_resumes() -> None:
    online, target = _pair()
    ema = EMAUpdater(online, target, base=0.9, final=1.0, total_steps=4)
    used = [ema.step() for _ in range(2)]
    assert used == [pytest.approx(0.9), pytest.approx(cosine_momentum_schedule(1, 4, 0.9, 1.0))]
    resumed = EMAUpdater(online, target, base=0.9, final=1.0, total_steps=4)
    resumed.load_state_dict(ema.state_dict())
    assert resumed.momentum == pytest.approx(cosine_momentum_schedule(2, 4, 0.9, 1.0))
    const = EMAUpdater(online, target, base=0.99, schedule="constant")
    assert const.step() == 0.99 and const.step() == 0.99
    with pytest.raises(ConfigError):
        EMAUpdater(online, target, schedule="cosine")
