"""Data sources and data handling for hfssl.

Sources (all return a ``datasets.DatasetDict`` in one schema, see ``hfssl.data.medmnist``):
``load_source(spec)`` with ``breastmnist`` / ``medmnist:<subset>`` (18 MedMNIST subsets),
``drive``, ``imagefolder:PATH``, ``hub:ORG/NAME``; ``describe(dsd)`` summarises one.

Names are resolved lazily (PEP 562): ``import hfssl.data`` does not import ``datasets`` or torch,
so e.g. ``hfssl data list`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> defining module. Sources (paths, table, loaders, describe):
_LAZY: dict[str, str] = {
    "data_root": "hfssl.data.paths",
    "cache_dir": "hfssl.data.paths",
    "MEDMNIST": "hfssl.data.medmnist_info",
    "MEDMNIST_2D": "hfssl.data.medmnist_info",
    "MEDMNIST_3D": "hfssl.data.medmnist_info",
    "MedMNISTInfo": "hfssl.data.medmnist_info",
    "MedMNISTFile": "hfssl.data.medmnist_info",
    "get_info": "hfssl.data.medmnist_info",
    "load_medmnist": "hfssl.data.medmnist",
    "medmnist_features": "hfssl.data.medmnist",
    "medmnist_path": "hfssl.data.medmnist",
    "load_drive": "hfssl.data.drive",
    "load_imagefolder": "hfssl.data.generic",
    "load_hub": "hfssl.data.generic",
    "dataset_from_arrays": "hfssl.data.generic",
    "column_to_numpy": "hfssl.data.generic",
    "download_file": "hfssl.data.download",
    "file_digest": "hfssl.data.download",
    "load_source": "hfssl.data.sources",
    "describe": "hfssl.data.sources",
    "DatasetDescription": "hfssl.data.sources",
    # --- imbalance / samplers / augment / torch_data (another module owner) -----------------------
    # Add your public names here as  "name": "hfssl.data.<module>",  (kept lazy), or add plain
    # ``from hfssl.data.<module> import ...`` lines below this dict if eager import is intended.
    "make_imbalanced": "hfssl.data.imbalance",
    "label_fraction": "hfssl.data.imbalance",
    "imbalanced_counts": "hfssl.data.imbalance",
    "class_counts": "hfssl.data.imbalance",
    "read_labels": "hfssl.data.imbalance",
    "SubsetResult": "hfssl.data.imbalance",
    "ClassBalancedSampler": "hfssl.data.samplers",
    "MajorityResampler": "hfssl.data.samplers",
    "get_augmentation": "hfssl.data.augment",
    "AUGMENTATION_PRESETS": "hfssl.data.augment",
    "ContrastiveViews": "hfssl.data.augment",
    "Compose": "hfssl.data.augment",
    "RandomFlip": "hfssl.data.augment",
    "RandomRot90": "hfssl.data.augment",
    "RandomRotation": "hfssl.data.augment",
    "RandomScale": "hfssl.data.augment",
    "RandomResizedCrop": "hfssl.data.augment",
    "RandomGaussianBlur": "hfssl.data.augment",
    "RandomGaussianNoise": "hfssl.data.augment",
    "to_tensor_batch": "hfssl.data.torch_data",
    "MedicalImageDataset": "hfssl.data.torch_data",
    "make_dataloader": "hfssl.data.torch_data",
    "arrow_to_numpy": "hfssl.data.torch_data",
    "image_layout": "hfssl.data.torch_data",
    "apply_corruption": "hfssl.data.corruptions",
    "corrupt_dataset": "hfssl.data.corruptions",
    "corruptions_for": "hfssl.data.corruptions",
    "RandomCorruption": "hfssl.data.corruptions",
    # --- end ----------------------------------------------------------------------------------------
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hfssl.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)  # resolved lazily by __getattr__
