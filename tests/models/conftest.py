"""Model tests run single-threaded: on small shared CPUs, torch's OpenMP threads spin-wait against
other processes and a 28 px ResNet forward becomes ~20x slower than with one thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _single_thread_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
