"""Building the zoo: pretrain an entry with its recipe and budget -> evaluate -> card -> store.

``build_entry(entry)`` is resumable at every stage (invariants):

* **Pretraining** runs in ``STORE/<budget>/.work/<name>/pretrain`` with periodic checkpoints;
  a killed build resumes from the latest one (``resume_from="latest"``); ``pretrain_done.json``
  marks it finished.
* **Evaluation** is a grid (:func:`eval_suite.studies.grid.run_grid`) over the entry's cells:
  linear probe, kNN and finetuning on the pretraining data's labels (every seed), plus a linear
  probe on each transfer dataset. Finished cells are skipped on re-run. The baselines (same
  architecture at random init for linear/kNN, trained from scratch for finetuning) are their own
  grid shared by every entry of that architecture (``STORE/<budget>/.baselines/<arch>``).
* **Finishing**: records are relabelled to the entry's public spec ``zoo:NAME`` (so a record says
  how to reproduce it: ``hfssl evaluate --checkpoint zoo:NAME``), the card is rendered, and the
  complete entry folder is renamed into place in one ``os.replace``. Until then the entry does not
  exist; after it, the work folder is removed.
* Finished entries are skipped; an entry whose lock a live builder holds is skipped as ``busy``,
  so several ``hfssl zoo build --all`` processes share one store without doing work twice.
* **Settings** (:meth:`ZooEntry.build_settings`: recipe, overrides, evaluation) are written into
  the work folder when a build starts; a partial build with other settings is discarded, never
  resumed. A finished entry built with other settings than the manifest's now (or from a required
  entry rebuilt since) is ``stale``: skipped and listed as such until ``--rebuild``, which builds
  it anew while the old entry stays usable, replaced only by the final rename. Where only the
  evaluation changed, the rebuild keeps the stored weights and evaluates again
  (:func:`reuse_stored_pretraining`).
* **On a cluster** (``--launcher submitit``, :func:`build_entries`) every entry's pretraining and
  evaluation cells are jobs of their own, submitted together; the driver finishes each entry whose
  jobs all succeeded exactly as above (same store, same atomic rename). The ledger and job logs are
  under ``STORE/<budget>/submitit/``. A pretraining job with several GPUs or nodes (``--gpus-per-job`` /
  ``--nodes``) runs ``accelerate launch`` on every node like a study's (:func:`pretrain_job`), into the
  same resumable folder, and node 0 writes ``pretrain_done.json``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfssl.errors import CheckpointError, ConfigError
from hfssl.utils.io import file_sha256, write_json_atomic, write_text_atomic
from hfssl.utils.logging import get_logger
from hfssl.zoo import ZooEntry, ZooManifest, ZooStore, load_manifest
from hfssl.zoo.store import ENTRY_FILE, PRETEXT_FOLDER, RESULTS_FOLDER

logger = get_logger("eval_suite.zoo")

PRETRAIN_DONE = "pretrain_done.json"
FAILED_FILE = "failed.json"
SETTINGS_FILE = "build_settings.json"  # the settings a work folder was started with
HEADLINE_METRICS = ("balanced_accuracy", "auc", "macro_f1", "minority_recall", "mcc")


@dataclass
class BuildOutcome:
    name: str
    status: str  # built / skipped / busy
    seconds: float = 0.0


# ----------------------------------------------------------------------------- cells
def _eval_common(entry: ZooEntry, budget: str) -> dict[str, Any]:
    ev = entry.evaluation_for(budget)
    return {"dataset": entry.dataset, "image_size": entry.image_size, "seeds": list(ev["seeds"])}


def entry_cells(entry: ZooEntry, budget: str, checkpoint: str | None = None) -> list[Any]:
    """The entry's evaluation cells (``checkpoint``: its backbone folder) and their baselines."""
    from eval_suite.studies.grid import Cell, PretrainSpec

    ev = entry.evaluation_for(budget)
    common = _eval_common(entry, budget)
    arch = PretrainSpec(
        method="rot",  # only the architecture matters here (scratch donors); one key for every entry
        backbone=entry.backbone,
        dataset=entry.dataset,
        image_size=entry.image_size,
        backbone_kwargs=dict(entry.overrides(budget).get("backbone_kwargs") or {}),
    )
    finetune: dict[str, Any] = {"protocol": "finetune", "preset": ev.get("finetune_preset", "quick")}
    if ev.get("finetune_epochs"):
        finetune["epochs"] = int(ev["finetune_epochs"])
    cells = [
        Cell("linear/random-init", arch, {**common, "protocol": "linear", "random_init": True}),
        Cell("knn/random-init", arch, {**common, "protocol": "knn", "random_init": True}),
        Cell("finetune/scratch", arch, {**common, **finetune, "protocol": "scratch"}),
        Cell(
            "linear",
            arch,
            {**common, "protocol": "linear"},
            entry.name,
            "linear/random-init",
            checkpoint=checkpoint,
        ),
        Cell(
            "knn", arch, {**common, "protocol": "knn"}, entry.name, "knn/random-init", checkpoint=checkpoint
        ),
        Cell("finetune", arch, {**common, **finetune}, entry.name, "finetune/scratch", checkpoint=checkpoint),
    ]
    for t in ev.get("transfer") or []:
        where = f"{t['dataset']}{t['image_size']}"
        tcommon = {**common, "dataset": t["dataset"], "image_size": int(t["image_size"])}
        cells.append(
            Cell(f"linear-{where}/random-init", arch, {**tcommon, "protocol": "linear", "random_init": True})
        )
        cells.append(
            Cell(
                f"linear-{where}",
                arch,
                {**tcommon, "protocol": "linear"},
                entry.name,
                f"linear-{where}/random-init",
                checkpoint=checkpoint,
            )
        )
    return cells


def _arch_slug(entry: ZooEntry, budget: str) -> str:
    from eval_suite.studies.grid import _sha

    kwargs = entry.overrides(budget).get("backbone_kwargs") or {}
    return f"{entry.backbone}-{entry.dataset}{entry.image_size}-{_sha(kwargs)[:8]}"


# ----------------------------------------------------------------------------- build
def check_buildable(entry: ZooEntry, budget: str, store: ZooStore) -> None:
    """Everything a build needs before it starts: its recipe, its required entries."""
    if not entry.recipe_path().is_file():
        raise ConfigError(
            f"zoo entry {entry.name}: recipe {entry.recipe_path()} is missing",
            "run from a source checkout (scripts/recipes/) or set $HFSSL_RECIPES_DIR to the recipes folder",
        )
    for req in entry.requires:
        if not store.is_built(req, budget):
            raise CheckpointError(
                f"zoo entry {entry.name} needs {req}, which is not built at the {budget} budget",
                f"run 'hfssl zoo build {req} --budget {budget}' first (or --all)",
            )


def build_entry(
    entry: ZooEntry,
    *,
    budget: str = "cpu",
    store: ZooStore | None = None,
    data_dir: str | None = None,
    device: str = "auto",
    records_dir: str | os.PathLike | None = None,
    org: str | None = None,
    manifest: ZooManifest | None = None,
    log: Callable[[str], None] = print,
    eval_seconds: float | None = None,
    rebuild: bool = False,
) -> BuildOutcome:
    """Build (or resume, or skip) one entry; see the module docstring. ``eval_seconds``: the
    evaluation's wall time when jobs elsewhere did it (the card and MODEL_ZOO.md report it).
    A built entry is skipped (status ``stale`` when the manifest's settings changed since) unless
    ``rebuild``; the old entry stays usable until the new one replaces it."""
    store = store or ZooStore()
    manifest = manifest or load_manifest()
    if store.is_built(entry.name, budget) and not rebuild:
        if store.is_stale(entry, budget):
            return BuildOutcome(entry.name, "stale")
        if records_dir is not None:
            export_records(store, entry.name, budget, records_dir)
        return BuildOutcome(entry.name, "skipped")
    check_buildable(entry, budget, store)
    with store.lock(entry.name, budget) as held:
        if not held:
            return BuildOutcome(entry.name, "busy")
        if store.is_built(entry.name, budget) and not rebuild:  # finished by another builder meanwhile
            return BuildOutcome(entry.name, "skipped")
        t0 = time.perf_counter()
        work = store.work_dir(entry.name, budget)
        pretrain_dir = work / "pretrain"
        claim_work_dir(entry, budget, work, log)
        if rebuild:
            reuse_stored_pretraining(entry, budget, store, pretrain_dir, log)
        (work / FAILED_FILE).unlink(missing_ok=True)
        try:
            pre = _pretrain(entry, budget, pretrain_dir, data_dir, device, log)
            log(f"  evaluating {entry.name}")
            t_eval = time.perf_counter()
            cells = entry_cells(entry, budget, checkpoint=str(pretrain_dir / "backbone"))
            records = _evaluate(entry, budget, store, cells, work, data_dir, device)
            if eval_seconds is None:
                eval_seconds = time.perf_counter() - t_eval
            repo_id = entry.repo_id(org or manifest.default_org())
            _finish(entry, budget, store, pretrain_dir, records, pre, eval_seconds, repo_id, work)
        except BaseException as err:
            import traceback

            # what 'hfssl zoo status' shows; the work folder stays so that the next build resumes
            write_json_atomic(
                work / FAILED_FILE,
                {
                    "error": f"{type(err).__name__}: {err}",
                    "traceback_tail": traceback.format_exc().splitlines()[-12:],
                    "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )
            raise
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    if records_dir is not None:
        export_records(store, entry.name, budget, records_dir)
    return BuildOutcome(entry.name, "built", seconds)


def claim_work_dir(entry: ZooEntry, budget: str, work: Path, log: Callable[[str], None] = print) -> None:
    """Create the entry's work folder, or keep it to resume when it was started with the same
    build settings; a partial build with other settings (the manifest changed since) is discarded,
    since resuming it would mix two configurations in one checkpoint."""
    settings = entry.build_settings(budget)
    path = work / SETTINGS_FILE
    if work.is_dir():
        try:
            same = json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(settings))
        except (OSError, ValueError):
            same = True  # unmarked (a build of an older hfssl): resumed, as it always was
        if not same:
            log(f"  {entry.name}: discarding a partial build made with other settings")
            shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, settings)


def reuse_stored_pretraining(
    entry: ZooEntry, budget: str, store: ZooStore, pretrain_dir: Path, log: Callable[[str], None] = print
) -> bool:
    """Seed a rebuild's pretraining folder with the stored entry's weights when only its evaluation
    is stale: same recipe and overrides, no required entry rebuilt since, only e.g. a transfer
    dataset added. Pretraining again would cost the whole entry to add one evaluation row; the
    stored pretraining record (steps, wall time, hardware) is kept and says which build it came
    from. A rebuild of an entry that is not stale (code changed, a timing run) pretrains anew."""
    if (pretrain_dir / PRETRAIN_DONE).is_file() or not store.is_built(entry.name, budget):
        return False
    info = store.info(entry.name, budget) or {}
    stored, pre = info.get("entry"), info.get("pretraining")
    if not isinstance(stored, dict) or not isinstance(pre, dict):
        return False
    # not stale at all (nothing differs), or its pretraining itself changed: pretrain anew
    if entry.differing_settings(stored, budget) != {"evaluation"} or store.changed_requirements(
        entry, budget, info
    ):
        return False
    if entry.requires and "required_weights" not in info:  # built from which teacher? unknown
        return False
    src = store.entry_dir(entry.name, budget)
    shutil.rmtree(pretrain_dir, ignore_errors=True)
    (pretrain_dir / "backbone").mkdir(parents=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copy2(src / f, pretrain_dir / "backbone" / f)
    shutil.copytree(src / PRETEXT_FOLDER, pretrain_dir / "pretext_model")
    write_json_atomic(pretrain_dir / PRETRAIN_DONE, {**pre, "reused_from_build": info.get("built_at")})
    log(f"  {entry.name}: only the evaluation changed; reusing the pretraining built {info.get('built_at')}")
    return True


def _pretrain_overrides(
    entry: ZooEntry, budget: str, out: Path, data_dir: str | None, device: str
) -> tuple[dict[str, Any], bool]:
    """The recipe overrides of an entry's pretraining into ``out`` (its budget, periodic checkpoints,
    resume from the latest one when a killed build left one) and whether it resumes."""
    from hfssl.training import CheckpointManager
    from hfssl.utils.logging import progress_disabled

    overrides = entry.overrides(budget)
    steps = int(overrides.get("max_steps") or 0)
    overrides.update(
        output_dir=str(out),
        report_to="none",
        disable_tqdm=progress_disabled(),
        use_cpu=device == "cpu",
        save_strategy="steps",
        # checkpoints let a killed build resume; four per run keeps the loss of a kill small
        save_steps=max(1, steps // 4) if steps > 0 else 500,
        save_total_limit=1,
        eval_strategy="steps" if steps >= 8 else "no",
        eval_steps=max(1, steps // 4) if steps > 0 else 100,
    )
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    # the trainer's own checkpoint lookup (OUTPUT_DIR/checkpoints/latest, else the newest complete one)
    resumed = CheckpointManager(out).latest() is not None
    if resumed:
        overrides["resume_from"] = "latest"
    elif out.exists():
        overrides["overwrite_output_dir"] = True  # a kill before the first checkpoint: start again
    return overrides, resumed


def _write_pretrain_done(
    entry: ZooEntry,
    budget: str,
    out: Path,
    *,
    global_step: int,
    wall: float,
    resumed: bool,
    last_logs: dict[str, Any],
    evaluations: list[dict[str, Any]],
) -> dict[str, Any]:
    """``pretrain_done.json``: the finished pretraining as the card and MODEL_ZOO.md report it."""
    training_args = _read_json(out / "training_args.json")
    info = {
        "global_step": global_step,
        "wall_seconds": round(wall, 1),  # of the last (possibly resumed) session
        "resumed": resumed,
        "train_runtime": training_args.get("train_runtime"),
        "hardware": training_args.get("hardware"),
        "last_logs": last_logs,
        "knn_monitor": evaluations,
        "recipe": entry.recipe,
        "overrides": {k: v for k, v in entry.overrides(budget).items()},
    }
    write_json_atomic(out / PRETRAIN_DONE, info)
    return info


def _pretrain(
    entry: ZooEntry, budget: str, out: Path, data_dir: str | None, device: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """The entry's pretraining in this process (resumable, see the module docstring); its
    ``pretrain_done.json`` (read back when an earlier build or job finished it)."""
    done = out / PRETRAIN_DONE
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    from hfssl.training import arguments_from_recipe, pretrain_backbone

    overrides, resumed = _pretrain_overrides(entry, budget, out, data_dir, device)
    model_args, data_args, args = arguments_from_recipe(entry.recipe_path(), overrides)
    steps = int(overrides.get("max_steps") or 0)
    log(f"  pretraining {entry.name}: {entry.method} on {entry.dataset} {entry.image_size}px, {steps} steps")
    t0 = time.perf_counter()
    result = pretrain_backbone(model_args, data_args, args)
    return _write_pretrain_done(
        entry,
        budget,
        out,
        global_step=result.global_step,
        wall=time.perf_counter() - t0,
        resumed=resumed,
        last_logs=result.last_logs,
        evaluations=result.evaluations,
    )


def distributed_config(
    entry: ZooEntry,
    budget: str,
    out: Path,
    data_dir: str | None,
    device: str,
    world: int,
    *,
    sync_batchnorm: bool = True,
) -> tuple[dict[str, Any], bool]:
    """The ``--config`` values of the entry's pretraining on ``world`` processes, and whether it
    resumes: the recipe with the same overrides as :func:`_pretrain`, the per-device batch divided by
    ``world`` (the global batch, learning rate and steps stay the recipe's, as in
    ``scripts/slurm_pretrain.sbatch``) and, on GPUs (``sync_batchnorm``; DDP refuses it on CPU
    modules), synchronised BatchNorm, so that the checkpoint is the one a single process would train.
    A batch that does not split is a one-line error."""
    from eval_suite.launchers import split_global_batch
    from hfssl.training import arguments_from_recipe
    from hfssl.utils.args import load_config_file

    overrides, resumed = _pretrain_overrides(entry, budget, out, data_dir, device)
    if not resumed:
        # every node decides alike even when another node already created the folder
        overrides["overwrite_output_dir"] = True
    _, _, args = arguments_from_recipe(entry.recipe_path(), overrides)  # validates the names, as _pretrain
    values = load_config_file(str(entry.recipe_path()))
    values.update({str(k).replace("-", "_"): v for k, v in overrides.items()})  # as arguments_from_recipe
    values["per_device_train_batch_size"] = split_global_batch(
        int(args.per_device_train_batch_size), world, f"zoo entry {entry.name}"
    )
    if sync_batchnorm:
        values["sync_batchnorm"] = True
    return values, resumed


def _pretrain_distributed(
    entry: ZooEntry,
    budget: str,
    out: Path,
    data_dir: str | None,
    device: str,
    nodes: int,
    gpus: int,
    log: Callable[[str], None],
) -> None:
    """The entry's pretraining across ``nodes`` x ``gpus`` processes (one per GPU; one per node
    without GPUs). Each node of the job runs ``accelerate launch -m hfssl.pretrain --config CONFIG``
    (:func:`eval_suite.launchers.run_accelerate`, the path of the studies' multi-process pretrainings)
    into the same resumable folder ``out`` (on a file system every node sees; a resubmitted job resumes
    from its latest checkpoint); node 0 then writes ``pretrain_done.json`` from the run's files."""
    from eval_suite.launchers import is_main_node, run_accelerate

    if (out / PRETRAIN_DONE).is_file():
        return
    gpus_per_node = max(gpus, 1)
    world = nodes * gpus_per_node
    values, resumed = distributed_config(
        entry,
        budget,
        out,
        data_dir,
        device,
        world,
        sync_batchnorm=device != "cpu" and gpus > 0 and _has_cuda(),
    )
    node = os.environ.get("SLURM_NODEID", "0")
    config = out.parent / f"pretrain_config-{world}p-node{node}.json"  # outside OUTPUT_DIR: not an output
    write_json_atomic(config, values)
    steps = int(values.get("max_steps") or 0)
    log(
        f"  pretraining {entry.name}: {entry.method} on {entry.dataset} {entry.image_size}px, {steps} steps, "
        f"{nodes} node(s) x {gpus_per_node} process(es)"
    )
    t0 = time.perf_counter()
    run_accelerate(["--config", str(config)], nodes, gpus_per_node)
    if not is_main_node():
        return
    logs, evaluations = _metrics_records(out)
    _write_pretrain_done(
        entry,
        budget,
        out,
        global_step=int(logs.get("step") or 0),
        wall=time.perf_counter() - t0,
        resumed=resumed,
        last_logs=logs,
        evaluations=evaluations,
    )


def _has_cuda() -> bool:
    """Whether this node's processes will train on GPUs (a CPU-only node refuses synchronised BatchNorm)."""
    import torch

    return torch.cuda.is_available()


def _metrics_records(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """From a finished run's ``metrics.jsonl``: the last training log (it has a ``loss``; the trainer
    logs at the last step) and the kNN monitor's records (the others)."""
    logs: dict[str, Any] = {}
    evaluations: list[dict[str, Any]] = []
    try:
        lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if "loss" in record:
                logs = record
            else:
                evaluations.append(record)
    return logs, evaluations


def precision_mismatches(
    cells: Mapping[str, Sequence[Mapping[str, Any]]], pairs: Sequence[tuple[str, str]]
) -> list[tuple[str, str, str, str]]:
    """``(cell, baseline, its precision, the baseline's)`` for every pair whose records ran in
    different precisions. The shared baselines are cached by their settings, not by the precision
    the code resolves, so a changed default (e.g. fp32 ViT features, 2026-12-05) would otherwise pair
    new records with old baselines and skew the delta by the precision alone."""
    from eval_suite.results import record_precision

    out = []
    for cid, base in pairs:
        own = {record_precision(r) for r in cells.get(cid) or []} - {None}
        theirs = {record_precision(r) for r in cells.get(base) or []} - {None}
        if own and theirs and own != theirs:
            out.append((cid, base, "/".join(sorted(own)), "/".join(sorted(theirs))))
    return out


def _evaluate(
    entry: ZooEntry,
    budget: str,
    store: ZooStore,
    cells: Sequence[Any],
    work: Path,
    data_dir: str | None,
    device: str,
) -> dict[str, list[dict[str, Any]]]:
    from eval_suite.studies.grid import CheckpointStore, run_grid

    baselines = [c for c in cells if c.checkpoint is None]
    # the comparison with the baselines is made by the table (MODEL_ZOO.md), across the two grids
    own = [dataclasses.replace(c, baseline=None) for c in cells if c.checkpoint is not None]
    base_dir = store.root / budget / ".baselines" / _arch_slug(entry, budget)
    donors = CheckpointStore(store.root / budget / ".donors")
    run = functools.partial(
        run_grid,
        store=donors,
        data_dir=data_dir,
        cache_dir=str(store.root / budget / ".features"),
        device=device,
    )
    base = run(baselines, base_dir, title="baselines")
    mine = run(own, work / "eval", title=entry.name)
    records = {**base.records, **mine.records}
    pairs = [(c.cell_id, c.baseline) for c in cells if c.baseline]
    stale = {b for _, b, _, _ in precision_mismatches(records, pairs)}
    if not stale:
        return records
    # baselines from older code, in another precision than this build resolves: computed again
    logger.warning("%s: recomputing baseline cells %s in this build's precision", entry.name, sorted(stale))
    for cell in baselines:
        if cell.cell_id in stale:
            # the records too: the runner skips a seed whose record file exists
            for rec in records[cell.cell_id]:
                (base_dir / "results" / f"{rec['record_id']}.json").unlink(missing_ok=True)
            (base_dir / "cells" / cell.marker_name()).unlink(missing_ok=True)
    return {**run(baselines, base_dir, title="baselines").records, **mine.records}


def relabel_records(records: Sequence[dict[str, Any]], spec: str, name: str) -> list[dict[str, Any]]:
    """Copies of ``records`` with checkpoint spec ``spec`` and display name ``name`` and the
    record ids recomputed (the id covers the spec), valid under the record schema."""
    from eval_suite.results import record_key, upgrade_record, validate_record

    out = []
    for rec in records:
        new = copy.deepcopy(upgrade_record(rec))
        new["checkpoint"] = {**new["checkpoint"], "spec": spec, "name": name}
        new["record_id"] = record_key(
            **{
                k: new[k]
                for k in ("checkpoint", "dataset", "protocol", "regime", "policy", "seed", "corruption")
            }
        )
        problems = validate_record(new)
        if problems:  # pragma: no cover - a schema change that relabelling does not follow
            raise RuntimeError(f"relabelled record is invalid: {problems}")
        out.append(new)
    return out


def _finish(
    entry: ZooEntry,
    budget: str,
    store: ZooStore,
    pretrain_dir: Path,
    records: dict[str, list[dict[str, Any]]],
    pre: dict[str, Any],
    eval_seconds: float,
    repo_id: str,
    work: Path,
) -> None:
    import eval_suite.results as record_schema
    from hfssl.hub.push import prepare_card
    from hfssl.zoo.card import card_appendix

    final = store.entry_dir(entry.name, budget)
    tmp = final.parent / f".tmp-{entry.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for f in ("config.json", "model.safetensors"):
            shutil.copy2(pretrain_dir / "backbone" / f, tmp / f)
        shutil.copytree(pretrain_dir / "pretext_model", tmp / PRETEXT_FOLDER)
        results = tmp / RESULTS_FOLDER
        results.mkdir()
        spec = f"zoo:{entry.name}"
        summary: dict[str, Any] = {}
        for cell_id, recs in records.items():
            own = not any(r["checkpoint"].get("random_init") for r in recs) and not cell_id.endswith(
                ("random-init", "scratch")
            )
            if own:
                recs = relabel_records(recs, spec, entry.name)
            for rec in recs:
                sub = results if own else results / "baselines"
                sub.mkdir(exist_ok=True)
                write_json_atomic(sub / f"{rec['record_id']}.json", rec)
            summary[cell_id] = {"records": [r["record_id"] for r in recs], "baseline": not own}
        info = {
            "name": entry.name,
            "budget": budget,
            "repo_id": repo_id,
            "entry": entry.to_dict(),
            "pretraining": pre,
            "evaluation_seconds": round(eval_seconds, 1),
            "cells": summary,
            # what makes a later rebuild of a required entry (a teacher) mark this one stale
            "weights_sha256": file_sha256(tmp / "model.safetensors"),
            "required_weights": {req: store.weights_sha256(req, budget) for req in entry.requires},
            "rebuild": f"hfssl zoo build {entry.name} --budget {budget}",
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_json_atomic(tmp / ENTRY_FILE, info)
        plan = prepare_card(
            tmp, repo_id, results_dir=results, record_schema=record_schema, card_appendix=card_appendix(info)
        )
        write_text_atomic(tmp / "README.md", plan.card_text)
        if final.exists():  # a stale copy (e.g. an older build): replaced whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# ----------------------------------------------------------------------------- records export
def export_records(store: ZooStore, name: str, budget: str, out: str | os.PathLike) -> Path:
    """Copy an entry's small outputs (records, card, zoo_entry.json) to ``out/<budget>/<name>/``
    (what the repository commits so MODEL_ZOO.md can be regenerated without the weights). Files
    the build does not write (e.g. the official-recipe report of scripts/zoo_medmnist_finetune.py)
    are kept: they say which weights they are about, and MODEL_ZOO.md flags them when those differ."""
    src = store.entry_dir(name, budget)
    dest = Path(out) / budget / name
    tmp = dest.parent / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src / RESULTS_FOLDER, tmp / RESULTS_FOLDER)
    for f in (ENTRY_FILE, "README.md"):
        shutil.copy2(src / f, tmp / f)
    if dest.exists():
        for item in dest.iterdir():
            if item.name not in (RESULTS_FOLDER, ENTRY_FILE, "README.md") and item.is_file():
                shutil.copy2(item, tmp / item.name)
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


# ----------------------------------------------------------------------------- cluster builds
def pretrain_job(entry: ZooEntry, budget: str, out: str, data_dir: str | None, device: str) -> None:
    """A zoo entry's pretraining as a job of its own (``hfssl zoo build --launcher submitit``): in the
    job's process, or, in a job with several GPUs or nodes (``--gpus-per-job`` / ``--nodes``), under
    ``accelerate launch`` on every node, like a study's pretraining (:func:`_pretrain_distributed`)."""
    from eval_suite.launchers import distributed_world

    def log(msg: str) -> None:
        print(msg, flush=True)

    nodes, gpus = distributed_world()
    if nodes * max(gpus, 1) > 1:
        _pretrain_distributed(entry, budget, Path(out), data_dir, device, nodes, gpus, log)
    else:
        _pretrain(entry, budget, Path(out), data_dir, device, log)


def check_distributed(entry: ZooEntry, budget: str, world: int) -> None:
    """Refuse, before anything is submitted, an entry whose batch does not split over ``world``
    processes (one line naming the fix); a no-op for one process."""
    if world <= 1:
        return
    from eval_suite.launchers import split_global_batch
    from hfssl.training import arguments_from_recipe

    _, _, args = arguments_from_recipe(entry.recipe_path(), entry.overrides(budget))
    split_global_batch(int(args.per_device_train_batch_size), world, f"zoo entry {entry.name}")


def entry_tasks(
    entry: ZooEntry, budget: str, store: ZooStore, data_dir: str | None, device: str, launcher: Any
) -> list[Any]:
    """The launcher tasks of one entry: its pretraining, then its evaluation cells (which need it)
    and its architecture's baseline cells (shared by every entry of that architecture)."""
    from eval_suite.launchers import Task
    from eval_suite.studies.grid import CheckpointStore, grid_tasks, prepare_grid

    work = store.work_dir(entry.name, budget)
    pretrain_dir = work / "pretrain"
    key = f"zoo-pretrain/{budget}/{entry.name}"
    tasks = [
        Task(
            key=key,
            kind="pretrain",
            label=f"{entry.name}:pretrain",
            fn=functools.partial(pretrain_job, entry, budget, str(pretrain_dir), data_dir, device),
            is_done=(pretrain_dir / PRETRAIN_DONE).is_file,
            multi_process=True,  # --gpus-per-job / --nodes > 1: accelerate launch (pretrain_job)
        )
    ]
    cells = entry_cells(entry, budget, checkpoint=str(pretrain_dir / "backbone"))
    baselines = [c for c in cells if c.checkpoint is None]
    own = [dataclasses.replace(c, baseline=None) for c in cells if c.checkpoint is not None]
    base_dir = store.root / budget / ".baselines" / _arch_slug(entry, budget)
    donors = CheckpointStore(store.root / budget / ".donors")
    cache = str(store.root / budget / ".features")
    for cells_, out, needs in ((baselines, base_dir, ()), (own, work / "eval", (key,))):
        run_id, pending = prepare_grid(cells_, out, f"zoo {entry.name}", launcher)
        tasks += grid_tasks(
            pending,
            out,
            donors,
            data_dir=data_dir,
            cache_dir=cache,
            device=device,
            run_id=run_id,
            needs={c.cell_id: needs for c in pending},
            label_prefix=f"{entry.name}" if needs else f"baselines {_arch_slug(entry, budget)}",
        )
    return tasks


def build_entries(
    entries: Sequence[ZooEntry],
    *,
    launcher: Any,
    budget: str = "cpu",
    store: ZooStore | None = None,
    data_dir: str | None = None,
    device: str = "auto",
    records_dir: str | os.PathLike | None = None,
    org: str | None = None,
    manifest: ZooManifest | None = None,
    log: Callable[[str], None] = print,
    rebuild: bool = False,
) -> tuple[list[BuildOutcome], dict[str, str]]:
    """Build ``entries`` with a cluster launcher: every entry's pretraining and evaluation cells are
    jobs (:func:`entry_tasks`, submitted together so the cluster runs them in parallel); each entry
    whose jobs all finished is then completed here by :func:`build_entry` (records relabelled,
    card, one ``os.replace`` into the store). Entries that need another entry (``requires``) wait
    for a later round. Returns the outcomes and ``{name: error}`` of the entries that failed; the
    re-run of the same command submits only the missing jobs."""
    from eval_suite.launchers import JobsFailed

    store = store or ZooStore()
    manifest = manifest or load_manifest()
    options = getattr(launcher, "options", None)
    world = options.nodes * max(options.gpus_per_job, 1) if options is not None else 1
    for entry in entries:  # before anything is submitted: a batch that cannot split stops the build
        if rebuild or not store.is_built(entry.name, budget):
            check_distributed(entry, budget, world)
    outcomes: list[BuildOutcome] = []
    failed: dict[str, str] = {}
    todo = list(entries)
    while todo:
        ready = [e for e in todo if all(store.is_built(r, budget) for r in e.requires)]
        if not ready:
            for e in todo:
                failed[e.name] = f"needs {', '.join(r for r in e.requires if not store.is_built(r, budget))}"
            break
        todo = [e for e in todo if e not in ready]
        with contextlib.ExitStack() as held:
            round_: list[ZooEntry] = []
            tasks: list[Any] = []
            for entry in ready:
                if store.is_built(entry.name, budget) and not rebuild:
                    outcomes.append(
                        build_entry(
                            entry, budget=budget, store=store, records_dir=records_dir, manifest=manifest
                        )
                    )
                    continue
                check_buildable(entry, budget, store)
                lock = contextlib.ExitStack()
                if not lock.enter_context(store.lock(entry.name, budget)):
                    outcomes.append(BuildOutcome(entry.name, "busy"))
                    continue
                held.enter_context(lock)
                claim_work_dir(entry, budget, store.work_dir(entry.name, budget), log)
                if rebuild:
                    reuse_stored_pretraining(
                        entry, budget, store, store.work_dir(entry.name, budget) / "pretrain", log
                    )
                round_.append(entry)
                tasks += entry_tasks(entry, budget, store, data_dir, device, launcher)
            unique = list({t.key: t for t in tasks}.values())  # baselines are shared between entries
            job_errors: dict[str, str] = {}
            t0 = time.perf_counter()
            try:
                launcher.run(unique, store.root / budget, title=f"zoo build ({len(round_)} entries)")
            except JobsFailed as err:
                job_errors = err.failed
            by_key = {t.key: t for t in unique}
            job_seconds = _eval_job_seconds(store.root / budget)
            held.close()  # release the entries' locks: build_entry takes them to finish
        for entry in round_:
            mine = [
                by_key[k].label + ": " + msg
                for k, msg in job_errors.items()
                if by_key[k].label.startswith((f"{entry.name}:", "baselines "))
            ]
            mine = [m for m in mine if not m.startswith("baselines ") or _arch_slug(entry, budget) in m]
            if mine:
                failed[entry.name] = mine[0]
                write_json_atomic(
                    store.work_dir(entry.name, budget) / FAILED_FILE,
                    {
                        "error": mine[0],
                        "traceback_tail": mine[1:6],
                        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    },
                )
                continue
            try:
                out = build_entry(
                    entry,
                    budget=budget,
                    store=store,
                    data_dir=data_dir,
                    device=device,
                    records_dir=records_dir,
                    org=org,
                    manifest=manifest,
                    log=log,
                    eval_seconds=job_seconds.get(entry.name),
                    rebuild=rebuild,
                )
            except Exception as err:  # noqa: BLE001 - one broken entry must not stop the others
                failed[entry.name] = f"{type(err).__name__}: {err}"
                continue
            if out.status == "built":
                out.seconds = time.perf_counter() - t0
            outcomes.append(out)
    return outcomes, failed


def _eval_job_seconds(state_dir: Path) -> dict[str, float]:
    """Per entry, the summed wall time of its finished evaluation jobs (from the submitit ledger)."""
    from eval_suite.launchers import Ledger, ledger_path

    out: dict[str, float] = {}
    for job in Ledger(ledger_path(state_dir)).latest().values():
        if job.get("kind") == "eval" and job.get("state") == "done":
            name = str(job.get("label", "")).split(":", 1)[0]
            out[name] = out.get(name, 0.0) + float(job.get("seconds") or 0.0)
    return out
