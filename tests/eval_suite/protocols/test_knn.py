"""Cosine kNN with exp(sim/T) weighted votes, against a direct numpy computation."""

from __future__ import annotations

import numpy as np

from eval_suite.protocols.knn import run_knn


def test_knn_matches_direct_weighted_cosine_votes():
    rng = np.random.default_rng(0)
    xtr, ytr = rng.normal(size=(40, 8)), rng.integers(0, 3, 40)
    xte = rng.normal(size=(10, 8))
    k, t = 7, 0.07
    proba = run_knn((xtr, ytr), xte, num_classes=4, k=k, temperature=t)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    sim = unit(xte) @ unit(xtr).T
    expected = np.zeros((10, 4))
    for i in range(10):
        nn = np.argsort(-sim[i])[:k]
        w = np.exp((sim[i, nn] - sim[i, nn].max()) / t)
        for j, wj in zip(nn, w):
            expected[i, ytr[j]] += wj
        expected[i] /= expected[i].sum()
    np.testing.assert_allclose(proba, expected, atol=1e-8)
    assert np.all(proba[:, 3] == 0)  # a class absent from train gets a zero column


def test_k_larger_than_train_is_clipped():
    xtr, ytr = np.eye(3), np.array([0, 1, 1])
    proba = run_knn((xtr, ytr), np.eye(3)[:1], num_classes=2, k=50)
    assert proba.shape == (1, 2) and proba[0].sum() == 1.0
