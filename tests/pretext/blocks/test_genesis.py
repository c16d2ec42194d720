"""Models Genesis transforms: range, identity at p=0, effect at p=1, reproducibility."""

from __future__ import annotations

import pytest
import torch

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import (
    GenesisConfig,
    bezier_nonlinear,
    in_painting,
    local_pixel_shuffle,
    models_genesis_transform,
    out_painting,
    random_flip,
)

OPS = [bezier_nonlinear, local_pixel_shuffle, in_painting, out_painting]
SHAPES = [(6, 1, 28, 28), (3, 1, 20, 20, 20)]


def _x(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", OPS, ids=lambda f: f.__name__)
def test_op_range_identity_effect_and_reproducibility(op, shape: tuple[int, ...]) -> None:
    x = _x(shape)
    assert torch.equal(op(x, p=0.0, generator=_g(0)), x)
    y = op(x, p=1.0, generator=_g(1))
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    changed = (y != x).flatten(1).any(1)
    assert float(changed.float().mean()) >= 0.6  # in-painting may draw zero boxes (5 % per sample)
    assert torch.equal(op(x, p=1.0, generator=_g(1)), y)
    assert not torch.equal(op(x, p=1.0, generator=_g(2)), y)


def test_probability_is_per_sample() -> None:
    x = _x((400, 1, 8, 8))
    changed = (bezier_nonlinear(x, p=0.3, generator=_g(3)) != x).flatten(1).any(1).float().mean()
    assert 0.2 < float(changed) < 0.4


def test_bezier_is_monotone_per_sample() -> None:
    x = _x((32, 1, 12, 12))
    y = bezier_nonlinear(x, p=1.0, generator=_g(4))
    directions = []
    for xi, yi in zip(x.flatten(1), y.flatten(1)):
        ys = yi[xi.argsort()]
        d = ys.diff()
        assert bool((d >= -1e-6).all()) or bool((d <= 1e-6).all())
        directions.append(bool((d >= -1e-6).all()))
    assert 0 < sum(directions) < len(directions)  # both increasing and inverting maps occur


def test_local_shuffle_permutes_values_within_each_sample() -> None:
    x = _x((4, 2, 30, 30))
    y = local_pixel_shuffle(x, p=1.0, generator=_g(5))
    torch.testing.assert_close(y.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    # channels move together: the pair (c0, c1) at each pixel is preserved as a set
    pairs_x = sorted(map(tuple, x.permute(0, 2, 3, 1).reshape(-1, 2).tolist()))
    pairs_y = sorted(map(tuple, y.permute(0, 2, 3, 1).reshape(-1, 2).tolist()))
    assert pairs_x == pairs_y


def test_painting_areas_follow_reference_sizes() -> None:
    x = torch.full((32, 1, 42, 42), 2.0)  # outside [0, 1], so noise pixels are recognisable
    inner = (in_painting(x, generator=_g(6)) < 1.5).float().flatten(1).mean(1)
    outer = (out_painting(x, generator=_g(7)) >= 1.5).float().flatten(1).mean(1)
    assert float(inner.max()) <= 5 * (1 / 3) ** 2 + 1e-6  # at most 5 boxes of <= 1/3 side
    assert float(inner.max()) > 0
    assert float(outer.min()) >= (3 / 7) ** 2 * 0.9  # at least one kept box of >= 3/7 side


def test_flip_applies_to_target_and_full_chain_defaults() -> None:
    x = _x((16, 1, 10, 10, 10))
    flipped, target = random_flip(x, p=1.0, generator=_g(8), target=x + 1.0)
    torch.testing.assert_close(target, flipped + 1.0)
    assert not torch.equal(flipped, x)
    only_flip = GenesisConfig(flip_rate=0.6, local_rate=0, nonlinear_rate=0, paint_rate=0)
    out, tgt = models_genesis_transform(x, only_flip, generator=_g(9))
    assert torch.equal(out, tgt)
    out, tgt = models_genesis_transform(x, generator=_g(10))
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert not torch.equal(out, tgt)
    # the target is the (possibly flipped) original, never corrupted
    for i in range(16):
        assert any(torch.equal(tgt[i], x[i].flip(dims)) for dims in _flip_sets())
    again = models_genesis_transform(x, generator=_g(10))
    assert torch.equal(again[0], out) and torch.equal(again[1], tgt)


def _flip_sets() -> list[tuple[int, ...]]:
    return [(), (1,), (2,), (3,), (1, 2), (1, 3), (2, 3), (1, 2, 3)]


def test_invalid_probabilities_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        GenesisConfig(paint_rate=1.5)
    with pytest.raises(ConfigError):
        in_painting(_x((1, 1, 8, 8)), p=-0.1)
