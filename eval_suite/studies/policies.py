"""Study 4, policies: SSL stacked with common training policies.

Grid (BreastMNIST, finetune): each policy - class-balanced sampler, the paper's per-epoch majority
resampler, re-weighted and focal loss, the augmentation ladder S1..S6, mixup - applied to scratch
and to every method alike, plus the no-policy reference. The question per policy: does SSL's gain
over scratch survive when both use the policy?

Claim (Zhang et al. 2023, abstract): "SSL offers marginal or even negative returns [...] in
combinations with common training policies." A comparison (method x policy, SSL+policy vs
scratch+policy on balanced accuracy) *supports* it when the gain's 95 % CI lies below the margin
(``base.MARGIN``) and *contradicts* it when the CI is above 0 with a gain of at least the margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eval_suite.studies.base import (
    Claim,
    Preset,
    Study,
    check_names,
    ci_outcome,
    compare,
    decide,
    fmt_comp,
    md_table,
    pretrain_spec,
)
from eval_suite.studies.grid import Cell, GridResult

DATASETS = ("breastmnist",)
# name -> EvalConfig policy fields
POLICIES: dict[str, dict[str, Any]] = {
    "none": {},
    "balanced-sampler": {"sampler": "balanced"},
    "majority-resampler": {"sampler": "resample:1"},
    "weighted-loss": {"loss": "weighted"},
    "focal-loss": {"loss": "focal"},
    **{f"augment-{s}": {"augment": s} for s in ("S1", "S2", "S3", "S4", "S5", "S6")},
    # the modality's test-time corruptions as training augmentation (hfssl.data.corruptions): does
    # corruption augmentation stack with SSL pretraining?
    "augment-corrupt": {"augment": "corrupt:0.5"},
    "mixup": {"mixup": 0.2},
}
SMOKE_POLICIES = (
    "none",
    "balanced-sampler",
    "majority-resampler",
    "weighted-loss",
    "focal-loss",
    "augment-S3",
    "mixup",
)


def build(
    preset: Preset, datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None
) -> list[Cell]:
    datasets = check_names(datasets, DATASETS, "datasets for the policies study") or list(DATASETS)
    methods = list(methods or preset.methods)
    names = SMOKE_POLICIES if preset.name == "smoke" else tuple(POLICIES)
    cells = []
    for ds in datasets:
        for pol in names:
            common = {**preset.eval_common(), "dataset": ds, **POLICIES[pol]}
            base_id = f"{ds}/{pol}/scratch"
            cells.append(
                Cell(
                    base_id,
                    pretrain_spec(preset, methods[0], ds),
                    {**common, "protocol": "scratch"},
                    tags={"dataset": ds, "policy": pol},
                )
            )
            for m in methods:
                cells.append(
                    Cell(
                        f"{ds}/{pol}/{m}",
                        pretrain_spec(preset, m, ds),
                        {**common, "protocol": "finetune"},
                        name=f"{m} ({ds})",
                        baseline=base_id,
                        tags={"dataset": ds, "policy": pol, "method": m},
                    )
                )
    return cells


def assess(result: GridResult, preset: Preset) -> tuple[list[Claim], str]:
    claim = Claim(
        "stacking",
        "Stacked with common training policies (re-sampling, re-weighting, augmentation, mixup), SSL offers "
        "marginal or even negative returns.",
        "Zhang et al. 2023, abstract and Sec. 7 (policies)",
        "Per method x policy, balanced-accuracy gain of SSL+policy over scratch+policy: supports when its 95 % "
        "CI lies below the 0.02 margin; contradicts when the CI is above 0 with a gain of at least 0.02. The "
        "no-policy row is shown for reference and not counted.",
    )
    rows = []
    for cell in result.cells:
        if cell.baseline is None:
            continue
        a, b = result.records.get(cell.cell_id), result.records.get(cell.baseline)
        if not a or not b:
            continue
        pol, m = cell.tags["policy"], cell.tags["method"]
        label = f"{m} + {pol}"
        ba = compare(a, b, "balanced_accuracy", label, preset.n_bootstrap)
        mr = compare(a, b, "minority_recall", label, preset.n_bootstrap)
        ssl_mean = sum(r["metrics"]["balanced_accuracy"] for r in a) / len(a)
        base_mean = sum(r["metrics"]["balanced_accuracy"] for r in b) / len(b)
        rows.append([pol, m, f"{base_mean:.3f}", f"{ssl_mean:.3f}", fmt_comp(ba), fmt_comp(mr)])
        if pol != "none":
            ba.outcome = ci_outcome(ba, supports="below_margin", contradicts="above_margin")
            claim.comparisons.append(ba)
    decide(claim)
    table = (
        "BreastMNIST, finetune; scratch and SSL use the same policy (mean over seeds; Δ = SSL - scratch "
        "[95 % paired-bootstrap CI])\n\n"
        + md_table(
            [
                "policy",
                "method",
                "scratch bal. acc.",
                "SSL bal. acc.",
                "Δ balanced acc.",
                "Δ minority recall",
            ],
            rows,
        )
    )
    return [claim], table


STUDY = Study(
    name="policies",
    title="SSL stacked with common training policies",
    summary="Class-balanced sampler, majority resampler, re-weighted and focal loss, augmentation ladder S1..S6 and "
    "mixup, each applied to scratch and SSL alike: does SSL's gain survive?",
    build=build,
    assess=assess,
    default_datasets=DATASETS,
)
