"""Shared pieces of the four studies: presets, the study contract, comparisons and verdicts.

Verdict rule (one rule for every claim, so no conclusion is hard-coded):

1. Each claim is tested by a list of **comparisons** (SSL vs scratch, or variant A vs variant B,
   paired by seed on the same test set; ``eval_suite.stats.paired_bootstrap`` gives the delta and
   its 95 % bootstrap CI).
2. Each comparison is classified by its CI as *supports* / *contradicts* / *inconclusive* the claim
   (the claim's own test says how, e.g. "gain CI above 0", "gain CI below the margin").
3. The claim's verdict: **agree** when at least half of the comparisons support it and supporters
   outnumber contradictors at least 2:1; **disagree** symmetrically; otherwise **can't tell**
   (too few decisive comparisons, or mixed evidence). With no comparison at all: can't tell.

``MARGIN`` (0.02 = 2 points of balanced accuracy / Dice) is the smallest effect we call more than
"marginal": "marginal or negative" needs the whole CI below it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hfssl.errors import ConfigError
from hfssl.pretext.registry import METHODS, list_pretext_tasks

MARGIN = 0.02
AGREE, DISAGREE, CANT_TELL = "agree", "disagree", "can't tell"
SUPPORTS, CONTRADICTS, INCONCLUSIVE = "supports", "contradicts", "inconclusive"

# what a method is (family, 2D/3D, U-Net decoder) comes from hfssl.pretext.registry, nowhere else


# --------------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class Preset:
    """Scale of a study run (see ``STUDY_PRESETS``)."""

    name: str
    pretrain_steps: int
    pretrain_batch: int
    backbone_2d: str
    backbone_3d: str
    backbone_3d_kwargs: dict[str, Any]
    eval_preset: str  # the runner's recipe preset: quick | medmnist
    epochs: int | None
    seeds: tuple[int, ...]
    max_train_samples: int | None
    max_eval_samples: int | None
    n_bootstrap: int
    methods: tuple[str, ...]
    seg: dict[str, Any]
    backbones_2d: tuple[str, ...]  # architecture study

    def eval_common(self) -> dict[str, Any]:
        """EvalConfig fields every classification cell of this preset shares."""
        return {
            "seeds": list(self.seeds),
            "preset": self.eval_preset,
            "epochs": self.epochs,
            "max_train_samples": self.max_train_samples,
            "max_eval_samples": self.max_eval_samples,
            "n_bootstrap": self.n_bootstrap,
        }

    def eval_seg(self) -> dict[str, Any]:
        """EvalConfig fields of a DRIVE segmentation cell."""
        return {
            "seeds": list(self.seeds),
            "preset": self.eval_preset,
            "n_bootstrap": self.n_bootstrap,
            "protocol": "segmentation",
            **self.seg,
        }


STUDY_PRESETS: dict[str, Preset] = {
    # every study end to end in about two minutes on a 2-core CPU: the test-suite preset
    "smoke": Preset(
        name="smoke",
        pretrain_steps=2,
        pretrain_batch=16,
        backbone_2d="resnet10t",
        backbone_3d="unet3d_encoder",
        backbone_3d_kwargs={"channels": [8, 16, 32, 64]},
        eval_preset="quick",
        epochs=1,
        seeds=(0,),
        max_train_samples=48,
        max_eval_samples=48,
        n_bootstrap=200,
        methods=("rot",),
        seg={
            "epochs": 1,
            "max_train_samples": 2,
            "max_eval_samples": 2,
            "patches_per_image": 2,
            "patch_size": 64,
            "decoder_channels": [16, 8, 8],
        },
        backbones_2d=("resnet10t",),
    ),
    # sized for a 2-core CPU (the compute each study took is in reports/README.md)
    "cpu": Preset(
        name="cpu",
        pretrain_steps=300,
        pretrain_batch=64,
        backbone_2d="resnet10t",
        backbone_3d="unet3d_encoder",
        backbone_3d_kwargs={"channels": [8, 16, 32, 64]},
        eval_preset="quick",
        epochs=10,
        seeds=(0, 1, 2),
        max_train_samples=None,
        max_eval_samples=None,
        n_bootstrap=1000,
        methods=("rot", "simclr", "ae"),
        seg={
            "epochs": 5,
            "patches_per_image": 16,
            "patch_size": 64,
            "decoder_channels": [64, 32, 16],
        },
        backbones_2d=("resnet18", "resnet50", "vit_tiny_patch16_224"),
    ),
    # the paper's scale, for a GPU machine (scripts/run_study.sh has the accelerate launch lines)
    "paper": Preset(
        name="paper",
        pretrain_steps=20000,
        pretrain_batch=256,
        backbone_2d="resnet18",
        backbone_3d="unet3d_encoder",
        backbone_3d_kwargs={},
        eval_preset="medmnist",
        epochs=None,
        seeds=(0, 1, 2, 3, 4),
        max_train_samples=None,
        max_eval_samples=None,
        n_bootstrap=1000,
        methods=tuple(list_pretext_tasks(in_paper=True)),  # the paper's ten
        seg={"epochs": 50, "patches_per_image": 32, "patch_size": 64},
        backbones_2d=("resnet18", "resnet50", "vit_tiny_patch16_224"),
    ),
}

DATASETS = {
    "breastmnist": {"spatial_dims": 2, "task": "classification"},
    "adrenalmnist3d": {"spatial_dims": 3, "task": "classification"},
    "drive": {"spatial_dims": 2, "task": "segmentation"},
}


def get_preset(name: str) -> Preset:
    if name not in STUDY_PRESETS:
        raise ConfigError(f"unknown preset {name!r}", f"use one of: {', '.join(STUDY_PRESETS)}")
    return STUDY_PRESETS[name]


def backbone_kwargs_for(backbone: str, image_size: int) -> dict[str, Any]:
    """Settings a backbone needs at MedMNIST sizes (ViTs: the image size and a patch that fits it)."""
    if backbone.startswith("vit"):
        return {"img_size": image_size, "patch_size": 4 if image_size <= 32 else 8}
    return {}


def pretrain_spec(preset: Preset, method: str, dataset: str, **overrides: Any):
    """The preset's pretraining of ``method`` on ``dataset`` (2D or 3D backbone by dataset)."""
    from eval_suite.studies.grid import PretrainSpec

    three_d = DATASETS.get(dataset, {}).get("spatial_dims") == 3
    backbone = overrides.pop("backbone", preset.backbone_3d if three_d else preset.backbone_2d)
    kwargs = dict(preset.backbone_3d_kwargs) if three_d else backbone_kwargs_for(backbone, 28)
    kwargs.update(overrides.pop("backbone_kwargs", {}))
    if three_d and method in METHODS and METHODS[method].unet_decoder and "channels" in kwargs:
        # a slimmed 3D encoder gets a decoder of its own widths (8-16-32-64 -> 32-16-8): the default
        # 256-128-64 decoder at 28^3 costs ~50x the encoder (48 s a step at batch 64 on this CPU)
        method_kwargs = dict(overrides.pop("method_kwargs", {}))
        method_kwargs.setdefault("decoder_channels", list(reversed(kwargs["channels"][:-1])))
        overrides["method_kwargs"] = method_kwargs
    return PretrainSpec(
        method=method,
        backbone=backbone,
        dataset=dataset,
        image_size=28,
        max_steps=preset.pretrain_steps,
        batch_size=preset.pretrain_batch,
        backbone_kwargs=kwargs,
        **overrides,
    )


# ------------------------------------------------------------------------------ comparisons
@dataclass
class Comparison:
    """A paired comparison A - B on one metric, and what it says about a claim."""

    label: str
    metric: str
    delta: float
    ci95: tuple[float, float]
    p_value: float
    n_pairs: int
    outcome: str = INCONCLUSIVE
    note: str = ""
    degenerate: bool = False  # both sides constant predictors: never decisive


@dataclass
class Claim:
    """One of the paper's claims, how we test it, the evidence and the verdict."""

    key: str
    statement: str
    source: str
    test: str
    comparisons: list[Comparison] = field(default_factory=list)
    verdict: str = CANT_TELL
    reason: str = ""


def _seg_outputs(record: dict[str, Any]) -> dict[str, Any]:
    """Segmentation records carry ``per_image`` as a list of dicts; stats wants a dict of lists."""
    out = dict(record)
    per_image = (record.get("test_outputs") or {}).get("per_image")
    if isinstance(per_image, list) and per_image:
        keys = per_image[0].keys()
        out["test_outputs"] = {"per_image": {k: [float(m[k]) for m in per_image] for k in keys}}
    return out


def compare(
    a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], metric: str, label: str, n_resamples: int = 1000
) -> Comparison:
    """Paired bootstrap of ``metric`` between two record sets (paired by seed)."""
    from eval_suite.stats import paired_bootstrap

    a2, b2 = [_seg_outputs(r) for r in a], [_seg_outputs(r) for r in b]
    res = paired_bootstrap(a2, b2, metric, n_resamples=n_resamples)
    lo, hi = res["ci95"]
    comp = Comparison(
        label, metric, float(res["delta"]), (float(lo), float(hi)), float(res["p_value"]), res["n_pairs"]
    )
    if constant_predictor(a) and constant_predictor(b):
        comp.degenerate = True
        comp.note = "both sides predict a single class on every seed: uninformative"
    return comp


def constant_predictor(records: Sequence[dict[str, Any]]) -> bool:
    """True when every record's classifier recalled exactly one class (it predicts a constant)."""
    if not records:
        return False
    for rec in records:
        recall = ((rec.get("metrics") or {}).get("per_class") or {}).get("recall")
        if not recall or sum(1 for r in recall if r and r > 0) != 1:
            return False
    return True


def class_recall_deltas(
    a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], n_resamples: int = 1000
) -> dict[str, Any]:
    from eval_suite.stats import paired_class_deltas

    return paired_class_deltas(list(a), list(b), n_resamples=n_resamples)


def ci_outcome(comp: Comparison, *, supports: str, contradicts: str) -> str:
    """Classify a CI with rules named ``"above0"``, ``"below0"``, ``"below_margin"``, ``"above_margin"``."""
    lo, hi = comp.ci95
    if comp.degenerate:
        return INCONCLUSIVE

    def test(rule: str) -> bool:
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return False
        return {
            "above0": lo > 0,
            "below0": hi < 0,
            "below_margin": hi < MARGIN,
            "above_margin": lo > 0 and comp.delta >= MARGIN,
        }[rule]

    if test(supports):
        return SUPPORTS
    if test(contradicts):
        return CONTRADICTS
    return INCONCLUSIVE


def decide(claim: Claim) -> Claim:
    """Set ``claim.verdict`` and ``claim.reason`` from its comparisons (rule in the module docstring)."""
    n = len(claim.comparisons)
    sup = sum(c.outcome == SUPPORTS for c in claim.comparisons)
    con = sum(c.outcome == CONTRADICTS for c in claim.comparisons)
    if n == 0:
        claim.verdict, claim.reason = CANT_TELL, "no comparison could be made (missing cells or records)"
        return claim
    counts = f"{sup} of {n} comparisons support it, {con} contradict it, {n - sup - con} are inconclusive"
    if sup >= n / 2 and sup >= 2 * con and sup > 0:
        claim.verdict = AGREE
    elif con >= n / 2 and con >= 2 * sup and con > 0:
        claim.verdict = DISAGREE
    else:
        claim.verdict = CANT_TELL
    claim.reason = counts
    return claim


# ----------------------------------------------------------------------------------- study
@dataclass
class Study:
    """A study: its grid (``build``) and its claims (``assess``)."""

    name: str
    title: str
    summary: str
    build: Callable[[Preset, Sequence[str] | None, Sequence[str] | None], list[Any]]
    assess: Callable[[Any, Preset], tuple[list[Claim], str]]  # claims + Markdown numbers tables
    default_datasets: tuple[str, ...]


def check_names(given: Sequence[str] | None, allowed: Sequence[str], what: str) -> list[str] | None:
    if given is None:
        return None
    bad = [g for g in given if g not in allowed]
    if bad:
        raise ConfigError(f"unknown {what}: {', '.join(bad)}", f"use some of: {', '.join(allowed)}")
    return list(given)


def fmt_comp(comp: Comparison | None) -> str:
    """``+0.031 [-0.010, +0.072] *`` (delta, 95 % CI, significance marker)."""
    if comp is None:
        return "n/a"
    from eval_suite.stats import significance_marker

    lo, hi = comp.ci95
    mark = significance_marker(comp.p_value)
    return f"{comp.delta:+.3f} [{lo:+.3f}, {hi:+.3f}]{' ' + mark if mark else ''}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)
