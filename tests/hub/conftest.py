"""Fixtures for Hub tests: a loopback Hub server the client is pointed at, and an offline switch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.hub_server import LoopbackHub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[LoopbackHub]:
    """A fresh in-memory Hub on 127.0.0.1; huggingface_hub, transformers and timm talk to it (online)
    for the test, with an empty cache at ``tmp_path / "hf-cache"``."""
    with LoopbackHub() as server, server.patch_client(cache_dir=tmp_path / "hf-cache"):
        yield server


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """``HF_HUB_OFFLINE=1`` for the block (the constant is read at import, so patch it too)."""
    import os

    from huggingface_hub import constants

    saved, saved_env = constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE")
    constants.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env
