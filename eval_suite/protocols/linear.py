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
    """Logistic regression on frozen features, ``loss=weighted`` -> balanced class weights.

    Ordinal heads: ``classification`` = multinomial logistic regression; ``cumulative`` = K-1 binary
    logistic regressions on ``[y > j]`` (one C), turned into per-grade probabilities; ``regression``
    = ridge regression (``alpha = 1 / C``), its cut points tuned on validation for QWK."""

    name = "linear"
    uses_ordinal_head = True

    def params(self) -> dict[str, Any]:
        from eval_suite.protocols.finetune import ordinal_params

        classifier = {"regression": "ridge", "cumulative": "cumulative_logistic_regression"}.get(
            self.cfg.ordinal_head or "", "logistic_regression"
        )
        return {
            "classifier": classifier,
            "C_grid": list(DEFAULT_C_GRID),
            "select_metric": self.cfg.select_metric,
            **ordinal_params(self.cfg),
        }

    def head_parameters(self, embed_dim: int, num_classes: int, task: str) -> int:
        """Weights + biases of the fitted model: one vector for binary/ridge, K-1 for cumulative."""
        head = self.cfg.ordinal_head if task == "ordinal" else None
        if task == "ordinal" and (head or "regression") == "regression":
            vectors = 1
        elif head == "cumulative":
            vectors = num_classes - 1
        else:
            vectors = 1 if num_classes == 2 else num_classes
        return vectors * (embed_dim + 1)

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
            ordinal_head=self.cfg.ordinal_head,
            tune_thresholds=self.cfg.tune_thresholds,
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
    ordinal_head: str | None = None,
    tune_thresholds: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit on ``train`` for each C, keep the best on ``val`` by ``select_metric``; return test scores.

    Scores: ``(N, num_classes)`` probabilities. Ordinal tasks (``select_metric`` ``auc`` means
    ``qwk`` there) follow ``ordinal_head`` (``None`` = regression): the regression head's scores are
    ``(N, 1)`` grades, cut at the cut points tuned on ``val`` when ``tune_thresholds`` (else the
    regressed values, rounded by the metrics).
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from eval_suite.protocols.ordinal import apply_thresholds
    from eval_suite.protocols.ordinal import tune_thresholds as tune

    (xtr, ytr), (xva, yva) = train, val
    head = (ordinal_head or "regression") if task == "ordinal" else None
    if task == "ordinal" and select_metric == "auc":
        select_metric = "qwk"
    best: tuple[float, float, Any] | None = None
    history = []
    for c in c_grid:
        if head == "regression":
            model: Any = make_pipeline(StandardScaler(), Ridge(alpha=1.0 / c))
        elif head == "cumulative":
            model = _CumulativeLogistic(c, num_classes, class_weight, seed)
        else:
            model = make_pipeline(
                StandardScaler(),
                LogisticRegression(C=c, max_iter=2000, class_weight=class_weight, random_state=seed),
            )
        model.fit(xtr, ytr)
        score = validation_score(yva, _scores(model, xva, head, num_classes), task, select_metric)
        history.append({"C": c, f"val_{select_metric}": score})
        if best is None or score > best[0]:
            best = (score, c, model)
    assert best is not None
    info: dict[str, Any] = {"C": best[1], "val_history": history}
    test_scores = _scores(best[2], test_x, head, num_classes)
    if head == "regression" and tune_thresholds:
        info.update(tune(_scores(best[2], xva, head, num_classes), yva, num_classes))
        test_scores = apply_thresholds(test_scores, info["thresholds"]).astype(np.float64).reshape(-1, 1)
    return test_scores, info


class _CumulativeLogistic:
    """K-1 binary logistic regressions on standardised features for ``P(y > j)``, one C."""

    def __init__(self, c: float, num_grades: int, class_weight: str | None, seed: int) -> None:
        self.c, self.num_grades, self.class_weight, self.seed = c, num_grades, class_weight, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> _CumulativeLogistic:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
        from sklearn.utils.class_weight import compute_sample_weight

        y = np.asarray(y).astype(np.int64)
        self.scaler = StandardScaler().fit(x)
        z = self.scaler.transform(x)
        weight = compute_sample_weight("balanced", y) if self.class_weight == "balanced" else None
        self.models: list[Any] = []
        for j in range(self.num_grades - 1):
            target = (y > j).astype(np.int64)
            if target.min() == target.max():  # every training grade on one side: a constant
                self.models.append(float(target[0]))
                continue
            lr = LogisticRegression(C=self.c, max_iter=2000, random_state=self.seed)
            self.models.append(lr.fit(z, target, sample_weight=weight))
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        from eval_suite.protocols.ordinal import cumulative_probabilities

        z = self.scaler.transform(x)
        gt = np.stack(
            [np.full(len(z), m) if isinstance(m, float) else m.predict_proba(z)[:, 1] for m in self.models], 1
        )
        return cumulative_probabilities(gt)


def _scores(model: Any, x: np.ndarray, head: str | None, num_classes: int) -> np.ndarray:
    if head == "regression":
        return model.predict(x).reshape(-1, 1)
    if head == "cumulative":
        return model.predict_proba(x)
    proba = model.predict_proba(x)
    classes = model[-1].classes_
    if len(classes) == num_classes:
        return proba
    full = np.zeros((len(x), num_classes))  # a class absent from train still gets a column
    full[:, classes] = proba
    return full
