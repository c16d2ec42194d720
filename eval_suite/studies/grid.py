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

Scratch cells (``protocol="scratch"``) need an architecture, not a pretraining: they use an
"architecture donor" checkpoint (:func:`arch_donor`, a one-step pretraining of the same backbone)
so that every scratch cell of one backbone shares one donor and hence one set of records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
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
    export_backbone: str = "online"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
                    export_backbone=spec.export_backbone,  # type: ignore[arg-type]
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
    # appending one short line is atomic enough for a log that only informs (never decides) a rerun
    with open(out_dir / RUN_LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event, sort_keys=True) + "\n")


def run_grid(
    cells: Sequence[Cell],
    out_dir: str | os.PathLike,
    *,
    store: CheckpointStore | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    device: str = "auto",
    title: str = "grid",
) -> GridResult:
    """Run every cell not yet finished (see the module docstring); return all cells' records."""
    from tqdm.auto import tqdm

    from eval_suite.runner import EvalConfig, evaluate

    _check_cells(cells)
    store = store or CheckpointStore()
    out = Path(out_dir)
    results_dir, cells_dir = out / "results", out / "cells"
    ensure_dir(cells_dir, "output folder")
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    records: dict[str, list[dict[str, Any]]] = {}
    computed, skipped = [], []
    bar = tqdm(cells, desc=title, unit="cell", disable=progress_disabled())
    for i, cell in enumerate(bar):
        bar.set_postfix_str(cell.cell_id)
        marker = cells_dir / cell.marker_name()
        done = _load_finished(marker, results_dir)
        if done is not None:
            records[cell.cell_id] = done
            skipped.append(cell.cell_id)
            _log(out, {"run": run_id, "cell": cell.cell_id, "event": "skipped"})
            continue
        t0 = time.perf_counter()
        tqdm.write(f"[{i + 1}/{len(cells)}] {cell.cell_id}")
        spec = arch_donor(cell.pretrain) if cell.is_scratch else cell.pretrain
        if cell.checkpoint is not None and not cell.is_scratch:
            backbone: Path | str = cell.checkpoint
        else:
            backbone = store.ensure(
                spec,
                data_dir=data_dir,
                device=device,
                on_pretrain=lambda s: tqdm.write(f"  pretraining {s.method} ({s.backbone}, {s.max_steps} steps)"),
            )
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
        write_json_atomic(
            marker,
            {
                "cell": cell.cell_id,
                "record_ids": [r["record_id"] for r in recs],
                "pretrain_key": spec.key(),
                "checkpoint": str(backbone),
                "eval": cell.eval,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": round(time.perf_counter() - t0, 2),
            },
        )
        records[cell.cell_id] = recs
        computed.append(cell.cell_id)
        _log(out, {"run": run_id, "cell": cell.cell_id, "event": "computed"})
    return GridResult(records=records, computed=computed, skipped=skipped, cells=list(cells))
