"""Frozen-backbone features, extracted once and cached on disk (safetensors, written atomically).

The linear and kNN protocols never run the backbone more than once per (checkpoint, dataset, split,
image size, transform): the key hashes all of them, and a cached file is read back instead of
recomputed. Files are ``<cache_dir>/<key>.safetensors`` with tensors ``features`` (N, D) float32 and
``labels`` (N,) int64; nothing is ever pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hfssl.utils.io import atomic_path
from hfssl.utils.logging import get_logger, progress_disabled

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from hfssl.hub import FeatureExtractor
    from hfssl.training import RuntimePlan

logger = get_logger("eval_suite.features")

FEATURES_VERSION = 1  # bump when the extraction itself changes, to invalidate old caches


def default_cache_dir() -> Path:
    """``$HFSSL_EVAL_CACHE`` or ``~/.cache/hfssl/features``."""
    env = os.environ.get("HFSSL_EVAL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hfssl" / "features"


def cache_key(
    extractor: FeatureExtractor,
    split: Dataset,
    *,
    dataset: str,
    split_name: str,
    image_size: Any,
    transform: str = "none",
    extra: dict[str, Any] | None = None,
) -> str:
    """sha256 of everything the features depend on (checkpoint content, data rows, preprocessing)."""
    identity = {
        "version": FEATURES_VERSION,
        "content_hash": extractor.info.content_hash,
        "spec": extractor.info.spec,
        "normalisation": None
        if extractor.normalisation is None
        else [list(x) for x in extractor.normalisation],
        "dataset": dataset,
        "split": split_name,
        "n": len(split),
        "fingerprint": getattr(split, "_fingerprint", None),
        "image_size": image_size,
        "transform": transform,
        **(extra or {}),
    }
    if getattr(extractor, "input_size", None) is not None:  # resized input: other features
        identity["input"] = [extractor.input_size, extractor.resize]
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def extract_features(
    extractor: FeatureExtractor,
    split: Dataset,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    desc: str = "features",
    plan: RuntimePlan | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)`` float32 and labels ``(N,)`` of a split, backbone in eval mode.

    ``plan``: precision + memory format (default: hfssl's resolver for ``extract`` on ``device``;
    bf16 autocast on CPUs with native bf16, see ``tests/eval_suite/test_bf16_features.py``).
    """
    import torch
    from tqdm.auto import tqdm

    from eval_suite.protocols.base import runtime_plan
    from hfssl.data import make_dataloader

    if plan is None:
        plan = runtime_plan(extractor, device, "extract")
    loader = make_dataloader(split, batch_size=batch_size, shuffle=False)
    plan.apply(extractor.eval().to(device))
    feats, labels = [], []
    with torch.inference_mode(), plan.autocast():
        for batch in tqdm(loader, desc=desc, leave=False, disable=progress_disabled()):
            x = plan.apply(batch["pixel_values"].to(device))
            feats.append(extractor.embed(x).float().cpu())
            labels.append(batch["labels"].reshape(len(batch["labels"]), -1)[:, 0])
    return torch.cat(feats).numpy(), torch.cat(labels).numpy().astype(np.int64)


def cached_features(
    extractor: FeatureExtractor,
    split: Dataset | Callable[[], Dataset],
    *,
    cache_dir: str | os.PathLike | None,
    key: str,
    batch_size: int = 256,
    device: str = "cpu",
    desc: str = "features",
    plan: RuntimePlan | None = None,
    n_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(features, labels, from_cache)``; extracts and stores on a miss (``cache_dir=None``: no cache).

    ``split`` may be a function that builds the split (a corrupted test split): it is then only
    called on a miss, and ``n_rows`` (its length) checks a cached file."""
    expected = len(split) if n_rows is None else n_rows
    from safetensors.numpy import load_file, save_file

    path = None if cache_dir is None else Path(cache_dir) / f"{key}.safetensors"
    if path is not None and path.is_file():
        try:
            data = load_file(str(path))
            if len(data["labels"]) == expected:
                return data["features"], data["labels"], True
        except Exception as err:  # a damaged cache file is recomputed, never trusted
            logger.warning(f"ignoring unreadable feature cache {path}: {err}")
    if callable(split) and not hasattr(split, "column_names"):
        split = split()
    features, labels = extract_features(
        extractor, split, batch_size=batch_size, device=device, desc=desc, plan=plan
    )
    if path is not None:
        with atomic_path(path, suffix=".safetensors") as tmp:
            save_file({"features": np.ascontiguousarray(features), "labels": labels}, str(tmp))
    return features, labels, False
