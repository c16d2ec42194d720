"""Realistic result records for leaderboard tests, built with the metrics/stats/results layer.

A fixed binary test set (BreastMNIST-like: 42 malignant / 114 benign) and synthetic predictions
whose quality is controlled by ``skill`` (logit margin) with seed-dependent noise; metrics, bootstrap
CIs and records come from ``eval_suite.metrics`` / ``eval_suite.stats`` / ``eval_suite.results`` so
the records are exactly what an evaluation would write.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

CLASS_NAMES = ["malignant", "normal/benign"]
TRAIN_COUNTS = [147, 399]


def test_labels(n_per_class: tuple[int, ...] = (42, 114)) -> np.ndarray:
    return np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])


def predictions(skill: float, seed: int, y_true: np.ndarray, n_classes: int = 2) -> np.ndarray:
    """Class probabilities: the true class gets ``skill`` extra logit, plus N(0, 1) noise."""
    rng = np.random.default_rng(seed + int(skill * 1000) * 7919)
    logits = rng.normal(size=(len(y_true), n_classes))
    logits[np.arange(len(y_true)), y_true] += skill
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def make_record(
    name: str,
    *,
    skill: float,
    seed: int = 0,
    protocol: str = "linear",
    random_init: bool = False,
    dataset: str = "breastmnist",
    image_size: int = 28,
    label_fraction: float = 1.0,
    imbalance_ratio: str = "natural",
    policy: dict | None = None,
    train_counts: list[int] | None = None,
    n_resamples: int = 200,
) -> dict:
    from eval_suite.metrics import compute_classification_metrics
    from eval_suite.results import make_record as _make_record
    from eval_suite.stats import bootstrap_ci

    y_true = test_labels()
    y_score = predictions(skill, seed, y_true)
    counts = list(train_counts or TRAIN_COUNTS)
    metrics = compute_classification_metrics(y_true, y_score, task="binary", train_class_counts=counts)
    ci95 = bootstrap_ci(
        y_true,
        y_score,
        task="binary",
        metrics=("balanced_accuracy", "accuracy", "auc", "macro_f1"),
        n_resamples=n_resamples,
        seed=seed,
        train_class_counts=counts,
    )
    content_hash = hashlib.sha256(name.encode()).hexdigest()
    return _make_record(
        checkpoint={
            "spec": f"./{name}" if not random_init else f"scratch:{name}",
            "name": name,
            "source": "hfssl",
            "content_hash": content_hash,
            "random_init": random_init,
            "pretext_methods": [] if random_init else ["simclr"],
            "channel_adapter": "none",
            "embed_dim": 512,
            "spatial_dims": 2,
        },
        dataset={
            "name": dataset,
            "image_size": image_size,
            "spatial_dims": 2,
            "task": "binary",
            "num_classes": 2,
            "class_names": CLASS_NAMES,
            "train_split": "train",
            "eval_split": "test",
            "n_train": int(sum(counts)),
            "n_eval": len(y_true),
            "train_class_counts": counts,
        },
        protocol={"name": protocol, "params": {"epochs": 1}},
        regime={"label_fraction": label_fraction, "imbalance_ratio": imbalance_ratio},
        policy=policy or {"sampler": "none", "loss": "ce", "augment": "none", "mixup": 0.0},
        seed=seed,
        metrics=metrics,
        ci95={k: list(v) for k, v in ci95.items()},
        test_outputs={"y_true": y_true.tolist(), "y_score": y_score.tolist()},
        timings={"features_s": 0.1, "train_s": 0.2, "eval_s": 0.05, "total_s": 0.35},
    )


def write_results(folder: Path, records: list[dict]) -> Path:
    from eval_suite.results import write_record

    for r in records:
        write_record(r, folder)
    return folder


def standard_records(seeds=(0, 1, 2)) -> list[dict]:
    """Three checkpoints in the finetune setting: a strong SSL, a weak SSL, and scratch."""
    out = []
    for seed in seeds:
        out.append(make_record("ssl-strong", skill=2.5, seed=seed, protocol="finetune"))
        out.append(make_record("ssl-weak", skill=0.6, seed=seed, protocol="finetune"))
        out.append(
            make_record("scratch (resnet18)", skill=0.5, seed=seed, protocol="scratch", random_init=True)
        )
    return out
