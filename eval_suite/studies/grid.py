"""Resumable pretrain -> evaluate grids: the machinery under every study and the demo.

A :class:`Cell` is one pretraining spec (:class:`PretrainSpec`) plus one evaluation
(``eval_suite.runner.EvalConfig`` fields). Running a grid (:func:`run_grid`):

* **Checkpoints are shared** through a :class:`CheckpointStore`: a pretraining is keyed by the
  sha256 of its canonical config, so every cell and every study asking for the same pretraining
  reuses one checkpoint. A pretraining runs in ``STORE/.tmp-<name>-<pid>`` and is renamed into
  place only when finished, so a killed run never leaves a checkpoint that looks complete.
  Default store: ``--checkpoint-store``, else ``$HFSSL_CHECKPOINT_STORE``, else
  ``~/.cache/hfssl/checkpoints``.
* **Finished cells are skipped**: after its evaluation a cell writes an atomic marker
  ``OUT/cells/<cell>-<hash>.json`` listing its record ids; a cell whose marker and records exist
  is not touched again. Inside a cell the runner itself skips seeds whose record exists, so a
  kill mid-cell loses at most the seed in flight.
* ``OUT/run_log.jsonl`` says, per cell and run, whether it was ``computed`` or ``skipped``.
* Records go to ``OUT/results/`` (one JSON per seed, the leaderboard's input).
* **Who runs the cells** is a launcher (:mod:`eval_suite.launchers`): this process (default) or
  one submitit job per pretraining / evaluation (``--launcher submitit``, Slurm or local
  subprocesses). The tasks are the same functions either way (:func:`pretrain_task`,
  :func:`eval_task`) and write the same atomic results, so a report cannot tell them apart.
* ``OUT/grid.json`` names the grid's cells and the layout version (:data:`GRID_VERSION`; a
  folder of another version is refused); ``OUT/status/<task>.json`` says which task is running
  or failed (with its last traceback lines); with submitit, ``OUT/submitit/jobs.jsonl`` maps
  tasks to jobs. ``hfssl study status OUT`` (:func:`grid_status`) reads the three.

Scratch cells (``protocol="scratch"``) need an architecture, not a pretraining: they use an
"architecture donor" checkpoint (:func:`arch_donor`, a one-step pretraining of the same backbone)
so that every scratch cell of one backbone shares one donor and hence one set of records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfssl.errors import ConfigError
from hfssl.utils.io import ensure_dir, write_json_atomic
from hfssl.utils.logging import get_logger, progress_disabled

logger = get_logger("eval_suite.studies")

SPEC_FILE = "pretrain_spec.json"
RUN_LOG = "run_log.jsonl"
GRID_FILE = "grid.json"
STATUS_DIR = "status"
# Version of the output folder's layout (markers, grid.json, status files, the submitit ledger). A
# folder written by another version is refused (one line, nothing written) rather than half-reused.
GRID_VERSION = 2


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "cell"


# ----------------------------------------------------------------------------------- specs
@dataclass
class PretrainSpec:
    """One pretraining run, fully determined by these fields (they make its store key)."""

    method: str
    backbone: str = "resnet18"
    dataset: str = "breastmnist"
    image_size: int = 28
    max_steps: int = 100
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 42
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    method_kwargs: dict[str, Any] = field(default_factory=dict)
    export_backbone: str = "auto"  # the method's own choice: the online encoder, DINO's teacher

    def resolved_export(self) -> str:
        """The encoder ``export_backbone`` names: ``"auto"`` is the method's ``default_export``
        (``"target"`` for DINO, whose teacher is its better encoder; ``"online"`` otherwise and for
        multi-SSL combinations, which export their shared backbone)."""
        if self.export_backbone != "auto":
            return self.export_backbone
        from hfssl.pretext.registry import get_pretext_class, parse_method_spec

        methods = parse_method_spec(self.method).methods
        return get_pretext_class(methods[0]).default_export if len(methods) == 1 else "online"

    def to_dict(self) -> dict[str, Any]:
        # resolved, so that "auto" and the encoder it stands for are one run (one store key); cells
        # stored when the default was "online" keep their keys wherever "auto" means "online"
        return {**dataclasses.asdict(self), "export_backbone": self.resolved_export()}

    def key(self) -> str:
        """Store key: sha256 of the canonical JSON of every field (16 hex digits)."""
        return _sha(self.to_dict())[:16]

    def folder_name(self) -> str:
        return _slug(f"{self.method}-{self.backbone}-{self.dataset}{self.image_size}-{self.key()}")


def arch_donor(spec: PretrainSpec) -> PretrainSpec:
    """The one-step pretraining whose architecture every scratch cell of ``spec``'s backbone shares."""
    return PretrainSpec(
        method="rot",
        backbone=spec.backbone,
        dataset=spec.dataset,
        image_size=spec.image_size,
        max_steps=1,
        batch_size=8,
        seed=0,
        backbone_kwargs=dict(spec.backbone_kwargs),
    )


@dataclass
class Cell:
    """One grid cell: a checkpoint (pretraining, or architecture donor for scratch) and one evaluation.

    ``eval`` holds ``EvalConfig`` fields (dataset, protocol, seeds, regime, policy, recipe ...);
    ``baseline`` names the cell it is compared to (normally the scratch cell of the same setting);
    ``tags`` are the study's coordinates (dataset, method, ratio, policy, ...) used by its claims.
    """

    cell_id: str
    pretrain: PretrainSpec
    eval: dict[str, Any]
    name: str | None = None
    baseline: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # an existing checkpoint to evaluate instead of ``pretrain``'s (the zoo)

    @property
    def is_scratch(self) -> bool:
        return self.eval.get("protocol") == "scratch" or bool(self.eval.get("random_init"))

    def config_hash(self) -> str:
        key: dict[str, Any] = {"pretrain": self.pretrain.to_dict(), "eval": self.eval, "name": self.name}
        if self.checkpoint is not None:
            key["checkpoint"] = self.checkpoint
        return _sha(key)[:10]

    def marker_name(self) -> str:
        return f"{_slug(self.cell_id)}-{self.config_hash()}.json"


# ----------------------------------------------------------------------------------- store
def default_store() -> Path:
    env = os.environ.get("HFSSL_CHECKPOINT_STORE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hfssl" / "checkpoints"


class CheckpointStore:
    """Pretrained backbones keyed by their :class:`PretrainSpec` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_store()

    def folder(self, spec: PretrainSpec) -> Path:
        return self.root / spec.folder_name()

    def backbone_dir(self, spec: PretrainSpec) -> Path:
        return self.folder(spec) / "backbone"

    def has(self, spec: PretrainSpec) -> bool:
        folder = self.folder(spec)
        return (folder / SPEC_FILE).is_file() and (folder / "backbone" / "config.json").is_file()

    def ensure(
        self,
        spec: PretrainSpec,
        *,
        data_dir: str | None = None,
        device: str = "auto",
        on_pretrain: Callable[[PretrainSpec], None] | None = None,
    ) -> Path:
        """The backbone folder of ``spec``, pretraining it first when the store lacks it."""
        if self.has(spec):
            return self.backbone_dir(spec)
        if on_pretrain is not None:
            on_pretrain(spec)
        from hfssl import pretrain_backbone
        from hfssl.training import DataArguments, ModelArguments, PretrainingArguments

        final = self.folder(spec)
        tmp = self.root / f".tmp-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            result = pretrain_backbone(
                ModelArguments(
                    method=spec.method,
                    backbone=spec.backbone,
                    backbone_kwargs=dict(spec.backbone_kwargs),
                    method_kwargs=dict(spec.method_kwargs),
                ),
                DataArguments(dataset=spec.dataset, image_size=spec.image_size, data_dir=data_dir),
                PretrainingArguments(
                    output_dir=str(tmp),
                    max_steps=spec.max_steps,
                    per_device_train_batch_size=spec.batch_size,
                    learning_rate=spec.learning_rate,
                    seed=spec.seed,
                    eval_strategy="no",
                    save_strategy="no",
                    report_to="none",
                    logging_steps=max(1, spec.max_steps // 10),
                    export_backbone=spec.resolved_export(),  # type: ignore[arg-type]
                    use_cpu=device == "cpu",
                    disable_tqdm=progress_disabled(),
                ),
            )
            # only the backbone is needed downstream; the pretext model would double the store
            shutil.rmtree(result.pretext_model_dir, ignore_errors=True)
            write_json_atomic(tmp / SPEC_FILE, {"spec": spec.to_dict(), "key": spec.key()})
            try:
                os.replace(tmp, final)
            except OSError:  # another process finished the same pretraining first: keep theirs
                if not self.has(spec):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.backbone_dir(spec)

    def pretrain_argv(
        self, spec: PretrainSpec, output_dir: str, *, data_dir: str | None, world: int
    ) -> list[str]:
        """``hfssl.pretrain`` options that reproduce :meth:`ensure`'s pretraining of ``spec`` on
        ``world`` processes: the per-device batch is ``batch_size // world``, so the global batch
        (and hence the run the store key names) stays the spec's."""
        from eval_suite.launchers import split_global_batch

        per_device = split_global_batch(spec.batch_size, world, spec.method)
        argv = [
            "--method", spec.method, "--backbone", spec.backbone,
            "--dataset", spec.dataset, "--image-size", str(spec.image_size),
            "--output-dir", output_dir, "--max-steps", str(spec.max_steps),
            "--per-device-train-batch-size", str(per_device),
            "--learning-rate", repr(spec.learning_rate), "--seed", str(spec.seed),
            "--eval-strategy", "no", "--save-strategy", "no", "--report-to", "none",
            "--logging-steps", str(max(1, spec.max_steps // 10)),
            "--export-backbone", spec.resolved_export(), "--disable-tqdm", "true",
        ]  # fmt: skip
        if spec.backbone_kwargs:
            argv += ["--backbone-kwargs", json.dumps(spec.backbone_kwargs)]
        if spec.method_kwargs:
            argv += ["--method-kwargs", json.dumps(spec.method_kwargs)]
        if data_dir:
            argv += ["--data-dir", data_dir]
        return argv

    def ensure_distributed(
        self, spec: PretrainSpec, *, data_dir: str | None = None, nodes: int = 1, gpus_per_node: int = 1
    ) -> Path:
        """:meth:`ensure` across ``nodes`` x ``gpus_per_node`` processes: every node of the job runs
        ``accelerate launch -m hfssl.pretrain`` (:func:`eval_suite.launchers.run_accelerate`) into
        one temp folder named by the Slurm job (the store must be on a shared file system); node 0
        then moves the result into place like :meth:`ensure`."""
        from eval_suite.launchers import is_main_node, run_accelerate

        if self.has(spec):
            return self.backbone_dir(spec)
        final = self.folder(spec)
        job = os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID") or str(os.getpid())
        tmp = self.root / f".tmp-{final.name}-job{job}"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        argv = self.pretrain_argv(spec, str(tmp), data_dir=data_dir, world=nodes * gpus_per_node)
        run_accelerate(argv, nodes, gpus_per_node)
        if not is_main_node():
            return self.backbone_dir(spec)
        try:
            shutil.rmtree(tmp / "pretext_model", ignore_errors=True)
            write_json_atomic(tmp / SPEC_FILE, {"spec": spec.to_dict(), "key": spec.key()})
            try:
                os.replace(tmp, final)
            except OSError:
                if not self.has(spec):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.backbone_dir(spec)


def _load_finished(marker: Path, results_dir: Path) -> list[dict[str, Any]] | None:
    """The cell's records when its marker and every listed record exist, else None."""
    if not marker.is_file():
        return None
    try:
        ids = json.loads(marker.read_text(encoding="utf-8"))["record_ids"]
        records = [json.loads((results_dir / f"{rid}.json").read_text(encoding="utf-8")) for rid in ids]
    except (OSError, ValueError, KeyError, TypeError):  # partial or foreign marker: recompute the cell
        return None
    return records


def _log(out_dir: Path, event: dict[str, Any]) -> None:
    # one short line in one write on an O_APPEND file: atomic, also from concurrent jobs; the log only
    # informs (never decides) a rerun
    line = (json.dumps(event, sort_keys=True) + "\n").encode()
    fd = os.open(out_dir / RUN_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# ------------------------------------------------------------------- grid file, task status
def read_grid_file(out: Path) -> dict[str, Any] | None:
    """``OUT/grid.json`` (version, cells) or None when the folder has none (new, or pre-launcher)."""
    try:
        data = json.loads((out / GRID_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):  # no such folder (yet): ensure_dir reports a bad one
        return None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{out / GRID_FILE} is unreadable ({err})", "use a new --out folder") from None
    return data if isinstance(data, dict) else {"grid_version": "?"}


def check_grid_version(out: Path) -> None:
    """Refuse an output folder written by another version of this grid layout (nothing is written)."""
    data = read_grid_file(out)
    if data is None:
        return  # a new folder, or one written before grid.json existed (same markers: compatible)
    version = data.get("grid_version")
    if version != GRID_VERSION:
        raise ConfigError(
            f"{out} was written by grid version {version}; this hfssl reads and writes grid version {GRID_VERSION}",
            "use a new --out folder (or the hfssl release that wrote this one)",
        )


def _write_grid_file(out: Path, cells: Sequence[Cell], title: str, launcher: str) -> None:
    write_json_atomic(
        out / GRID_FILE,
        {
            "grid_version": GRID_VERSION,
            "title": title,
            "launcher": launcher,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cells": [
                {
                    "cell": c.cell_id,
                    "marker": c.marker_name(),
                    "pretrain": None
                    if (c.checkpoint is not None and not c.is_scratch)
                    else (arch_donor(c.pretrain) if c.is_scratch else c.pretrain).folder_name(),
                }
                for c in cells
            ],
        },
    )


def _status_path(out: Path, name: str) -> Path:
    return out / STATUS_DIR / f"{name}.json"


def _set_status(out: Path, name: str, state: str, **info: Any) -> None:
    """``OUT/status/NAME.json``: what a task is doing (running / failed), for ``hfssl study status``."""
    (out / STATUS_DIR).mkdir(parents=True, exist_ok=True)
    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")
    write_json_atomic(
        _status_path(out, name),
        {"state": state, "pid": os.getpid(), "host": socket.gethostname(), "job_id": job, **info},
    )


def _failed_status(out: Path, name: str, err: BaseException, t0: float) -> None:
    import traceback

    with contextlib.suppress(OSError):
        _set_status(
            out,
            name,
            "failed",
            error=f"{type(err).__name__}: {err}"[:500],
            tail=traceback.format_exc().splitlines()[-8:],
            seconds=round(time.perf_counter() - t0, 1),
            failed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )


# ------------------------------------------------------------------------------------ tasks
def pretrain_task(
    spec: PretrainSpec, store_root: str, out_dir: str, data_dir: str | None, device: str
) -> None:
    """A task's pretraining: ``spec`` into the store (one process, or ``accelerate launch`` across the
    GPUs / nodes of a multi-process job, see :mod:`eval_suite.launchers`)."""
    from eval_suite.launchers import distributed_world

    store, out = CheckpointStore(store_root), Path(out_dir)
    if store.has(spec):
        return
    name = f"pretrain-{spec.folder_name()}"
    t0 = time.perf_counter()
    _set_status(out, name, "running", started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    try:
        nodes, gpus = distributed_world()
        if nodes * max(gpus, 1) > 1:
            store.ensure_distributed(spec, data_dir=data_dir, nodes=nodes, gpus_per_node=max(gpus, 1))
        else:
            store.ensure(
                spec,
                data_dir=data_dir,
                device=device,
                on_pretrain=lambda s: print(
                    f"  pretraining {s.method} ({s.backbone}, {s.max_steps} steps)", flush=True
                ),
            )
    except BaseException as err:
        _failed_status(out, name, err, t0)
        raise
    _status_path(out, name).unlink(missing_ok=True)


def eval_task(
    cell: Cell,
    out_dir: str,
    store_root: str,
    data_dir: str | None,
    cache_dir: str | None,
    device: str,
    run_id: str,
) -> None:
    """A cell's evaluation (its checkpoint is pretrained first when the store lacks it); writes the
    records, then the cell's marker (last, atomically), then logs ``computed``."""
    from eval_suite.runner import EvalConfig, evaluate

    out = Path(out_dir)
    results_dir, marker = out / "results", out / "cells" / cell.marker_name()
    if _load_finished(marker, results_dir) is not None:  # finished by another job meanwhile
        return
    store = CheckpointStore(store_root)
    name = marker.stem
    t0 = time.perf_counter()
    spec = arch_donor(cell.pretrain) if cell.is_scratch else cell.pretrain
    try:
        if cell.checkpoint is not None and not cell.is_scratch:
            backbone: Path | str = cell.checkpoint
        else:
            backbone = store.backbone_dir(spec)
            if not store.has(spec):
                pretrain_task(spec, store_root, out_dir, data_dir, device)
        _set_status(out, name, "running", started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        config = EvalConfig(
            checkpoint=str(backbone),
            results_dir=str(results_dir),
            data_dir=data_dir,
            cache_dir=cache_dir,
            device=device,
            name=None if cell.is_scratch else cell.name,
            **cell.eval,
        )
        recs = evaluate(config)
        seconds = round(time.perf_counter() - t0, 2)
        write_json_atomic(
            marker,
            {
                "cell": cell.cell_id,
                "record_ids": [r["record_id"] for r in recs],
                "pretrain_key": spec.key(),
                "checkpoint": str(backbone),
                "eval": cell.eval,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": seconds,
                "host": socket.gethostname(),
                "job_id": os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID"),
            },
        )
    except BaseException as err:
        _failed_status(out, name, err, t0)
        raise
    _status_path(out, name).unlink(missing_ok=True)
    _log(out, {"run": run_id, "cell": cell.cell_id, "event": "computed", "seconds": seconds})


def grid_tasks(
    cells: Sequence[Cell],
    out: Path,
    store: CheckpointStore,
    *,
    data_dir: str | None,
    cache_dir: str | None,
    device: str,
    run_id: str,
    needs: dict[str, tuple[str, ...]] | None = None,
    label_prefix: str | None = None,
) -> list[Any]:
    """The launcher tasks of ``cells``: each distinct pretraining once, just before the first cell
    that needs it, then the cell's evaluation (which needs it). ``needs`` adds prerequisites per
    cell id (the zoo: an entry's own pretraining); ``label_prefix`` names the cells in logs (default:
    the output folder's name)."""
    from eval_suite.launchers import Task

    tasks: list[Task] = []
    seen: set[str] = set()
    for cell in cells:
        prereq = list((needs or {}).get(cell.cell_id, ()))
        if cell.checkpoint is None or cell.is_scratch:
            spec = arch_donor(cell.pretrain) if cell.is_scratch else cell.pretrain
            key = f"pretrain/{store.root}/{spec.folder_name()}"
            prereq.append(key)
            if key not in seen:
                seen.add(key)
                tasks.append(
                    Task(
                        key=key,
                        kind="pretrain",
                        label=f"pretrain {spec.method} {spec.backbone} {spec.dataset}{spec.image_size} "
                        f"({spec.max_steps} steps)",
                        fn=functools.partial(
                            pretrain_task, spec, str(store.root), str(out), data_dir, device
                        ),
                        is_done=functools.partial(store.has, spec),
                        # an architecture donor (one step, batch 8) only fixes the architecture of
                        # scratch / random-init cells: one process, whatever the job size (its batch
                        # would not split over 16 processes, and it needs no more)
                        multi_process=not cell.is_scratch,
                    )
                )
        marker = out / "cells" / cell.marker_name()
        tasks.append(
            Task(
                key=f"eval/{out}/{cell.marker_name()}",
                kind="eval",
                label=f"{label_prefix or out.name}:{cell.cell_id}",
                fn=functools.partial(
                    eval_task, cell, str(out), str(store.root), data_dir, cache_dir, device, run_id
                ),
                is_done=functools.partial(_is_finished, marker, out / "results"),
                needs=tuple(prereq),
            )
        )
    return tasks


def _is_finished(marker: Path, results_dir: Path) -> bool:
    return _load_finished(marker, results_dir) is not None


# ------------------------------------------------------------------------------------ grid
@dataclass
class GridResult:
    """Records of every cell (by cell id) and which cells this run computed or skipped."""

    records: dict[str, list[dict[str, Any]]]
    computed: list[str]
    skipped: list[str]
    cells: list[Cell]

    def cell(self, cell_id: str) -> Cell:
        for c in self.cells:
            if c.cell_id == cell_id:
                return c
        raise KeyError(cell_id)


def _check_cells(cells: Sequence[Cell]) -> None:
    seen: set[str] = set()
    for c in cells:
        if c.cell_id in seen:
            raise ConfigError(f"two grid cells share the id {c.cell_id!r}", "give every cell a unique id")
        seen.add(c.cell_id)
    for c in cells:
        if c.baseline is not None and c.baseline not in seen:
            raise ConfigError(
                f"cell {c.cell_id!r} compares to {c.baseline!r}, which is not in the grid",
                "add the baseline cell or drop the comparison",
            )


def prepare_grid(cells: Sequence[Cell], out: Path, title: str, launcher: Any) -> tuple[str, list[Cell]]:
    """Checks (before anything is written), then ``OUT/cells`` and ``OUT/grid.json``; returns the run
    id and the cells not finished yet (finished ones are logged ``skipped``)."""
    _check_cells(cells)
    check_grid_version(out)
    launcher.check()
    ensure_dir(out / "cells", "output folder")
    _write_grid_file(out, cells, title, launcher.name)
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    pending = []
    for cell in cells:
        if _load_finished(out / "cells" / cell.marker_name(), out / "results") is None:
            pending.append(cell)
        else:
            _log(out, {"run": run_id, "cell": cell.cell_id, "event": "skipped"})
    return run_id, pending


def collect_grid(cells: Sequence[Cell], out: Path, pending: Sequence[Cell]) -> GridResult:
    """The records of every finished cell of ``cells`` (``computed``: those in ``pending``)."""
    records: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        done = _load_finished(out / "cells" / cell.marker_name(), out / "results")
        if done is not None:
            records[cell.cell_id] = done
    todo = {c.cell_id for c in pending}
    computed = [c.cell_id for c in cells if c.cell_id in todo and c.cell_id in records]
    skipped = [c.cell_id for c in cells if c.cell_id not in todo]
    return GridResult(records=records, computed=computed, skipped=skipped, cells=list(cells))


def run_grid(
    cells: Sequence[Cell],
    out_dir: str | os.PathLike,
    *,
    store: CheckpointStore | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    device: str = "auto",
    title: str = "grid",
    launcher: Any | None = None,
) -> GridResult:
    """Run every cell not yet finished (see the module docstring); return all cells' records.

    ``launcher`` (:mod:`eval_suite.launchers`): who runs the pretrainings and evaluations; default
    this process, one cell after the other. Whoever runs them, results land in the same store."""
    from eval_suite.launchers import LocalLauncher

    launcher = launcher or LocalLauncher()
    store = store or CheckpointStore()
    out = Path(out_dir)
    run_id, pending = prepare_grid(cells, out, title, launcher)
    tasks = grid_tasks(
        pending, out, store, data_dir=data_dir, cache_dir=cache_dir, device=device, run_id=run_id
    )
    if pending:
        print(
            f"{title}: {len(pending)} of {len(cells)} cells to compute ({launcher.name} launcher)", flush=True
        )
    launcher.run(tasks, out, title=title)
    return collect_grid(cells, out, pending)


# ----------------------------------------------------------------------------------- status
@dataclass
class CellStatus:
    """One row of ``hfssl study status``."""

    cell: str
    state: str  # done / running / queued / failed
    seconds: float | None = None
    job: str | None = None
    note: str = ""
    tail: list[str] = field(default_factory=list)


def _pid_alive(host: str | None, pid: Any) -> bool:
    if host != socket.gethostname():
        return True  # another machine's process: cannot tell, trust the status file
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


def grid_status(out_dir: str | os.PathLike) -> list[CellStatus]:
    """Every cell of ``OUT/grid.json`` as done / running / queued / failed, with wall times and a
    failure's last lines, from the markers, the tasks' status files and the submitit ledger."""
    from eval_suite.launchers import Ledger, job_is_live, ledger_path, log_tail

    out = Path(out_dir)
    data = read_grid_file(out)
    if data is None:
        raise ConfigError(
            f"{out} has no {GRID_FILE}: not a grid output folder", "pass the --out folder of a study"
        )
    check_grid_version(out)
    jobs = {k.rsplit("/", 1)[-1]: v for k, v in Ledger(ledger_path(out)).latest().items()}
    rows = []
    for c in data.get("cells", []):
        marker_name, pretrain = c["marker"], c.get("pretrain")
        marker = out / "cells" / marker_name
        if _load_finished(marker, out / "results") is not None:
            info = json.loads(marker.read_text(encoding="utf-8"))
            rows.append(CellStatus(c["cell"], "done", info.get("seconds"), info.get("job_id")))
            continue
        row = CellStatus(c["cell"], "queued")
        candidates = [(Path(marker_name).stem, "")]
        if pretrain:
            candidates.append((f"pretrain-{pretrain}", "pretraining "))
        for name, what in candidates:
            job = jobs.get(marker_name if not what else pretrain)
            status = _read_json_or_none(_status_path(out, name))
            if job is not None and job.get("state") == "failed":
                row = CellStatus(
                    c["cell"],
                    "failed",
                    job.get("seconds"),
                    job.get("job_id"),
                    f"{what}{job.get('error', '')}",
                    job.get("tail") or log_tail(out, job["job_id"]),
                )
                break
            if job is not None and job.get("state") in ("submitted", "running"):
                if job_is_live(job, out):
                    row = CellStatus(
                        c["cell"],
                        "running" if job["state"] == "running" else "queued",
                        None,
                        job.get("job_id"),
                        f"{what}job {job['job_id']}",
                    )
                else:
                    row = CellStatus(
                        c["cell"],
                        "failed",
                        None,
                        job.get("job_id"),
                        f"{what}the job ended without its result (killed or pre-empted?)",
                        log_tail(out, job["job_id"]),
                    )
                break
            if status is not None:
                if status.get("state") == "failed":
                    row = CellStatus(
                        c["cell"],
                        "failed",
                        status.get("seconds"),
                        status.get("job_id"),
                        f"{what}{status.get('error', '')}",
                        status.get("tail", []),
                    )
                elif _pid_alive(status.get("host"), status.get("pid")):
                    row = CellStatus(
                        c["cell"],
                        "running",
                        None,
                        status.get("job_id"),
                        f"{what}since {status.get('started_at', '?')}",
                    )
                else:
                    row = CellStatus(
                        c["cell"],
                        "failed",
                        None,
                        status.get("job_id"),
                        f"{what}its process is gone (killed?)",
                    )
                break
        rows.append(row)
    return rows


def _read_json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def format_status(rows: Sequence[CellStatus]) -> str:
    """The table ``hfssl study status`` prints: counts, one line per cell, failures' last lines."""
    counts = {s: sum(r.state == s for r in rows) for s in ("done", "running", "queued", "failed")}
    width = max([len(r.cell) for r in rows] + [4])
    total = sum(r.seconds or 0.0 for r in rows if r.state == "done")
    lines = [
        ", ".join(f"{n} {s}" for s, n in counts.items()) + f" (of {len(rows)} cells)",
        f"cell time so far: {total / 60:.1f} min (the evaluations' wall times summed; pretrainings not included)",
        "",
    ]
    lines.append(f"{'cell':<{width}}  {'state':<8}  {'wall':>8}  {'job':>10}  note")
    for r in rows:
        wall = f"{r.seconds:.0f} s" if r.seconds is not None else ""
        lines.append(f"{r.cell:<{width}}  {r.state:<8}  {wall:>8}  {r.job or '':>10}  {r.note}")
    failed = [r for r in rows if r.state == "failed" and r.tail]
    if failed:
        lines.append("\nlast lines of the failures:")
        for r in failed:
            lines.append(f"  {r.cell}:")
            lines += [f"    {t}" for t in r.tail[-8:]]
    return "\n".join(lines)
