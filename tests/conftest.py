"""Test configuration: point the data root at the shared real data and keep everything offline."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HFSSL_DISABLE_PROGRESS_BARS", "1")
# The zoo store is per test session: entries built on this machine (~/.cache/hfssl/zoo) must not
# turn a "not built here" test into a passing load.
os.environ["HFSSL_ZOO_STORE"] = tempfile.mkdtemp(prefix="hfssl-test-zoo-")
if "HFSSL_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["HFSSL_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data root (MedMNIST + DRIVE); tests needing it skip with a reason if absent."""
    root = Path(os.environ.get("HFSSL_DATA_DIR", SHARED_DATA))
    if not (root / "medmnist").is_dir():
        pytest.skip(f"real data not found under {root}; set HFSSL_DATA_DIR")
    return root


@pytest.fixture(scope="session", autouse=True)
def _single_thread_torch():
    """Tests run torch single-threaded: on small shared CPUs, OpenMP threads spin-wait against other
    processes (pytest-xdist workers included) and a 28 px ResNet step becomes many times slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
