"""Test configuration: point the data root at the shared real data and keep everything offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HFSSL_DISABLE_PROGRESS_BARS", "1")
if "HFSSL_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["HFSSL_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data root (MedMNIST + DRIVE); tests needing it skip with a reason if absent."""
    root = Path(os.environ.get("HFSSL_DATA_DIR", SHARED_DATA))
    if not (root / "medmnist").is_dir():
        pytest.skip(f"real data not found under {root}; set HFSSL_DATA_DIR")
    return root
