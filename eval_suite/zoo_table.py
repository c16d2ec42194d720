"""The zoo's tables: ``hfssl zoo list`` / ``status`` and the generated MODEL_ZOO.md.

MODEL_ZOO.md is generated from the entries' folders (the store, or the records the repository
commits under ``reports/zoo/<budget>/<name>/``), never edited by hand: per entry the linear probe,
kNN and finetuning results (mean over seeds with a t 95 % CI) and the paired delta against the
same architecture at random init (linear, kNN) or trained from scratch (finetuning), with a paired
bootstrap CI over the shared test set (:func:`eval_suite.stats.paired_bootstrap`). An entry
*beats random init* when the linear probe's balanced-accuracy delta has a CI above zero. Notes of
an investigation (``<records>/notes/<name>.md``) are included under the entry.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hfssl.utils.io import write_text_atomic
from hfssl.zoo import ZooEntry, ZooManifest, ZooStore
from hfssl.zoo.store import ENTRY_FILE, RESULTS_FOLDER

METRICS = ("balanced_accuracy", "auc", "macro_f1", "minority_recall", "mcc")
SHORT = {
    "balanced_accuracy": "bal. acc",
    "auc": "AUC",
    "macro_f1": "macro-F1",
    "minority_recall": "min. recall",
    "mcc": "MCC",
}
PROTOCOL_CELLS = (
    ("linear", "linear/random-init"),
    ("knn", "knn/random-init"),
    ("finetune", "finetune/scratch"),
)
# external reference points (BreastMNIST 28 px, test split)
MEDMNIST_PLUS_DINO_VITB16_LINEAR = {"accuracy": 0.833, "auc": 0.868}  # Doerrich et al. 2024, MedMNIST+
SCRATCH_PARITY = {"accuracy": (0.842, 0.015), "auc": (0.876, 0.007)}  # this project's 3-seed parity run
OFFICIAL_FINETUNE_FILE = "medmnist_finetune.json"  # written by scripts/zoo_medmnist_finetune.py


# ----------------------------------------------------------------------------- loading
def load_entry_results(folder: Path) -> dict[str, Any] | None:
    """``{"info": zoo_entry.json, "cells": {cell_id: [records]}}`` of one entry folder, or None."""
    try:
        info = json.loads((folder / ENTRY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    by_id: dict[str, dict[str, Any]] = {}
    for sub in (folder / RESULTS_FOLDER, folder / RESULTS_FOLDER / "baselines"):
        for path in sorted(sub.glob("*.json")):
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            by_id[rec.get("record_id", path.stem)] = rec
    cells = {
        cid: [by_id[r] for r in c.get("records", []) if r in by_id]
        for cid, c in (info.get("cells") or {}).items()
    }
    return {"info": info, "cells": cells}


def _summary(records: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any]:
    from eval_suite.stats import metric_bounds, summarise

    return summarise([(r.get("metrics") or {}).get(metric) for r in records], metric_bounds(metric))


def _delta(
    a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], metric: str
) -> dict[str, Any] | None:
    from eval_suite.stats import paired_bootstrap

    if not a or not b:
        return None
    try:
        return paired_bootstrap(list(a), list(b), metric, n_resamples=1000)
    except Exception:  # noqa: BLE001 - unpaired or undefined: shown as a dash
        return None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _fmt_summary(s: Mapping[str, Any]) -> str:
    lo, hi = s["ci95"]
    if s["n"] == 0:
        return "–"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _fmt(s["mean"])
    return f"{_fmt(s['mean'])} [{_fmt(lo)}, {_fmt(hi)}]"


def _fmt_delta(d: Mapping[str, Any] | None) -> str:
    if d is None:
        return "–"
    lo, hi = d["ci95"]
    mark = " ✓" if lo > 0 else (" ✗" if hi < 0 else "")
    return f"{d['delta']:+.3f} [{lo:+.3f}, {hi:+.3f}]{mark}"


# ----------------------------------------------------------------------------- list / status
def _headline(folder: Path) -> str:
    loaded = load_entry_results(folder)
    if loaded is None:
        return ""
    cells = loaded["cells"]
    parts = []
    for cid in ("linear", "finetune"):
        if cells.get(cid):
            parts.append(f"{cid} bal.acc {_summary(cells[cid], 'balanced_accuracy')['mean']:.3f}")
    return ", ".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = (
        [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    )
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def list_table(entries: Sequence[ZooEntry], store: ZooStore, budget: str, *, org: str) -> str:
    """``hfssl zoo list``: name, method, family, dims, data, status here, headline results."""
    from hfssl.pretext.registry import method_family

    rows = []
    for e in entries:
        status = store.status(e.name, budget, e)
        rows.append(
            [
                e.name,
                e.method,
                method_family(e.method),
                f"{e.spatial_dims}D",
                f"{e.dataset} {e.image_size}",
                status,
                _headline(store.entry_dir(e.name, budget)) if status in ("built", "pushed", "stale") else "",
            ]
        )
    header = ["name", "method", "family", "dims", "data", f"status ({budget})", "headline (test)"]
    out = _table(header, rows) + f"\n\nstore: {store.root / budget}   Hub: {org}/<name>"
    if any(r[5] == "stale" for r in rows):
        out += (
            "\nstale: built with other settings than the manifest's, or from a required entry rebuilt since; "
            "'hfssl zoo build NAME --rebuild'"
        )
    return out


def _jobs_by_entry(store: ZooStore, budget: str) -> dict[str, list[dict[str, Any]]]:
    """Latest ledger entry of every job of a ``--launcher submitit`` build, grouped by entry name
    (state ``lost``: the ledger says queued/running but the job is gone)."""
    from eval_suite.launchers import Ledger, job_is_live, ledger_path

    state_dir = store.root / budget
    out: dict[str, list[dict[str, Any]]] = {}
    for job in Ledger(ledger_path(state_dir)).latest().values():
        name = str(job.get("label", "")).split(":", 1)[0]
        if job.get("state") in ("submitted", "running") and not job_is_live(job, state_dir):
            job = {**job, "state": "lost"}
        out.setdefault(name, []).append(job)
    return out


def _job_summary(jobs: Sequence[dict[str, Any]]) -> str:
    order = ("done", "running", "submitted", "failed", "lost")
    words = {"submitted": "queued"}
    counts = {s: sum(j.get("state") == s for j in jobs) for s in order}
    return ", ".join(f"{n} {words.get(s, s)}" for s, n in counts.items() if n)


def status_table(entries: Sequence[ZooEntry], store: ZooStore, budget: str) -> str:
    """``hfssl zoo status``: per entry its state, wall times, its cluster jobs (``--launcher
    submitit``: done / running / queued / failed) and a failed build's last lines."""
    from eval_suite.launchers import log_tail

    jobs = _jobs_by_entry(store, budget)
    rows, failures = [], []
    for e in entries:
        status = store.status(e.name, budget, e)
        info = store.info(e.name, budget) or {}
        pre = info.get("pretraining") or {}
        mine = jobs.get(e.name, [])
        if status == "partial" and any(j.get("state") in ("submitted", "running") for j in mine):
            status = "building"
        failed = store.work_dir(e.name, budget) / "failed.json"
        if status == "partial" and failed.is_file():
            status = "failed"
            try:
                data = json.loads(failed.read_text(encoding="utf-8"))
                failures.append(
                    f"{e.name}: {data.get('error')}\n    "
                    + "\n    ".join(data.get("traceback_tail", [])[-4:])
                )
            except (OSError, ValueError):
                pass
        if status in ("partial", "failed", "building"):
            for j in mine:
                if j.get("state") in ("failed", "lost"):
                    tail = j.get("tail") or log_tail(store.root / budget, str(j.get("job_id")))
                    failures.append(
                        f"{j.get('label')} (job {j.get('job_id')}): {j.get('error') or 'the job is gone'}"
                        + "".join(f"\n    {t}" for t in tail[-4:])
                    )
        pre_min = f"{pre['wall_seconds'] / 60:.1f}" if pre.get("wall_seconds") else ""
        eval_min = f"{info['evaluation_seconds'] / 60:.1f}" if info.get("evaluation_seconds") else ""
        rows.append([e.name, status, pre_min, eval_min, info.get("built_at", ""), _job_summary(mine)])
    out = _table(["name", "status", "pretrain min", "eval min", "built at", "jobs"], rows)
    if failures:
        out += "\n\nfailures:\n" + "\n".join(failures)
    return out


# ----------------------------------------------------------------------------- MODEL_ZOO.md
def entry_pairs(cell_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(cell, its baseline) of an entry's cells: the three protocols and the transfer rows."""
    pairs = [(cid, base) for cid, base in PROTOCOL_CELLS if cid in cell_ids]
    pairs += [(c, f"{c}/random-init") for c in cell_ids if c.startswith("linear-") and "/" not in c]
    return pairs


def _entry_rows(entry: ZooEntry, loaded: Mapping[str, Any]) -> dict[str, Any]:
    cells = loaded["cells"]
    out: dict[str, Any] = {}
    for cid, base in PROTOCOL_CELLS:
        out[cid] = {m: _summary(cells.get(cid) or [], m) for m in METRICS}
        out[f"{cid}-base"] = {m: _summary(cells.get(base) or [], m) for m in METRICS}
        out[f"{cid}-delta"] = {m: _delta(cells.get(cid) or [], cells.get(base) or [], m) for m in METRICS}
    out["transfer"] = {}
    for cid in cells:
        if cid.startswith("linear-") and "/" not in cid:
            base = f"{cid}/random-init"
            out["transfer"][cid] = {
                "own": _summary(cells[cid], "balanced_accuracy"),
                "auc": _summary(cells[cid], "auc"),
                "delta": _delta(cells[cid], cells.get(base) or [], "balanced_accuracy"),
            }
    return out


def write_model_zoo(
    manifest: ZooManifest,
    source: str | os.PathLike,
    out: str | os.PathLike = "MODEL_ZOO.md",
    *,
    budget: str = "cpu",
    entries: Sequence[ZooEntry] | None = None,
) -> Path:
    """Write MODEL_ZOO.md from the entry folders under ``source/<budget>/`` (store or records)."""
    from hfssl.pretext.registry import method_family

    root = Path(source) / budget
    entries = list(entries or manifest.entries)
    built: list[tuple[ZooEntry, dict[str, Any], dict[str, Any]]] = []
    missing: list[ZooEntry] = []
    for e in entries:
        loaded = load_entry_results(root / e.name)
        if loaded is None:
            missing.append(e)
        else:
            built.append((e, loaded, _entry_rows(e, loaded)))
    lines = [
        "# hfssl model zoo",
        "",
        "<!-- generated by `hfssl zoo table` from the entries' records; do not edit by hand -->",
        "",
        f"Budget: **{budget}**. {len(built)} of {len(entries)} entries built"
        + (f"; not built yet: {', '.join(e.name for e in missing)}." if missing else "."),
        "Every number is on the test split, mean over seeds with a t 95 % CI in brackets; Δ is the",
        "paired difference to the same architecture at random init (linear probe, kNN) or trained from",
        "scratch (finetuning) with a paired-bootstrap 95 % CI (✓ CI above 0, ✗ below 0).",
        "Load any entry with `zoo:NAME` (`hfssl evaluate --checkpoint zoo:NAME`, `load_feature_extractor`,",
        "`hfssl pretrain --init-from zoo:NAME`); rebuild it with the command in its section.",
        "",
    ]
    notes_dir, sweeps_dir = Path(source) / "notes", Path(source) / "sweeps"
    infos = {e.name: ld["info"] for e, ld, _ in built}  # each entry's zoo_entry.json, for staleness
    lines += _reading(built, budget, notes_dir, sweeps_dir, infos)
    lines += _official_finetune_lines(built, root)
    for zoo in sorted({e.zoo for e, _, _ in built}):
        group = [(e, ld, rows) for e, ld, rows in built if e.zoo == zoo]
        pre_s = sum(
            float((ld["info"].get("pretraining") or {}).get("wall_seconds") or 0) for _, ld, _ in group
        )
        eval_s = sum(float(ld["info"].get("evaluation_seconds") or 0) for _, ld, _ in group)
        hardware = sorted({str((ld["info"].get("pretraining") or {}).get("hardware")) for _, ld, _ in group})
        lines += [
            f"## {zoo.upper()} zoo: {group[0][0].dataset} {group[0][0].image_size} px",
            "",
            f"Build time of {'this entry' if len(group) == 1 else f'these {len(group)} entries'}: {(pre_s + eval_s) / 60:.0f} min (pretraining "
            f"{pre_s / 60:.0f} min, evaluation {eval_s / 60:.0f} min; the baselines, shared by every entry of an "
            f"architecture, count in the evaluation of the first entry built with it) on {'; '.join(hardware)}.",
            "",
        ]
        header = [
            "entry", "family", "linear bal. acc", "Δ linear", "linear AUC", "kNN bal. acc", "Δ kNN",
            "finetune bal. acc", "Δ finetune", "finetune AUC", "pretrain min",
        ]  # fmt: skip
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for e, ld, rows in group:
            pre = ld["info"].get("pretraining") or {}
            lines.append(
                "| "
                + " | ".join(
                    [
                        f"[{e.name}](#{e.name})",
                        method_family(e.method),
                        _fmt_summary(rows["linear"]["balanced_accuracy"]),
                        _fmt_delta(rows["linear-delta"]["balanced_accuracy"]),
                        _fmt_summary(rows["linear"]["auc"]),
                        _fmt_summary(rows["knn"]["balanced_accuracy"]),
                        _fmt_delta(rows["knn-delta"]["balanced_accuracy"]),
                        _fmt_summary(rows["finetune"]["balanced_accuracy"]),
                        _fmt_delta(rows["finetune-delta"]["balanced_accuracy"]),
                        _fmt_summary(rows["finetune"]["auc"]),
                        _fmt((pre.get("wall_seconds") or math.nan) / 60, 1),
                    ]
                )
                + " |"
            )
        e0, _, rows0 = group[0]
        lines += [
            "",
            f"Baselines ({e0.backbone}): random-init linear bal. acc "
            f"{_fmt_summary(rows0['linear-base']['balanced_accuracy'])}, AUC {_fmt_summary(rows0['linear-base']['auc'])}; "
            f"scratch finetune bal. acc {_fmt_summary(rows0['finetune-base']['balanced_accuracy'])}, "
            f"AUC {_fmt_summary(rows0['finetune-base']['auc'])}.",
            "",
        ]
    lines += ["## Entries", ""]
    for e, ld, rows in built:
        lines += _entry_section(e, ld, rows, notes_dir, infos)
        lines += sweep_section(sweeps_dir / f"{e.name}.jsonl")
    if missing:
        lines += ["## Not built yet", ""]
        lines += [f"- `{e.name}` ({e.method}): `hfssl zoo build {e.name} --budget {budget}`" for e in missing]
        lines.append("")
    lines += _paper_budget_section()
    path = Path(out)
    write_text_atomic(path, "\n".join(lines).rstrip() + "\n")
    return path


def _reading(
    built: Sequence[tuple[ZooEntry, dict[str, Any], dict[str, Any]]],
    budget: str,
    notes_dir: Path,
    sweeps_dir: Path,
    infos: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """The short reading on top, computed from the numbers (which methods beat random init)."""
    if not built:
        return []
    beats, not_beats = [], []
    for e, _, rows in built:
        d = rows["linear-delta"]["balanced_accuracy"]
        (beats if d is not None and d["ci95"][0] > 0 else not_beats).append(e.name)
    lines = ["## Reading", ""]
    stale = [e.name for e, ld, _ in built if records_are_stale(e, ld["info"], infos)]
    if stale:
        lines.append(
            f"- **Stale records** (built with other settings than the manifest's now, or from an entry they "
            f"require that was rebuilt since; rebuild with `--rebuild`): {', '.join(stale)}."
        )
    lines.append(
        f"- Linear probe beats random init significantly (balanced accuracy, paired CI above 0): "
        f"{len(beats)} of {len(built)}" + (f": {', '.join(beats)}." if beats else ".")
    )
    if not_beats:
        lines.append(
            f"- Not significantly better than random init under the linear probe: {', '.join(not_beats)}."
        )
    investigated = [
        n for n in not_beats if (notes_dir / f"{n}.md").is_file() or (sweeps_dir / f"{n}.jsonl").is_file()
    ]
    if not_beats:
        left = [n for n in not_beats if n not in investigated]
        lines.append(
            f"- Investigated (a note and/or a sweep in the entry's section): {len(investigated)} of {len(not_beats)}"
            + (f"; not yet: {', '.join(left)}." if left else ".")
        )
    reruns = _as_built_reruns(not_beats, sweeps_dir)
    if reruns:
        flipped = [n for n, significant in reruns if significant]
        lines.append(
            f"- Re-built as is in an investigation sweep (same recipe, data and seed; possibly another machine, "
            f"precision or code version): {len(flipped)} of {len(reruns)} then beat random init significantly"
            + (f" ({', '.join(flipped)})" if flipped else "")
            + ". The linear-probe CI covers test-set resampling only, not the variation between "
            "pretraining runs, so entries near the detection limit can land on either side."
        )
    # the two references below are BreastMNIST 28 px numbers: only entries on that data compare
    built = [t for t in built if t[0].dataset == "breastmnist" and t[0].image_size == 28]
    if not built:
        lines.append("")
        return lines
    best = max(
        built,
        key=lambda t: t[2]["linear"]["auc"]["mean"] if math.isfinite(t[2]["linear"]["auc"]["mean"]) else -1,
    )
    e, _, rows = best
    ref = MEDMNIST_PLUS_DINO_VITB16_LINEAR
    acc = _summary(best[1]["cells"].get("linear") or [], "accuracy")["mean"]
    lines.append(
        f"- Best linear probe (by AUC): `{e.name}`: ACC {_fmt(acc)}, AUC {_fmt(rows['linear']['auc']['mean'])} "
        f"vs a frozen ImageNet DINO ViT-B/16 at 28 px in MedMNIST+ (Doerrich et al. 2024): ACC {ref['accuracy']}, "
        f"AUC {ref['auc']} - {'beaten' if acc > ref['accuracy'] and rows['linear']['auc']['mean'] > ref['auc'] else 'not beaten'}."
    )
    ft = max(
        built,
        key=lambda t: (
            t[2]["finetune"]["auc"]["mean"] if math.isfinite(t[2]["finetune"]["auc"]["mean"]) else -1
        ),
    )
    e2, _, rows2 = ft
    d_bal, d_auc = rows2["finetune-delta"]["balanced_accuracy"], rows2["finetune-delta"]["auc"]
    preset = (e2.evaluation_for(budget) or {}).get("finetune_preset")
    lines.append(
        f"- Best finetuned entry (by AUC, `{preset}` recipe): `{e2.name}`: bal. acc Δ vs scratch {_fmt_delta(d_bal)}, "
        f"AUC Δ {_fmt_delta(d_auc)}. The project's scratch parity with the official `medmnist` recipe is "
        f"ACC {SCRATCH_PARITY['accuracy'][0]} ± {SCRATCH_PARITY['accuracy'][1]}, AUC {SCRATCH_PARITY['auc'][0]} ± "
        f"{SCRATCH_PARITY['auc'][1]} (3 seeds)"
        + (
            " - the `cpu` budget finetunes with the short `quick` recipe, so compare deltas, not levels."
            if preset != "medmnist"
            else "."
        )
    )
    lines.append("")
    return lines


def load_official_finetune(folder: Path) -> dict[str, Any] | None:
    """The entry's ``medmnist``-recipe comparison (``scripts/zoo_medmnist_finetune.py report``), or None."""
    try:
        return json.loads((folder / OFFICIAL_FINETUNE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _official_finetune_lines(
    built: Sequence[tuple[ZooEntry, dict[str, Any], dict[str, Any]]], root: Path
) -> list[str]:
    """One paragraph per entry finetuned with the official MedMNIST recipe against scratch (same
    seeds): both arms' levels, the paired deltas, and the project's scratch parity for reference."""
    lines: list[str] = []
    for e, ld, _ in built:
        r = load_official_finetune(root / e.name)
        if r is None:
            continue
        built_weights, tuned_weights = ld["info"].get("weights_sha256"), r.get("weights_sha256")
        other = bool(built_weights and tuned_weights and built_weights != tuned_weights)
        f, s, d = r["finetune"], r["scratch"], r["paired_delta"]
        where = "; ".join(sorted({str(w.get("hardware")) for w in (r.get("where") or {}).values() if w}))
        verdict = "beats" if r.get("beats_scratch") else "does not beat"
        lines.append(
            f"- Official `medmnist` recipe (100 epochs; {len(f['seeds'])} seeds; {where or 'unknown hardware'}): "
            f"`{e.name}` finetuned ACC {_fmt(f['accuracy']['mean'])} ± {_fmt(f['accuracy']['sd'])}, "
            f"AUC {_fmt(f['auc']['mean'])} ± {_fmt(f['auc']['sd'])}, bal. acc "
            f"{_fmt(f['balanced_accuracy']['mean'])}; scratch with the same seeds ACC {_fmt(s['accuracy']['mean'])} "
            f"± {_fmt(s['accuracy']['sd'])}, AUC {_fmt(s['auc']['mean'])} ± {_fmt(s['auc']['sd'])}, bal. acc "
            f"{_fmt(s['balanced_accuracy']['mean'])}. Paired Δ bal. acc {_fmt_delta(d['balanced_accuracy'])}, "
            f"AUC Δ {_fmt_delta(d['auc'])}: it {verdict} scratch (the bar: a paired CI above 0 on either). "
            f"Rebuild: `{r.get('command')}` after its two `run` arms with the same `--seeds`."
            + (
                " **Stale:** these runs finetuned another build of the entry's weights; run both arms again."
                if other
                else ""
            )
        )
    return lines + [""] if lines else []


def records_are_stale(
    entry: ZooEntry, info: Mapping[str, Any], others: Mapping[str, Mapping[str, Any]] | None = None
) -> bool:
    """Whether an entry's records (``zoo_entry.json``) come from other build settings than ``entry``'s,
    or from another build of an entry it requires than the one in ``others`` (name -> its
    ``zoo_entry.json``), compared by weights sha256 where both records carry it."""
    stored = info.get("entry")
    if isinstance(stored, dict) and entry.settings_differ(stored, str(info.get("budget", "cpu"))):
        return True
    return bool(
        entry.changed_requirements(info, lambda req: (others or {}).get(req, {}).get("weights_sha256"))
    )


def _entry_section(
    e: ZooEntry,
    ld: Mapping[str, Any],
    rows: Mapping[str, Any],
    notes_dir: Path,
    infos: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    info = ld["info"]
    pre = info.get("pretraining") or {}
    lines = [
        f"### {e.name}",
        "",
        f"`{e.method}` on {e.dataset} {e.image_size} px, backbone `{e.backbone}`"
        + (
            f" {json.dumps(e.overrides(info.get('budget', 'cpu')).get('backbone_kwargs'))}"
            if e.overrides(info.get("budget", "cpu")).get("backbone_kwargs")
            else ""
        )
        + f"; {pre.get('global_step')} steps in {_fmt((pre.get('wall_seconds') or math.nan) / 60, 1)} min on "
        f"{pre.get('hardware') or 'unknown hardware'}; evaluation {_fmt((info.get('evaluation_seconds') or math.nan) / 60, 1)} min. "
        f"Hub: `{info.get('repo_id')}`. Rebuild: `{info.get('rebuild')}`.",
        "",
    ]
    if e.notes:
        lines += [f"Note: {e.notes}", ""]
    if records_are_stale(e, info, infos):
        lines += [
            f"**Stale:** these records were built with other settings than the manifest's now, or from "
            f"an entry they require that was rebuilt since; "
            f"`hfssl zoo build {e.name} --rebuild --records reports/zoo` replaces them.",
            "",
        ]
    from eval_suite.zoo import precision_mismatches

    for cid, base, own, theirs in precision_mismatches(ld["cells"], entry_pairs(list(ld["cells"]))):
        lines += [
            f"**Precision differs:** `{cid}` ran in {_precision_name(own)} but its baseline `{base}` in "
            f"{_precision_name(theirs)} (a shared baseline computed by older code), so that Δ mixes the "
            f"precision change into the comparison; `hfssl zoo build {e.name} --rebuild --records reports/zoo` "
            f"recomputes the baseline in the precision of the entry.",
            "",
        ]
    header = ["protocol", *[SHORT[m] for m in METRICS]]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cid, base in PROTOCOL_CELLS:
        lines.append("| " + " | ".join([cid, *[_fmt_summary(rows[cid][m]) for m in METRICS]]) + " |")
        lines.append(
            "| "
            + " | ".join([f"Δ vs {base}", *[_fmt_delta(rows[f"{cid}-delta"][m]) for m in METRICS]])
            + " |"
        )
    for cid, t in rows["transfer"].items():
        lines.append(f"| {cid} (transfer) | {_fmt_summary(t['own'])} | {_fmt_summary(t['auc'])} | | | |")
        lines.append(f"| Δ vs random init | {_fmt_delta(t['delta'])} | | | | |")
    lines.append("")
    curve = pre.get("knn_monitor") or []
    if curve:
        points = ", ".join(
            f"{r.get('step')}: {_fmt(r.get('knn_balanced_accuracy'))}"
            for r in curve
            if r.get("knn_balanced_accuracy") is not None
        )
        lines += [
            f"Online kNN balanced accuracy on the validation split during pretraining (step: value): {points}.",
            "",
        ]
    note = notes_dir / f"{e.name}.md"
    if note.is_file():
        lines += [note.read_text(encoding="utf-8").strip(), ""]
    return lines


def _precision_name(value: str) -> str:
    return "fp32" if value == "no" else value


def _as_built_reruns(names: Sequence[str], sweeps_dir: Path) -> list[tuple[str, bool]]:
    """(entry, linear delta significant?) for every sweep variant that re-ran an entry unchanged."""
    out = []
    for name in names:
        path = sweeps_dir / f"{name}.jsonl"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            delta = ((row.get("probes") or {}).get("linear") or {}).get("delta_balanced_accuracy")
            if row and not row.get("overrides") and delta is not None:
                out.append((name, delta["ci95"][0] > 0))
                break
    return out


def sweep_section(path: Path) -> list[str]:
    """The investigation sweep of an entry (``scripts/zoo_sweep.py`` writes ``sweeps/NAME.jsonl``)."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        return []
    pretext_keys = sorted({k for r in rows for k in r.get("pretext") or {} if k != "loss"})
    # plain accuracy (the MedMNIST+ reference's metric) is recorded by sweeps since 2026-12-05
    with_acc = any("accuracy" in r["probes"]["linear"] for r in rows)
    header = [
        "variant", "overrides", "precision", "steps", "pretrain min", "loss", *[k.removeprefix("pretext/") for k in pretext_keys],
        "linear bal. acc", "Δ linear", "linear AUC", *(["linear ACC"] if with_acc else []), "kNN bal. acc", "Δ kNN",
    ]  # fmt: skip
    lines = [
        f"Investigation sweep (`scripts/zoo_sweep.py`, the entry's recipe, data and seed except where the overrides column says otherwise; "
        f"on {rows[0].get('hardware') or 'unknown hardware'}; pretext metrics are the last logged training batches):",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in rows:
        pre, lin, knn = r.get("pretext") or {}, r["probes"]["linear"], r["probes"]["knn"]
        over = (
            ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted((r.get("overrides") or {}).items()))
            or "as built"
        )
        cells = [
            r["variant"], over, str(r.get("precision") or "–"), str(r.get("global_step")), _fmt((r.get("pretrain_wall_seconds") or math.nan) / 60, 1),
            _fmt(pre.get("loss")), *[_fmt(pre.get(k)) for k in pretext_keys],
            _fmt(lin.get("balanced_accuracy")), _fmt_delta(lin.get("delta_balanced_accuracy")), _fmt(lin.get("auc")),
            *([_fmt(lin.get("accuracy"))] if with_acc else []),
            _fmt(knn.get("balanced_accuracy")), _fmt_delta(knn.get("delta_balanced_accuracy")),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _paper_budget_section() -> list[str]:
    return [
        "## The `paper` budget (GPUs)",
        "",
        "The `cpu` budget builds each zoo in about 90 minutes on a 2-core CPU (measured build times head each zoo's section) and is far shorter than the",
        "recipes. The `paper` budget runs each recipe as written (e.g. SimCLR 400 epochs); on GPUs:",
        "",
        "```bash",
        "hfssl zoo build --all --zoo 2d --budget paper --device cuda   # one GPU, entry after entry",
        "# one recipe at the paper length on 8 GPUs (outside the zoo store):",
        "accelerate launch --multi_gpu --num_processes 8 -m hfssl.pretrain \\",
        "    --config scripts/recipes/simclr_breastmnist.yaml --output-dir runs/simclr_breastmnist",
        "```",
        "",
    ]
