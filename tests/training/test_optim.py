"""Optimisers, weight-decay exclusions and warm-up schedules."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hfssl.errors import ConfigError
from hfssl.training.optim import (
    create_optimizer,
    create_scheduler,
    no_weight_decay_names,
    parameter_groups,
    resolve_warmup_steps,
)


class _WithPosEmbed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.proj = nn.Linear(8, 8)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}


def _model() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    model.add_module("vit", _WithPosEmbed())
    model.add_module("frozen", nn.Linear(2, 2))
    model.frozen.requires_grad_(False)
    return model


def _names(model: nn.Module, params: list[torch.Tensor]) -> set[str]:
    ids = {id(p) for p in params}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def test_biases_norms_and_listed_names_get_no_weight_decay() -> None:
    model = _model()
    assert no_weight_decay_names(model) == {"vit.pos_embed"}
    groups = parameter_groups(model, 0.05, exclude_patterns=["vit.proj.*"])
    decay = [g for g in groups if g["weight_decay"] == 0.05]
    no_decay = [g for g in groups if g["weight_decay"] == 0.0]
    assert _names(model, decay[0]["params"]) == {"0.weight", "3.weight"}
    assert _names(model, no_decay[0]["params"]) == {
        "0.bias", "1.weight", "1.bias", "3.bias", "vit.pos_embed", "vit.proj.weight", "vit.proj.bias",
    }  # fmt: skip
    # frozen (momentum-encoder style) parameters are left out altogether
    assert all("frozen" not in n for g in groups for n in _names(model, g["params"]))


def test_optimizers_keep_group_decay_and_lars_adapts_only_decayed_groups() -> None:
    torch.manual_seed(0)
    model = _model()
    for name, cls in (("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)):
        opt = create_optimizer(name, parameter_groups(model, 0.1), lr=0.01, weight_decay=0.1)
        assert isinstance(opt, cls)
        assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.1]
    # LARS: the update of a decayed weight is scaled by the trust ratio ||w|| / ||g + wd w||
    w = nn.Parameter(torch.full((4, 4), 2.0))
    b = nn.Parameter(torch.zeros(4))
    opt = create_optimizer("lars", [{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
                           lr=1.0, momentum=0.0, weight_decay=0.1, lars_trust_coefficient=0.001)  # fmt: skip
    w.grad = torch.ones_like(w)
    b.grad = torch.ones_like(b)
    w0 = w.detach().clone()
    opt.step()
    g = w.grad + 0.1 * w0
    trust = 0.001 * w0.norm() / g.norm()
    assert torch.allclose(w0 - w.detach(), trust * g, rtol=1e-5)
    assert torch.allclose(b.detach(), -torch.ones(4))  # no adaptation without weight decay
    with pytest.raises(ConfigError, match="unknown optimizer"):
        create_optimizer("adam8bit", model.parameters(), lr=0.1)


def test_cosine_schedule_with_linear_warmup() -> None:
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.4)
    total, warmup = 10, resolve_warmup_steps(0, 0.2, 10)
    assert warmup == 2
    sched = create_scheduler("cosine", opt, warmup, total)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [0.4 * s / warmup if s < warmup else 0.4 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))
                for s in range(total)]  # fmt: skip
    assert lrs == pytest.approx(expected)
    with pytest.raises(ConfigError, match="longer than training"):
        create_scheduler("cosine", opt, 11, 10)
    with pytest.raises(ConfigError, match="unknown lr_scheduler_type"):
        create_scheduler("cosine_annealing", opt, 0, 10)
