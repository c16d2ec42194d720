"""Linear probe: C chosen on validation, identical to a direct scikit-learn fit with that C."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from eval_suite.protocols.linear import DEFAULT_C_GRID, run_linear


def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 6)) + y[:, None] * 1.5
    return x, y


def test_linear_probe_equals_sklearn_with_the_chosen_c():
    train, val, test = _blobs(80, 0), _blobs(40, 1), _blobs(30, 2)
    scores, info = run_linear(train, val, test[0], task="binary", num_classes=2, seed=0)
    assert info["C"] in DEFAULT_C_GRID and len(info["val_history"]) == len(DEFAULT_C_GRID)
    best = max(info["val_history"], key=lambda h: h["val_auc"])
    assert best["C"] == info["C"]
    direct = make_pipeline(StandardScaler(), LogisticRegression(C=info["C"], max_iter=2000, random_state=0))
    direct.fit(*train)
    np.testing.assert_allclose(scores, direct.predict_proba(test[0]), atol=1e-10)
    assert (scores.argmax(1) == test[1]).mean() > 0.7  # separable blobs are learnt


def test_weighted_policy_uses_balanced_class_weights():
    train, val, test = _blobs(60, 3), _blobs(30, 4), _blobs(20, 5)
    scores, info = run_linear(
        train, val, test[0], task="binary", num_classes=2, seed=0, class_weight="balanced"
    )
    direct = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=info["C"], max_iter=2000, class_weight="balanced", random_state=0),
    )
    direct.fit(*train)
    np.testing.assert_allclose(scores, direct.predict_proba(test[0]), atol=1e-10)


def test_ordinal_task_regresses_grades():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    grade = np.clip(np.round(x[:, 0] + 1), 0, 2).astype(int)
    scores, _ = run_linear(
        (x, grade), (x, grade), x, task="ordinal", num_classes=3, seed=0, select_metric="qwk"
    )
    assert scores.shape == (60, 1)
