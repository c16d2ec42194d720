"""Evaluation protocols: ``linear``, ``knn`` (on cached features), ``finetune``/``warmup``/``frozen``/
``scratch`` (end to end) and ``segmentation``. ``eval_suite.runner.evaluate`` dispatches to them."""

from __future__ import annotations

import math

import numpy as np

CLASSIFICATION_PROTOCOLS = ("linear", "knn", "finetune", "warmup", "frozen", "scratch")
PROTOCOLS = (*CLASSIFICATION_PROTOCOLS, "segmentation")
FEATURE_PROTOCOLS = ("linear", "knn")
TRAINING_PROTOCOLS = ("finetune", "warmup", "frozen", "scratch")


def validation_score(y_true: np.ndarray, y_score: np.ndarray, task: str, metric: str) -> float:
    """One validation metric for model selection; falls back to accuracy where it is undefined."""
    from eval_suite.metrics import compute_classification_metrics

    try:
        value = compute_classification_metrics(y_true, y_score, task=task, metrics=[metric])[metric]
    except Exception:  # e.g. AUC on a validation split with one class: no signal, use accuracy
        value = float("nan")
    if value is None or not math.isfinite(float(value)):
        value = compute_classification_metrics(y_true, y_score, task=task, metrics=["accuracy"])["accuracy"]
    return float(value) if metric != "ece" else -float(value)
