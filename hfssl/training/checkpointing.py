"""Full training-state checkpoints: written atomically, resumed bit-exactly, never unpickled blindly.

Layout under ``OUTPUT_DIR/checkpoints/``::

    checkpoint-40/                 one complete state, after optimiser step 40
        model.safetensors          every weight and buffer of the pretext model (EMA/momentum
                                   encoders and queues included)      - Accelerate, safetensors
        optimizer.bin, scheduler.bin                                   - Accelerate, torch.save
        random_states_<rank>.pkl   python/numpy/torch/cuda RNGs       - Accelerate, torch.save
        pretext_rng_<rank>.safetensors   the generator handed to the pretext model (its views)
        trainer_state.json         step, epoch, position in the epoch, run settings
    latest                         a text file naming the last complete checkpoint

**Atomicity.** Every process writes into ``.checkpoint-40.tmp``; when all are done the main
process adds ``trainer_state.json`` (the "complete" marker), renames the folder to
``checkpoint-40`` and then rewrites ``latest`` atomically, and only then deletes checkpoints
beyond ``save_total_limit``. A crash at any moment leaves ``latest`` naming a complete
checkpoint; leftover ``.tmp`` folders are removed by the next save.

**What is unpickled on resume (accelerate 1.15).** ``Accelerator.load_state`` reads the model
from ``model.safetensors`` (no pickle). It reads ``optimizer.bin``, ``scheduler.bin`` and
``random_states_<rank>.pkl`` with ``accelerate.utils.load``, i.e. ``torch.load(...,
weights_only=True)`` with numpy's array/dtype classes added to the safe globals: tensors,
numbers, strings, containers and numpy RNG state only, no arbitrary objects. (Only objects
registered with ``register_for_checkpointing`` would be loaded with ``weights_only=False``;
hfssl registers none: its own state is JSON + safetensors.) Accelerate silently skips RNG
states it cannot read, so :func:`validate_checkpoint` reads them first and refuses the
checkpoint instead; a checkpoint with a pickled ``pytorch_model.bin`` in place of
``model.safetensors`` is refused too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hfssl.errors import CheckpointError
from hfssl.utils.io import write_json_atomic, write_text_atomic

if TYPE_CHECKING:  # pragma: no cover
    from accelerate import Accelerator

CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest"
STATE_FILE = "trainer_state.json"
MODEL_FILE = "model.safetensors"
PICKLED_MODEL_FILE = "pytorch_model.bin"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def rng_file(rank: int) -> str:
    """Name of the pretext-generator state file of process ``rank``."""
    return f"pretext_rng_{rank}.safetensors"


def accelerate_rng_file(rank: int) -> str:
    """Name of Accelerate's RNG state file of process ``rank``."""
    return f"random_states_{rank}.pkl"


@dataclass
class TrainerState:
    """Where a run stands; written to ``trainer_state.json`` in each checkpoint.

    ``batches_in_epoch`` counts the micro-batches each process has consumed in ``epoch`` (the
    data order of an epoch is a pure function of seed and epoch, so this is the whole sampler
    position). The remaining fields describe the run, to refuse a resume that cannot be exact.
    """

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    max_steps: int = 0
    steps_per_epoch: int = 0
    num_processes: int = 1
    per_device_train_batch_size: int = 0
    gradient_accumulation_steps: int = 1
    seed: int = 0
    method: str = ""
    backbone: str = ""
    dataset: str = ""
    image_size: int = 0
    hfssl_version: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainerState:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step of a ``checkpoint-<step>`` folder name, else ``None``."""
    match = _NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


class CheckpointManager:
    """Names, commits, lists and prunes the checkpoints of one output directory.

    Only the main process writes (``commit``, ``prune``); every process may read.
    """

    def __init__(self, output_dir: str | os.PathLike, save_total_limit: int | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.root = self.output_dir / CHECKPOINTS_DIR
        self.save_total_limit = save_total_limit

    # --------------------------------------------------------------------- naming
    def final_path(self, step: int) -> Path:
        return self.root / f"checkpoint-{step}"

    def temp_path(self, step: int) -> Path:
        return self.root / f".checkpoint-{step}.tmp"

    def complete_checkpoints(self) -> list[Path]:
        """Complete checkpoints (renamed, with a state file), oldest first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
        found = [p for p in found if (p / STATE_FILE).is_file()]
        return sorted(found, key=lambda p: checkpoint_step(p) or 0)

    def latest(self) -> Path | None:
        """The checkpoint ``latest`` names (else the newest complete one), or ``None``."""
        marker = self.root / LATEST_FILE
        if marker.is_file():
            name = marker.read_text(encoding="utf-8").strip()
            candidate = self.root / name
            if checkpoint_step(candidate) is not None and (candidate / STATE_FILE).is_file():
                return candidate
        complete = self.complete_checkpoints()
        return complete[-1] if complete else None

    # --------------------------------------------------------------------- writing (main process)
    def prepare_temp(self, step: int) -> Path:
        """An empty temporary folder for the checkpoint of ``step`` (stale leftovers removed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".checkpoint-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = self.temp_path(step)
        tmp.mkdir()
        return tmp

    def commit(self, tmp: Path, state: TrainerState) -> Path:
        """Mark ``tmp`` complete, rename it to its final name, point ``latest`` at it, prune."""
        write_json_atomic(tmp / STATE_FILE, state.to_json())
        _fsync_dir(tmp)
        final = self.final_path(state.global_step)
        if final.exists():  # a resumed run re-saving a step it had saved before the crash
            trash = final.with_name(f".{final.name}.old")
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
        _fsync_dir(self.root)
        write_text_atomic(self.root / LATEST_FILE, final.name + "\n")
        self.prune(keep=final)
        return final

    def prune(self, keep: Path | None = None) -> list[Path]:
        """Delete the oldest complete checkpoints beyond ``save_total_limit`` (never ``keep``)."""
        if not self.save_total_limit or self.save_total_limit < 1:
            return []
        complete = self.complete_checkpoints()
        excess = len(complete) - self.save_total_limit
        removed: list[Path] = []
        for path in complete:
            if excess <= 0:
                break
            if keep is not None and path.resolve() == keep.resolve():
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            excess -= 1
        return removed

    def drop_newer_than(self, step: int) -> list[Path]:
        """Delete complete checkpoints after ``step`` (resuming from an older one makes them stale)."""
        removed = []
        for path in self.complete_checkpoints():
            if (checkpoint_step(path) or 0) > step:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    # --------------------------------------------------------------------- resolving
    def resolve(self, spec: str) -> Path:
        """``"latest"`` (in this output dir), a checkpoint folder, or another run's output dir."""
        if spec.strip().lower() == "latest":
            found = self.latest()
            if found is None:
                raise CheckpointError(
                    f"--resume-from latest: no complete checkpoint under {self.root}",
                    "start without --resume-from, or pass the path of a checkpoint-<step> folder",
                )
            return found
        path = Path(spec).expanduser()
        if not path.exists():
            raise CheckpointError(
                f"checkpoint {spec} does not exist", "pass 'latest' or an existing checkpoint folder"
            )
        if (path / STATE_FILE).is_file():
            return path
        other = CheckpointManager(path).latest() if (path / CHECKPOINTS_DIR).is_dir() else None
        if other is None:
            raise CheckpointError(
                f"{spec} is not a complete checkpoint (no {STATE_FILE}) and holds no checkpoints/ folder",
                "pass a checkpoint-<step> folder written by hfssl pretrain, or 'latest'",
            )
        return other


def validate_checkpoint(path: Path, num_processes: int) -> TrainerState:
    """Check that ``path`` is a complete, safely loadable checkpoint for ``num_processes`` processes.

    Raises :class:`CheckpointError` naming what is missing or unreadable; returns its state.
    """
    from safetensors import safe_open

    state_file = path / STATE_FILE
    try:
        state = TrainerState.from_json(json.loads(state_file.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint {path} has no readable {STATE_FILE} ({err})", "resume from another checkpoint"
        ) from err
    if state.num_processes != num_processes:
        raise CheckpointError(
            f"checkpoint {path} was written by {state.num_processes} process(es), this run has {num_processes}",
            f"resume with {state.num_processes} process(es) (the data order and RNG streams are per process)",
        )
    model_file = path / MODEL_FILE
    if not model_file.is_file():
        if (path / PICKLED_MODEL_FILE).exists():
            raise CheckpointError(
                f"checkpoint {path} stores its model as a pickle ({PICKLED_MODEL_FILE}); hfssl only loads safetensors",
                "resume from a checkpoint written by hfssl (model.safetensors)",
            )
        raise CheckpointError(f"checkpoint {path} has no {MODEL_FILE}", "resume from another checkpoint")
    try:
        # safetensors checks on open that the header is valid and the data fill the file exactly,
        # which catches truncated and overwritten files
        with safe_open(str(model_file), framework="pt") as f:
            f.keys()
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(
            f"checkpoint {path}: {MODEL_FILE} is corrupt ({err})", "resume from another checkpoint"
        ) from err
    from accelerate.utils import load as accelerate_load

    for name in ("optimizer.bin", "scheduler.bin", *(accelerate_rng_file(r) for r in range(num_processes))):
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {path} is missing {name}", "resume from another checkpoint")
        try:
            accelerate_load(file, map_location="cpu")  # weights_only=True, as load_state does
        except Exception as err:
            raise CheckpointError(
                f"checkpoint {path}: {name} cannot be read safely ({' '.join(str(err).split())[:200]})",
                "resume from another checkpoint",
            ) from err
    for rank in range(num_processes):
        file = path / rng_file(rank)
        try:
            load_generator_state(file)
        except Exception as err:
            raise CheckpointError(
                f"checkpoint {path}: {file.name} is missing or corrupt ({err})",
                "resume from another checkpoint",
            ) from err
    return state


def check_resume_compatible(saved: TrainerState, **now: Any) -> None:
    """Refuse to resume a checkpoint written with other run settings (they would change the data order)."""
    mismatches = [
        f"{name} {getattr(saved, name)!r} -> {value!r}"
        for name, value in now.items()
        if getattr(saved, name) != value
    ]
    if mismatches:
        raise CheckpointError(
            f"cannot resume exactly: the checkpoint was written with other settings ({'; '.join(mismatches)})",
            "resume with the settings of the interrupted run (see its training_args.json)",
        )


def save_generator_state(generator: torch.Generator, file: Path) -> None:
    """Write a ``torch.Generator``'s state (a uint8 tensor) as safetensors."""
    from safetensors.torch import save_file

    save_file({"state": generator.get_state().cpu().contiguous()}, str(file))


def load_generator_state(file: Path) -> torch.Tensor:
    """Read a state written by :func:`save_generator_state`."""
    from safetensors.torch import load_file

    state = load_file(str(file))["state"]
    if state.dtype != torch.uint8:
        raise ValueError(f"generator state has dtype {state.dtype}, expected uint8")
    return state


def save_training_state(
    accelerator: Accelerator, manager: CheckpointManager, state: TrainerState, generator: torch.Generator
) -> Path:
    """Write checkpoint-<step> from every process (Accelerate's state + the view generator); atomic."""
    step = state.global_step
    if accelerator.is_main_process:
        manager.prepare_temp(step)
    accelerator.wait_for_everyone()
    tmp = manager.temp_path(step)
    accelerator.save_state(str(tmp), safe_serialization=True)
    save_generator_state(generator, tmp / rng_file(accelerator.process_index))
    accelerator.wait_for_everyone()
    final = manager.final_path(step)
    if accelerator.is_main_process:
        final = manager.commit(tmp, state)
    accelerator.wait_for_everyone()
    return final


def load_training_state(accelerator: Accelerator, path: Path, generator: torch.Generator) -> None:
    """Restore Accelerate's state (model, optimiser, scheduler, RNGs) and the view generator from ``path``."""
    try:
        accelerator.load_state(str(path))
    except Exception as err:  # shape mismatch, truncated optimizer file, ...
        raise CheckpointError(
            f"checkpoint {path} does not fit this model/optimizer: {' '.join(str(err).split())[:300]}",
            "resume with the method/backbone/optimizer settings of the interrupted run",
        ) from err
    saved = load_generator_state(path / rng_file(accelerator.process_index))
    generator.set_state(saved.to(generator.get_state().device))


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk where the OS allows it (renames survive power loss)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``final``; on success it replaces ``final`` (else it is removed)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
