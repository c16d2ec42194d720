"""Study 2, architecture: backbones, decoder skips, rotation-head depth, BYOL's exported encoder.

Grid (BreastMNIST 2D, finetune; DRIVE for the BYOL segmentation question):

* **backbones**: the preset's 2D backbones (``cpu``/``paper``: ResNet-18, ResNet-50, ViT-Tiny) for
  one predictive and one contrastive method (default ``rot``, ``simclr``), each vs scratch of the
  same backbone;
* **skips**: generative pretraining (AE; MG too when asked with ``--methods``) with and without
  U-Net skip connections in the decoder;
* **rkb-head**: RKB with a shallow (1 hidden FC layer) vs deep (3) rotation head;
* **byol-encoder**: BYOL's online vs target (momentum) encoder, on classification and segmentation.

Claims (each decided by the shared rule of ``eval_suite.studies.base`` over paired comparisons;
supports = CI above 0 in the claimed direction, contradicts = CI below 0):

* skips: without skips the generative pretext task yields the better encoder (the decoder cannot
  shortcut through shallow maps) - hfssl's AE docstring, after Zhang et al. 2023;
* rkb-head: shallow rotation heads beat deep ones, which collapse (Zhang et al. 2023);
* byol-cls: the online encoder transfers better to classification (Zhang et al. 2023);
* byol-seg and backbones: questions the paper's text does not settle here (stated as hypotheses).
"""

from __future__ import annotations

from collections.abc import Sequence

from eval_suite.studies.base import (
    Claim,
    Preset,
    Study,
    backbone_kwargs_for,
    check_names,
    ci_outcome,
    compare,
    decide,
    fmt_comp,
    md_table,
    pretrain_spec,
)
from eval_suite.studies.grid import Cell, GridResult
from hfssl.pretext.registry import METHODS, list_pretext_tasks

DATASETS = ("breastmnist", "drive")


def _pick(methods: Sequence[str], family: Sequence[str], default: str) -> str:
    return next((m for m in methods if m in family), default)


def build(
    preset: Preset, datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None
) -> list[Cell]:
    datasets = check_names(datasets, DATASETS, "datasets for the architecture study") or list(DATASETS)
    methods = list(methods or ())
    ds = "breastmnist"
    common = {**preset.eval_common(), "dataset": ds}
    ft = {**common, "protocol": "finetune"}
    cells: list[Cell] = []
    if "breastmnist" in datasets:
        pair = (
            _pick(methods, list_pretext_tasks("predictive"), "rot"),
            _pick(methods, list_pretext_tasks("contrastive"), "simclr"),
        )
        for bb in preset.backbones_2d:
            bkw = backbone_kwargs_for(bb, 28)
            base_id = f"backbone={bb}/scratch"
            spec0 = pretrain_spec(preset, pair[0], ds, backbone=bb, backbone_kwargs=bkw)
            cells.append(
                Cell(
                    base_id,
                    spec0,
                    {**common, "protocol": "scratch"},
                    tags={"part": "backbone", "backbone": bb},
                )
            )
            for m in pair:
                cells.append(
                    Cell(
                        f"backbone={bb}/{m}",
                        pretrain_spec(preset, m, ds, backbone=bb, backbone_kwargs=bkw),
                        ft,
                        name=f"{m} ({bb})",
                        baseline=base_id,
                        tags={"part": "backbone", "backbone": bb, "method": m},
                    )
                )
        for g in [
            m for m in methods if m in list_pretext_tasks("generative") and METHODS[m].unet_decoder
        ] or ["ae"]:
            for skips in (False, True):
                cells.append(
                    Cell(
                        f"skips/{g}/{'with' if skips else 'without'}",
                        pretrain_spec(preset, g, ds, method_kwargs={"skip_connections": skips}),
                        ft,
                        name=f"{g} ({'with' if skips else 'no'} skips)",
                        tags={"part": "skips", "method": g, "skips": skips},
                    )
                )
        for depth in (1, 3):
            cells.append(
                Cell(
                    f"rkb-head/depth={depth}",
                    pretrain_spec(preset, "rkb", ds, method_kwargs={"rotation_head_depth": depth}),
                    ft,
                    name=f"rkb (rotation head depth {depth})",
                    tags={"part": "rkb-head", "depth": depth},
                )
            )
    for which in ("online", "target"):
        spec = pretrain_spec(preset, "byol", ds, export_backbone=which)
        if "breastmnist" in datasets:
            cells.append(
                Cell(
                    f"byol/{which}/breastmnist",
                    spec,
                    ft,
                    name=f"byol ({which})",
                    tags={"part": "byol", "which": which, "dataset": ds},
                )
            )
        if "drive" in datasets:
            cells.append(
                Cell(
                    f"byol/{which}/drive",
                    spec,
                    {**preset.eval_seg(), "dataset": "drive"},
                    name=f"byol ({which})",
                    tags={"part": "byol", "which": which, "dataset": "drive"},
                )
            )
    return cells


def _records(result: GridResult, cell_id: str):
    return result.records.get(cell_id) or None


def assess(result: GridResult, preset: Preset) -> tuple[list[Claim], str]:
    n_boot = preset.n_bootstrap
    tables = []
    by_id = {c.cell_id: c for c in result.cells}

    backbones = Claim(
        "backbones",
        "SSL's gain over scratch holds for every backbone (ResNet-18, ResNet-50, ViT-Tiny) - a hypothesis "
        "the architecture study tests; the paper compares these backbones.",
        "hypothesis; Zhang et al. 2023, Sec. 5 (architecture)",
        "Per backbone x method, balanced-accuracy gain vs scratch of the same backbone: supports when its CI is "
        "above 0, contradicts when below 0.",
    )
    rows = []
    for c in result.cells:
        if c.tags.get("part") == "backbone" and c.baseline:
            a, b = _records(result, c.cell_id), _records(result, c.baseline)
            if a and b:
                comp = compare(
                    a, b, "balanced_accuracy", f"{c.tags['method']} on {c.tags['backbone']}", n_boot
                )
                comp.outcome = ci_outcome(comp, supports="above0", contradicts="below0")
                backbones.comparisons.append(comp)
                rows.append([c.tags["backbone"], c.tags["method"], fmt_comp(comp)])
    if rows:
        tables.append(
            "Backbones (BreastMNIST finetune, Δ balanced accuracy vs scratch)\n\n"
            + md_table(["backbone", "method", "Δ vs scratch"], rows)
        )

    def pair_claim(key, statement, source, test, pairs, metric):
        claim = Claim(key, statement, source, test)
        for label, a_id, b_id in pairs:
            a, b = _records(result, a_id), _records(result, b_id)
            if a and b:
                comp = compare(a, b, metric, label, n_boot)
                comp.outcome = ci_outcome(comp, supports="above0", contradicts="below0")
                claim.comparisons.append(comp)
        return decide(claim)

    skip_pairs = [
        (f"{c.tags['method']}: without - with skips", c.cell_id, c.cell_id.replace("/without", "/with"))
        for c in result.cells
        if c.tags.get("part") == "skips"
        and not c.tags["skips"]
        and c.cell_id.replace("/without", "/with") in by_id
    ]
    skips = pair_claim(
        "skips",
        "Skip connections are sub-optimal for generative pretext tasks: the encoder learns better features when "
        "the decoder cannot shortcut through the shallow maps.",
        "Zhang et al. 2023, Sec. 5 (as recorded in hfssl.pretext.ae)",
        "Balanced-accuracy difference (no skips - skips), paired: supports when the CI is above 0, contradicts "
        "when below 0.",
        skip_pairs,
        "balanced_accuracy",
    )
    rkb = pair_claim(
        "rkb-head",
        "Deep rotation heads collapse in RKB; shallow heads give the better encoder.",
        "Zhang et al. 2023, Sec. 5 (as recorded in hfssl.pretext.rkb)",
        "Balanced-accuracy difference (shallow head - deep head), paired: supports when the CI is above 0, "
        "contradicts when below 0.",
        [("rkb: depth 1 - depth 3", "rkb-head/depth=1", "rkb-head/depth=3")],
        "balanced_accuracy",
    )
    byol_cls = pair_claim(
        "byol-classification",
        "BYOL's online encoder transfers better to classification than its target (momentum) encoder.",
        "Zhang et al. 2023, Sec. 5 (as recorded in hfssl.pretext.byol)",
        "Balanced-accuracy difference (online - target) on BreastMNIST: supports when the CI is above 0, "
        "contradicts when below 0.",
        [("byol: online - target (BreastMNIST)", "byol/online/breastmnist", "byol/target/breastmnist")],
        "balanced_accuracy",
    )
    byol_seg = pair_claim(
        "byol-segmentation",
        "BYOL's online encoder also transfers better to segmentation (hypothesis; the paper's choice of encoder "
        "is per task).",
        "hypothesis; Zhang et al. 2023, Sec. 5",
        "Dice difference (online - target) on DRIVE: supports when the CI is above 0, contradicts when below 0.",
        [("byol: online - target (DRIVE)", "byol/online/drive", "byol/target/drive")],
        "dice",
    )
    decide(backbones)
    claims = [backbones, skips, rkb, byol_cls, byol_seg]
    rows = [[c.key, comp.label, comp.metric, fmt_comp(comp)] for c in claims[1:] for comp in c.comparisons]
    if rows:
        tables.append(
            "Paired differences between variants\n\n"
            + md_table(["question", "comparison", "metric", "difference"], rows)
        )
    return claims, "\n\n".join(tables)


STUDY = Study(
    name="architecture",
    title="Network architecture details",
    summary="2D backbones for one predictive and one contrastive method; generative decoders with vs without skip "
    "connections; RKB rotation-head depth; BYOL online vs target encoder for classification and segmentation.",
    build=build,
    assess=assess,
    default_datasets=DATASETS,
)
