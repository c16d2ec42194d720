"""Shared fixtures for pretext tests: real BreastMNIST 28 px and AdrenalMNIST3D 28³ tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


def _load_split(data_dir: Path, name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(data_dir / "medmnist" / f"{name}.npz") as npz:
        images = torch.from_numpy(npz[f"{split}_images"]).float().div_(255.0).unsqueeze(1)
        labels = torch.from_numpy(npz[f"{split}_labels"]).long().view(-1)
    return images, labels


@pytest.fixture(scope="session")
def breast28(data_dir: Path) -> dict[str, torch.Tensor]:
    """BreastMNIST 28 px as float tensors in [0, 1]: train (546, 1, 28, 28) and test (156, ...)."""
    train_x, train_y = _load_split(data_dir, "breastmnist", "train")
    test_x, test_y = _load_split(data_dir, "breastmnist", "test")
    return {"train": train_x, "train_labels": train_y, "test": test_x, "test_labels": test_y}


@pytest.fixture(scope="session")
def adrenal28(data_dir: Path) -> dict[str, torch.Tensor]:
    """AdrenalMNIST3D 28³ as float tensors in [0, 1]: train (1188, 1, 28, 28, 28) and test."""
    train_x, train_y = _load_split(data_dir, "adrenalmnist3d", "train")
    test_x, test_y = _load_split(data_dir, "adrenalmnist3d", "test")
    return {"train": train_x, "train_labels": train_y, "test": test_x, "test_labels": test_y}
