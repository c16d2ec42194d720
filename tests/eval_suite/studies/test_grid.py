"""Checkpoint store keys, half-written pretrainings, and skipping finished cells."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval_suite.studies.grid import Cell, CheckpointStore, PretrainSpec, run_grid
from hfssl.errors import ConfigError

TINY = {"backbone": "resnet10t", "max_steps": 2, "batch_size": 8}


def test_key_is_stable_and_sensitive_to_every_field():
    a = PretrainSpec(method="rot", **TINY)
    assert a.key() == PretrainSpec(method="rot", **TINY).key()
    variants = [
        PretrainSpec(method="simclr", **TINY),
        PretrainSpec(method="rot", **{**TINY, "max_steps": 3}),
        PretrainSpec(method="rot", method_kwargs={"head_depth": 2}, **TINY),
        PretrainSpec(method="rot", export_backbone="target", **TINY),
        PretrainSpec(method="rot", image_size=64, **TINY),
    ]
    assert len({v.key() for v in variants} | {a.key()}) == len(variants) + 1


def test_auto_export_is_the_methods_own_encoder_and_keeps_online_keys():
    """Studies export what the method would (DINO: its teacher); where that is the online encoder
    the store key is the one cells had when the default was "online" (no recomputation)."""
    for method in ("rot", "byol", "rot+simclr", "rot:0.5+dino"):
        auto, online = (
            PretrainSpec(method=method, **TINY),
            PretrainSpec(method=method, export_backbone="online", **TINY),
        )
        assert auto.resolved_export() == "online"
        assert auto.key() == online.key()
    dino = PretrainSpec(method="dino", **TINY)
    assert dino.resolved_export() == "target"
    assert dino.key() == PretrainSpec(method="dino", export_backbone="target", **TINY).key()
    assert dino.key() != PretrainSpec(method="dino", export_backbone="online", **TINY).key()
    argv = CheckpointStore(Path("unused")).pretrain_argv(dino, "out", data_dir=None, world=1)
    assert argv[argv.index("--export-backbone") + 1] == "target"


def test_half_written_pretraining_is_not_a_checkpoint(tmp_path):
    store = CheckpointStore(tmp_path)
    spec = PretrainSpec(method="rot", **TINY)
    # what a killed run leaves: a temp folder, and a final folder without the spec file
    (tmp_path / f".tmp-{spec.folder_name()}-123" / "backbone").mkdir(parents=True)
    (store.backbone_dir(spec)).mkdir(parents=True)
    (store.backbone_dir(spec) / "config.json").write_text("{}")
    assert not store.has(spec)


def test_duplicate_or_dangling_cells_are_refused(tmp_path):
    spec = PretrainSpec(method="rot", **TINY)
    cell = Cell("a", spec, {"protocol": "linear"})
    with pytest.raises(ConfigError, match="share the id"):
        run_grid([cell, cell], tmp_path)
    with pytest.raises(ConfigError, match="not in the grid"):
        run_grid([Cell("b", spec, {"protocol": "linear"}, baseline="zzz")], tmp_path)


def test_second_run_recomputes_nothing(sandbox):
    store = CheckpointStore(sandbox["store"])
    spec = PretrainSpec(method="rot", **TINY)
    common = {
        "dataset": "breastmnist",
        "seeds": [0],
        "max_train_samples": 40,
        "max_eval_samples": 40,
        "n_bootstrap": 50,
    }
    cells = [
        Cell("scratch", spec, {**common, "protocol": "scratch", "preset": "quick", "epochs": 1}),
        Cell("linear", spec, {**common, "protocol": "linear"}, name="rot", baseline="scratch"),
    ]
    first = run_grid(cells, sandbox["out"], store=store)
    assert first.computed == ["scratch", "linear"] and not first.skipped
    assert store.has(spec) and not list(sandbox["store"].glob(".tmp-*"))
    mtimes = {p: p.stat().st_mtime_ns for p in (sandbox["out"] / "results").glob("*.json")}
    assert len(mtimes) == 2
    second = run_grid(cells, sandbox["out"], store=store)
    assert second.computed == [] and second.skipped == ["scratch", "linear"]
    assert {p: p.stat().st_mtime_ns for p in (sandbox["out"] / "results").glob("*.json")} == mtimes
    assert [r["record_id"] for r in second.records["linear"]] == [
        r["record_id"] for r in first.records["linear"]
    ]
    log = [json.loads(line) for line in (sandbox["out"] / "run_log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log] == ["computed", "computed", "skipped", "skipped"]
