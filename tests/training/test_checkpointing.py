"""Checkpoint folders: atomic commit, ``latest``, pruning, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hfssl.errors import CheckpointError
from hfssl.training.checkpointing import (
    CheckpointManager,
    TrainerState,
    atomic_dir,
    load_generator_state,
    save_generator_state,
)


def _commit(manager: CheckpointManager, step: int) -> Path:
    tmp = manager.prepare_temp(step)
    (tmp / "payload.txt").write_text(str(step))
    return manager.commit(tmp, TrainerState(global_step=step))


def test_commit_latest_and_prune(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, save_total_limit=2)
    assert manager.latest() is None
    for step in (2, 4, 6):
        final = _commit(manager, step)
        assert manager.latest() == final
    assert [p.name for p in manager.complete_checkpoints()] == ["checkpoint-4", "checkpoint-6"]
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "checkpoint-6"
    # a crash while writing step 8 leaves a .tmp folder; latest still names step 6 and the next save cleans up
    crashed = manager.prepare_temp(8)
    (crashed / "model.safetensors").write_bytes(b"half")
    assert manager.latest().name == "checkpoint-6"
    assert manager.resolve("latest").name == "checkpoint-6"
    _commit(manager, 8)
    assert not crashed.exists()
    # a latest file naming a deleted folder falls back to the newest complete checkpoint
    (tmp_path / "checkpoints" / "latest").write_text("checkpoint-99\n")
    assert manager.latest().name == "checkpoint-8"
    # resolving: a checkpoint folder, an output dir, or nothing
    assert manager.resolve(str(tmp_path / "checkpoints" / "checkpoint-6")).name == "checkpoint-6"
    assert CheckpointManager(tmp_path / "other").resolve(str(tmp_path)).name == "checkpoint-8"
    with pytest.raises(CheckpointError, match="does not exist"):
        manager.resolve(str(tmp_path / "missing"))
    assert [p.name for p in manager.drop_newer_than(6)] == ["checkpoint-8"]


def test_generator_state_round_trip(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(5)
    torch.rand(3, generator=gen)
    save_generator_state(gen, tmp_path / "g.safetensors")
    expected = torch.rand(4, generator=gen)
    other = torch.Generator()
    other.set_state(load_generator_state(tmp_path / "g.safetensors"))
    assert torch.equal(torch.rand(4, generator=other), expected)


def test_atomic_dir_replaces_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "backbone"
    with atomic_dir(final) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "a").write_text("2")
        raise RuntimeError("crash")
    assert (final / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backbone"]
