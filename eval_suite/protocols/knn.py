"""The ``knn`` protocol: cosine k-nearest-neighbour classification on cached frozen features.

scikit-learn's brute-force ``KNeighborsClassifier`` with ``metric="cosine"``; each neighbour votes
with ``exp(similarity / T)`` (the instance-discrimination kNN monitor's weighting, T = 0.07).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eval_suite.protocols.base import FeatureProtocol
from hfssl.errors import ConfigError


class Knn(FeatureProtocol):
    """scikit-learn kNN classifier with ``k = cfg.knn_k`` and ``exp(sim / 0.07)`` votes."""

    name = "knn"

    @classmethod
    def validate(cls, cfg, task=None):
        if cfg.knn_k < 1:
            raise ConfigError(f"knn_k {cfg.knn_k} is below 1", "pass --knn-k 20 (or any k >= 1)")
        super().validate(cfg, task)

    def params(self) -> dict[str, Any]:
        return {"k": self.cfg.knn_k, "metric": "cosine", "weights": "exp(sim/0.07)"}

    def fit_predict(self, train, val, test_x, *, task, num_classes, seed):
        return run_knn(train, test_x, num_classes=num_classes, k=self.cfg.knn_k), {}


def run_knn(
    train: tuple[np.ndarray, np.ndarray],
    test_x: np.ndarray,
    *,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
) -> np.ndarray:
    """``(N, num_classes)`` vote shares for ``test_x`` from the ``k`` most cosine-similar train rows."""
    from sklearn.neighbors import KNeighborsClassifier

    xtr, ytr = train
    k = max(1, min(int(k), len(xtr)))

    def weights(distances: np.ndarray) -> np.ndarray:
        # cosine distance = 1 - similarity; shift by the row max so exp never overflows
        sim = (1.0 - distances) / temperature
        return np.exp(sim - sim.max(axis=1, keepdims=True))

    model = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute", weights=weights)
    model.fit(xtr, ytr)
    proba = model.predict_proba(test_x)
    full = np.zeros((len(test_x), num_classes))
    full[:, model.classes_] = proba
    return full
