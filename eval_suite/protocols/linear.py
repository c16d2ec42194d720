"""The ``linear`` protocol: a linear probe on cached frozen features, C chosen on validation.

scikit-learn's L-BFGS logistic regression on standardised features was picked over a torch linear
layer: one fit is quick on a CPU and needs no learning-rate/epoch tuning, at the same accuracy
(``benchmarks/eval_speed.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eval_suite.protocols.base import FeatureProtocol, validation_score

DEFAULT_C_GRID = (0.01, 0.1, 1.0, 10.0)


class Linear(FeatureProtocol):
    """Logistic regression (ordinal: ridge regression) on frozen features, ``loss=weighted`` ->
    balanced class weights."""

    name = "linear"

    def params(self) -> dict[str, Any]:
        return {
            "classifier": "logistic_regression",
            "C_grid": list(DEFAULT_C_GRID),
            "select_metric": self.cfg.select_metric,
        }

    def fit_predict(self, train, val, test_x, *, task, num_classes, seed):
        return run_linear(
            train,
            val,
            test_x,
            task=task,
            num_classes=num_classes,
            seed=seed,
            class_weight="balanced" if self.policy["loss"] == "weighted" else None,
            select_metric=self.cfg.select_metric,
        )


def run_linear(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test_x: np.ndarray,
    *,
    task: str,
    num_classes: int,
    seed: int,
    class_weight: str | None = None,
    select_metric: str = "auc",
    c_grid: tuple[float, ...] = DEFAULT_C_GRID,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit on ``train`` for each C, keep the best on ``val`` by ``select_metric``; return test scores.

    Scores: ``(N, num_classes)`` probabilities (ordinal: ``(N, 1)`` regressed grades from ridge
    regression, whose ``alpha = 1 / C``).
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    (xtr, ytr), (xva, yva) = train, val
    best: tuple[float, float, Any] | None = None
    history = []
    for c in c_grid:
        if task == "ordinal":
            model = make_pipeline(StandardScaler(), Ridge(alpha=1.0 / c))
        else:
            model = make_pipeline(
                StandardScaler(),
                LogisticRegression(C=c, max_iter=2000, class_weight=class_weight, random_state=seed),
            )
        model.fit(xtr, ytr)
        score = validation_score(yva, _scores(model, xva, task, num_classes), task, select_metric)
        history.append({"C": c, f"val_{select_metric}": score})
        if best is None or score > best[0]:
            best = (score, c, model)
    assert best is not None
    return _scores(best[2], test_x, task, num_classes), {"C": best[1], "val_history": history}


def _scores(model: Any, x: np.ndarray, task: str, num_classes: int) -> np.ndarray:
    if task == "ordinal":
        return model.predict(x).reshape(-1, 1)
    proba = model.predict_proba(x)
    classes = model[-1].classes_
    if len(classes) == num_classes:
        return proba
    full = np.zeros((len(x), num_classes))  # a class absent from train still gets a column
    full[:, classes] = proba
    return full
