"""Study 3, transfer: which upstream (pretext) task suits which downstream task.

Grid: every method's backbone, finetuned on 2D classification (BreastMNIST, pretrained on
BreastMNIST), 3D classification (AdrenalMNIST3D, pretrained on AdrenalMNIST3D) and 2D segmentation
(DRIVE, the BreastMNIST-pretrained 2D backbone with a U-Net decoder), each against scratch.
Result: a gain-vs-scratch matrix (balanced accuracy for classification, Dice for segmentation)
with paired-bootstrap CIs and significance markers.

Claims:

* **no-universal-task** (Zhang et al. 2023, abstract: the results "highlight the need for
  developing universal pretext tasks"): no single pretext task is the best for every downstream
  task. Per downstream task the methods are ranked by their gain over scratch with CI-overlap ties
  (``eval_suite.stats.ranks_with_ties``); **agree** when no method is (tied-)best on every task,
  **disagree** when one method is (tied-)best on every task and strictly ahead of some method
  somewhere, **can't tell** otherwise (e.g. everything tied, or fewer than 2 methods/tasks).
* **generative-for-segmentation** (a hypothesis the study can test, not a quote: restoration tasks
  keep spatial detail, so they should transfer better to segmentation): each generative method vs
  each non-generative method on DRIVE Dice, paired; supports when the CI is above 0, contradicts
  when below 0; the shared verdict rule of ``eval_suite.studies.base`` decides.
"""

from __future__ import annotations

from collections.abc import Sequence

from eval_suite.studies.base import (
    AGREE,
    CANT_TELL,
    DISAGREE,
    Claim,
    Comparison,
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
from hfssl.pretext.registry import list_pretext_tasks, method_family

DATASETS = ("breastmnist", "adrenalmnist3d", "drive")
METRIC = {"breastmnist": "balanced_accuracy", "adrenalmnist3d": "balanced_accuracy", "drive": "dice"}
TASK = {
    "breastmnist": "2D cls (BreastMNIST)",
    "adrenalmnist3d": "3D cls (AdrenalMNIST3D)",
    "drive": "2D seg (DRIVE)",
}


def build(
    preset: Preset, datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None
) -> list[Cell]:
    datasets = check_names(datasets, DATASETS, "datasets for the transfer study") or list(DATASETS)
    methods = list(methods or preset.methods)
    cells = []
    for ds in datasets:
        upstream = "breastmnist" if ds == "drive" else ds
        usable = [m for m in methods if ds != "adrenalmnist3d" or m in list_pretext_tasks(spatial_dims=3)]
        if not usable:
            continue
        if ds == "drive":
            common = preset.eval_seg()
            scratch_eval = {**common, "dataset": ds, "random_init": True}
            ssl_eval = {**common, "dataset": ds}
        else:
            common = {**preset.eval_common(), "dataset": ds}
            scratch_eval = {**common, "protocol": "scratch"}
            ssl_eval = {**common, "protocol": "finetune"}
        base_id = f"{ds}/scratch"
        cells.append(
            Cell(base_id, pretrain_spec(preset, usable[0], upstream), scratch_eval, tags={"dataset": ds})
        )
        for m in usable:
            cells.append(
                Cell(
                    f"{ds}/{m}",
                    pretrain_spec(preset, m, upstream),
                    dict(ssl_eval),
                    name=f"{m} ({upstream})",
                    baseline=base_id,
                    tags={"dataset": ds, "method": m},
                )
            )
    return cells


def assess(result: GridResult, preset: Preset) -> tuple[list[Claim], str]:
    from eval_suite.stats import ranks_with_ties

    n_boot = preset.n_bootstrap
    gains: dict[str, dict[str, Comparison]] = {}
    for cell in result.cells:
        if cell.baseline is None:
            continue
        a, b = result.records.get(cell.cell_id), result.records.get(cell.baseline)
        if not a or not b:
            continue
        ds, m = cell.tags["dataset"], cell.tags["method"]
        gains.setdefault(ds, {})[m] = compare(a, b, METRIC[ds], f"{m} on {TASK[ds]}", n_boot)

    universal = Claim(
        "no-universal-task",
        "No single pretext task is the best choice for every downstream task (the paper calls for universal "
        "pretext tasks).",
        "Zhang et al. 2023, abstract and Sec. 6 (transfer)",
        "Per downstream task, methods ranked by gain vs scratch with ties when CIs overlap: agree when no method "
        "is (tied-)best on every task; disagree when one method is (tied-)best on every task and strictly ahead "
        "of another somewhere; can't tell otherwise.",
    )
    tops: dict[str, set[str]] = {}
    for ds, by_m in gains.items():
        names = list(by_m)
        ranks = ranks_with_ties([{"value": c.delta, "ci95": c.ci95} for c in by_m.values()])
        tops[ds] = {n for n, r in zip(names, ranks) if r == 1}
        for r, comp in zip(ranks, by_m.values()):
            comp.outcome = f"rank {r}"  # decided by the ranking below, not by the per-comparison tally
            universal.comparisons.append(comp)
    methods = sorted({m for by_m in gains.values() for m in by_m})
    if len(tops) < 2 or len(methods) < 2:
        universal.verdict = CANT_TELL
        universal.reason = "needs at least two methods evaluated on at least two downstream tasks"
    else:
        everywhere = set.intersection(*tops.values())
        separated = any(len(t) < len(gains[ds]) for ds, t in tops.items())
        best = "; ".join(f"{TASK[ds]}: {', '.join(sorted(t))}" for ds, t in tops.items())
        if not everywhere:
            universal.verdict = AGREE
        elif separated and len(everywhere) == 1:
            universal.verdict = DISAGREE
        else:
            universal.verdict = CANT_TELL
        universal.reason = f"(tied-)best per task: {best}"

    generative = Claim(
        "generative-for-segmentation",
        "Generative (restoration) pretext tasks transfer better to segmentation than predictive or contrastive "
        "ones (hypothesis tested here, not a quote from the paper).",
        "hypothesis (restoration keeps spatial detail); paper Sec. 6 discusses task applicability",
        "Each generative method vs each non-generative method on DRIVE Dice (paired bootstrap of the difference "
        "of their gains): supports when the CI is above 0, contradicts when below 0.",
    )
    seg_records = {
        c.tags["method"]: result.records.get(c.cell_id)
        for c in result.cells
        if c.tags.get("dataset") == "drive" and c.baseline
    }
    gens = [m for m in seg_records if method_family(m) == "generative" and seg_records[m]]
    others = [m for m in seg_records if method_family(m) != "generative" and seg_records[m]]
    for g in gens:
        for o in others:
            comp = compare(seg_records[g], seg_records[o], "dice", f"{g} - {o} (DRIVE Dice)", n_boot)
            comp.outcome = ci_outcome(comp, supports="above0", contradicts="below0")
            generative.comparisons.append(comp)
    decide(generative)
    if not generative.comparisons:
        generative.reason = "needs a generative and a non-generative method evaluated on DRIVE"

    header = ["method", "family", *[f"Δ {TASK[ds]} ({METRIC[ds]})" for ds in gains]]
    rows = [[m, method_family(m), *[fmt_comp(gains[ds].get(m)) for ds in gains]] for m in methods]
    table = (
        "Gain vs scratch (mean over seeds [95 % paired-bootstrap CI], * p<0.05 ** p<0.01 *** p<0.001)\n\n"
        + md_table(header, rows)
    )
    return [universal, generative], table


STUDY = Study(
    name="transfer",
    title="Which upstream task suits which downstream task",
    summary="Every method's backbone on 2D classification (BreastMNIST), 3D classification (AdrenalMNIST3D) and "
    "2D segmentation (DRIVE), as a gain-vs-scratch matrix with significance.",
    build=build,
    assess=assess,
    default_datasets=DATASETS,
)
