"""Study 1, imbalance: every method vs scratch across training imbalance ratios.

Grid: datasets (BreastMNIST 2D, AdrenalMNIST3D 3D) x ratios (balanced 1:1, natural, 10:1, 50:1)
x (methods + scratch), finetuned (the paper's default protocol). Validation and test splits are
never altered; the minority ("rare") class is the class with the fewest training rows.

Claims (Zhang et al. 2023, abstract):

* **rare-class**: "SSL advances class-imbalanced learning mainly by boosting the performance of the
  rare class." A comparison (method x ratio, ratios with a rare class, i.e. not 1:1) *supports* it
  when the rare-class recall gain's CI is above 0, that gain exceeds the majority-class recall gain
  and balanced accuracy does not drop (point estimate); it *contradicts* it when the majority-class
  gain's CI is above 0 and exceeds the rare-class gain, or when the rare-class recall CI is below 0.
* **extremes**: "SSL offers marginal or even negative returns in severely imbalanced (50:1) and
  relatively balanced (1:1) data regimes." A comparison at 1:1 or 50:1 *supports* it when the
  balanced-accuracy gain's CI lies below the margin (``base.MARGIN``), and *contradicts* it when
  the CI is above 0 with a gain of at least the margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eval_suite.studies.base import (
    CONTRADICTS,
    SUPPORTS,
    Claim,
    Comparison,
    Preset,
    Study,
    check_names,
    ci_outcome,
    class_recall_deltas,
    compare,
    decide,
    fmt_comp,
    md_table,
    pretrain_spec,
)
from eval_suite.studies.grid import Cell, GridResult

RATIOS = ("balanced", "natural", "10", "50")
EXTREMES = ("balanced", "50")
DATASETS = ("breastmnist", "adrenalmnist3d")
PROTOCOL = "finetune"


def build(
    preset: Preset, datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None
) -> list[Cell]:
    datasets = check_names(datasets, DATASETS, "datasets for the imbalance study") or list(DATASETS)
    methods = list(methods or preset.methods)
    cells = []
    for ds in datasets:
        for ratio in RATIOS:
            base_id = f"{ds}/ratio={ratio}/scratch"
            common = {**preset.eval_common(), "dataset": ds, "imbalance_ratio": ratio}
            donor = pretrain_spec(preset, methods[0], ds)
            cells.append(
                Cell(base_id, donor, {**common, "protocol": "scratch"}, tags={"dataset": ds, "ratio": ratio})
            )
            for m in methods:
                cells.append(
                    Cell(
                        f"{ds}/ratio={ratio}/{m}",
                        pretrain_spec(preset, m, ds),
                        {**common, "protocol": PROTOCOL},
                        name=f"{m} ({ds})",
                        baseline=base_id,
                        tags={"dataset": ds, "ratio": ratio, "method": m},
                    )
                )
    return cells


def _ratio_label(ratio: str) -> str:
    return {"balanced": "1:1", "natural": "natural"}.get(ratio, f"{ratio}:1")


def assess(result: GridResult, preset: Preset) -> tuple[list[Claim], str]:
    n_boot = preset.n_bootstrap
    rare = Claim(
        "rare-class",
        "SSL advances class-imbalanced learning mainly by boosting the performance of the rare class.",
        "Zhang et al. 2023, abstract and Sec. 4 (imbalance)",
        "Per method x imbalance ratio (not 1:1), paired bootstrap of the per-class recall gains vs scratch: "
        "supports when the rare-class gain's 95 % CI is above 0, exceeds the majority-class gain and balanced "
        "accuracy does not drop; contradicts when the majority-class gain's CI is above 0 and exceeds the "
        "rare-class gain, or the rare-class gain's CI is below 0.",
    )
    extremes = Claim(
        "extremes",
        "SSL offers marginal or even negative returns in severely imbalanced (50:1) and relatively balanced "
        "(1:1) data regimes.",
        "Zhang et al. 2023, abstract and Sec. 4 (imbalance)",
        "Per method at 1:1 and 50:1, balanced-accuracy gain vs scratch: supports when its 95 % CI lies below "
        "the 0.02 margin; contradicts when the CI is above 0 with a gain of at least 0.02.",
    )
    rows: dict[str, list[list[str]]] = {}
    for cell in result.cells:
        if cell.baseline is None or cell.cell_id not in result.records:
            continue
        a, b = result.records[cell.cell_id], result.records.get(cell.baseline, [])
        if not a or not b:
            continue
        ds, ratio, m = cell.tags["dataset"], cell.tags["ratio"], cell.tags["method"]
        label = f"{m}, {ds}, {_ratio_label(ratio)}"
        ba = compare(a, b, "balanced_accuracy", label, n_boot)
        mr = compare(a, b, "minority_recall", label, n_boot)
        auc = compare(a, b, "auc", label, n_boot)
        counts = a[0]["dataset"]["train_class_counts"]
        rows.setdefault(ds, []).append(
            [m, _ratio_label(ratio), "/".join(map(str, counts)), fmt_comp(ba), fmt_comp(mr), fmt_comp(auc)]
        )
        if ratio in EXTREMES:
            ba.outcome = ci_outcome(ba, supports="below_margin", contradicts="above_margin")
            extremes.comparisons.append(ba)
        if ratio != "balanced":
            rare.comparisons.append(_rare_class_comparison(a, b, ba, label, n_boot))
    decide(rare)
    decide(extremes)
    tables = []
    for ds, body in rows.items():
        tables.append(
            f"**{ds}** (finetune; delta vs scratch, mean over seeds, [95 % paired-bootstrap CI], markers "
            f"* p<0.05 ** p<0.01 *** p<0.001)\n\n"
            + md_table(
                ["method", "ratio", "train counts", "Δ balanced acc.", "Δ minority recall", "Δ AUC"], body
            )
        )
    return [rare, extremes], "\n\n".join(tables)


def _rare_class_comparison(
    a: list[dict[str, Any]], b: list[dict[str, Any]], ba: Comparison, label: str, n_boot: int
) -> Comparison:
    counts = a[0]["dataset"]["train_class_counts"]
    rare = min(range(len(counts)), key=lambda c: counts[c])
    major = max(range(len(counts)), key=lambda c: counts[c])
    deltas = class_recall_deltas(a, b, n_boot)
    d_r, ci_r = deltas["delta"][rare], deltas["ci95"][rare]
    d_m, ci_m = deltas["delta"][major], deltas["ci95"][major]
    comp = Comparison(
        label,
        "rare-class recall",
        d_r,
        (ci_r[0], ci_r[1]),
        deltas["p_value"][rare],
        deltas["n_pairs"],
        degenerate=ba.degenerate,
        note=("both sides predict a single class; " if ba.degenerate else "")
        + f"majority-class recall {d_m:+.3f} [{ci_m[0]:+.3f}, {ci_m[1]:+.3f}]; balanced acc. {ba.delta:+.3f}",
    )
    if comp.degenerate:
        return comp
    if ci_r[0] > 0 and d_r > d_m and ba.delta >= 0:
        comp.outcome = SUPPORTS
    elif (ci_m[0] > 0 and d_m > d_r) or ci_r[1] < 0:
        comp.outcome = CONTRADICTS
    return comp


STUDY = Study(
    name="imbalance",
    title="SSL under class imbalance",
    summary="Every method vs scratch across training imbalance ratios (1:1, natural, 10:1, 50:1) on BreastMNIST "
    "(2D) and AdrenalMNIST3D (3D): balanced accuracy, minority-class recall, AUC.",
    build=build,
    assess=assess,
    default_datasets=DATASETS,
)
