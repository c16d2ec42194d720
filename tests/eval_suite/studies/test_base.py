"""The verdict rule and CI classification (no training)."""

from __future__ import annotations

import pytest

from eval_suite.studies.base import (
    AGREE,
    CANT_TELL,
    CONTRADICTS,
    DISAGREE,
    INCONCLUSIVE,
    MARGIN,
    SUPPORTS,
    Claim,
    Comparison,
    ci_outcome,
    constant_predictor,
    decide,
    get_preset,
    pretrain_spec,
)
from hfssl.errors import ConfigError


def _comp(delta: float, lo: float, hi: float, outcome: str = INCONCLUSIVE) -> Comparison:
    return Comparison("x", "balanced_accuracy", delta, (lo, hi), 0.5, 1, outcome)


@pytest.mark.parametrize(
    ("ci", "supports", "contradicts", "expected"),
    [
        ((0.01, 0.1), "above0", "below0", SUPPORTS),
        ((-0.1, -0.01), "above0", "below0", CONTRADICTS),
        ((-0.1, 0.1), "above0", "below0", INCONCLUSIVE),
        ((-0.1, MARGIN / 2), "below_margin", "above_margin", SUPPORTS),
        ((0.01, 0.2), "below_margin", "above_margin", CONTRADICTS),
        ((-0.05, 0.2), "below_margin", "above_margin", INCONCLUSIVE),
        ((float("nan"), float("nan")), "above0", "below0", INCONCLUSIVE),
    ],
)
def test_ci_outcome(ci, supports, contradicts, expected):
    comp = _comp((ci[0] + ci[1]) / 2, *ci)
    assert ci_outcome(comp, supports=supports, contradicts=contradicts) == expected


def test_degenerate_comparison_is_never_decisive():
    comp = _comp(0.0, 0.0, 0.0)
    comp.degenerate = True
    assert ci_outcome(comp, supports="below_margin", contradicts="above_margin") == INCONCLUSIVE


@pytest.mark.parametrize(
    ("outcomes", "verdict"),
    [
        ([SUPPORTS, SUPPORTS, INCONCLUSIVE], AGREE),
        ([SUPPORTS, INCONCLUSIVE, INCONCLUSIVE], CANT_TELL),  # one of three is not enough
        ([SUPPORTS, SUPPORTS, CONTRADICTS, SUPPORTS], AGREE),  # 3:1 outnumbered
        ([SUPPORTS, CONTRADICTS], CANT_TELL),  # mixed
        ([CONTRADICTS, CONTRADICTS, INCONCLUSIVE, INCONCLUSIVE], DISAGREE),
        ([], CANT_TELL),
    ],
)
def test_decide(outcomes, verdict):
    claim = Claim("k", "s", "src", "t", [_comp(0, 0, 0, o) for o in outcomes])
    assert decide(claim).verdict == verdict
    assert claim.reason


def test_constant_predictor():
    const = {"metrics": {"per_class": {"recall": [0.0, 1.0]}}}
    real = {"metrics": {"per_class": {"recall": [0.4, 0.9]}}}
    assert constant_predictor([const, const])
    assert not constant_predictor([const, real])
    assert not constant_predictor([])


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("huge")


@pytest.mark.parametrize("method", ["ae", "mg", "pcrl"])
def test_slim_3d_encoders_get_a_decoder_of_their_widths(method):
    """The default 256-128-64 decoder on an 8-64 channel 3D encoder cost ~50x the encoder."""
    import torch

    from hfssl.models import HfsslConfig
    from hfssl.pretext import create_pretext_model

    spec = pretrain_spec(get_preset("cpu"), method, "adrenalmnist3d")
    assert spec.method_kwargs == {"decoder_channels": [32, 16, 8]}
    assert pretrain_spec(get_preset("cpu"), method, "breastmnist").method_kwargs == {}
    assert pretrain_spec(get_preset("cpu"), "rot", "adrenalmnist3d").method_kwargs == {}
    backbone = HfsslConfig(
        backbone=spec.backbone, spatial_dims=3, image_size=28, backbone_kwargs=spec.backbone_kwargs
    )
    model = create_pretext_model(method, backbone, **spec.method_kwargs)
    widths = [m.out_channels for m in model.decoder.modules() if isinstance(m, torch.nn.Conv3d)]
    assert max(widths) == 32
