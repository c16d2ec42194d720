"""Shared fixtures: a study sandbox (checkpoint store + feature cache under tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> dict[str, Path]:
    """Folders a study run writes to, all under ``tmp_path`` (never the user's caches)."""
    store, cache = tmp_path / "store", tmp_path / "features"
    monkeypatch.setenv("HFSSL_CHECKPOINT_STORE", str(store))
    monkeypatch.setenv("HFSSL_EVAL_CACHE", str(cache))
    return {"store": store, "cache": cache, "out": tmp_path / "out", "data": data_dir}
