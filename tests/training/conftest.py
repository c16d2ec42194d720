"""Shared settings of the pretraining tests: one intra-op thread (bit-exact comparisons across
processes, and far faster on a shared 2-core box), tiny backbones, BreastMNIST 28 px."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from tests.hub.conftest import hub  # noqa: F401  (the loopback Hub fixture, for --init-from ORG/NAME)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One torch thread here and in subprocesses (``OMP_NUM_THREADS=1``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HFSSL_DISABLE_PROGRESS_BARS", "1")
    yield
    torch.set_num_threads(before)


def fast_args(output_dir: os.PathLike | str, *extra: str, method: str = "rot") -> list[str]:
    """Arguments of a tiny run: test_resnet, 8 images per step, no monitor, no trackers."""
    return [
        "--method", method,
        "--backbone", "test_resnet",
        "--dataset", "breastmnist",
        "--output-dir", str(output_dir),
        "--per-device-train-batch-size", "8",
        "--max-steps", "2",
        "--logging-steps", "1",
        "--eval-strategy", "no",
        "--save-strategy", "no",
        "--report-to", "none",
        *extra,
    ]  # fmt: skip
