"""Graded labels: the three ordinal heads on the graded test bed, tuned cut points, ordinal metrics,
policies that apply to the probabilistic heads, and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval_suite.protocols.linear import run_linear
from eval_suite.protocols.ordinal import apply_thresholds, cumulative_probabilities, tune_thresholds
from eval_suite.runner import EvalConfig, evaluate
from hfssl.errors import ConfigError

TIMM_2D = "timm:resnet10t?in_chans=1"


def _graded_blobs(n, seed, k=5):
    """Features whose first coordinate grows with the grade; skewed grade counts."""
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=np.array([486, 128, 206, 194, 66]) / 1080)
    x = rng.normal(size=(n, 4))
    x[:, 0] += 1.5 * y
    return x, y


def test_graded_test_bed_is_reproducible_skewed_and_visible(data_dir):
    from hfssl.data import describe, load_source
    from hfssl.data.graded import GRADE_WEIGHTS, grade_quota

    a, b = load_source("graded:breastmnist"), load_source("graded:breastmnist")
    desc = describe(a)
    assert desc.task == "ordinal-regression" and desc.class_names[0] == "grade 0"
    for split, ds in a.items():
        assert desc.class_counts[split] == grade_quota(len(ds)).tolist()
        assert np.array_equal(np.asarray(ds["image"]), np.asarray(b[split]["image"]))
    counts = np.asarray(desc.class_counts["train"]) / desc.split_sizes["train"]
    np.testing.assert_allclose(counts, np.asarray(GRADE_WEIGHTS) / sum(GRADE_WEIGHTS), atol=0.01)
    # the lesion is visible: saturated pixels grow with the grade
    imgs = np.asarray(a["train"].with_format("numpy")["image"])
    src = np.asarray(load_source("breastmnist")["train"].with_format("numpy")["image"])
    grades = np.asarray(a["train"]["label"])
    changed = [
        (np.abs(imgs[grades == g].astype(int) - src[grades == g]) > 0).sum((1, 2)).mean() for g in range(5)
    ]
    assert changed[0] == 0 and all(changed[g] < changed[g + 1] for g in range(4))


def test_tuned_thresholds_beat_rounding_and_keep_every_grade():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    values = 0.6 * y + rng.normal(0, 0.3, 300)  # a regressor that shrinks towards 0: rounding fails
    out = tune_thresholds(values, y, 5)
    assert out["val_qwk_tuned"] > out["val_qwk_rounded"] + 0.05
    cuts = out["thresholds"]
    assert all(b - a >= 0.25 - 1e-9 for a, b in zip(cuts, cuts[1:]))
    from sklearn.metrics import cohen_kappa_score

    assert cohen_kappa_score(y, apply_thresholds(values, cuts), weights="quadratic") == pytest.approx(
        out["val_qwk_tuned"]
    )
    with pytest.raises(ConfigError, match="validation split"):
        tune_thresholds(np.zeros(0), np.zeros(0, dtype=int), 5)


def test_cumulative_probabilities_sum_to_one_and_match_torch():
    from hfssl.models import ordinal_probabilities

    logits = torch.tensor([[2.0, 0.5, -1.0, -2.0], [0.0, 1.0, -0.5, 0.2]])
    mine = cumulative_probabilities(torch.sigmoid(logits).numpy())
    np.testing.assert_allclose(mine.sum(1), 1.0)
    np.testing.assert_allclose(mine, ordinal_probabilities(logits, "cumulative").numpy(), atol=1e-6)


@pytest.mark.parametrize("head", ["regression", "classification", "cumulative"])
def test_linear_heads_learn_graded_features(head):
    train, val, test = _graded_blobs(400, 0), _graded_blobs(150, 1), _graded_blobs(300, 2)
    scores, info = run_linear(train, val, test[0], task="ordinal", num_classes=5, seed=0, ordinal_head=head)
    from eval_suite.metrics import compute_classification_metrics

    m = compute_classification_metrics(test[1], scores, task="ordinal", num_classes=5)
    assert m["qwk"] > 0.8 and min(m["per_class"]["recall"]) > 0
    if head == "regression":
        assert scores.shape == (300, 1) and len(info["thresholds"]) == 4
        assert "auc" not in m
    else:
        assert scores.shape == (300, 5) and m["auc"] > 0.8 and "ece" in m


def test_linear_classification_head_is_sklearn_multinomial():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, val, test = _graded_blobs(200, 3), _graded_blobs(80, 4), _graded_blobs(50, 5)
    scores, info = run_linear(
        train, val, test[0], task="ordinal", num_classes=5, seed=0, ordinal_head="classification"
    )
    direct = make_pipeline(StandardScaler(), LogisticRegression(C=info["C"], max_iter=2000, random_state=0))
    np.testing.assert_allclose(scores, direct.fit(*train).predict_proba(test[0]), atol=1e-10)


@pytest.fixture(scope="module")
def graded_runs(tmp_path_factory, data_dir):
    """Every head as a linear probe of frozen (random-init resnet10t) features of the graded test
    bed: real images, the whole split, a few seconds each on a CPU."""
    tmp = tmp_path_factory.mktemp("graded")
    out = {}
    for head in ("regression", "classification", "cumulative"):
        cfg = EvalConfig(
            checkpoint=TIMM_2D,
            dataset="graded:breastmnist",
            protocol="linear",
            ordinal_head=head,
            n_bootstrap=50,
            loss="ce" if head == "regression" else "weighted",
            results_dir=str(tmp / "results"),
            cache_dir=str(tmp / "cache"),
            device="cpu",
        )
        out[head] = evaluate(cfg)[0]
    return out


@pytest.mark.parametrize("head", ["regression", "classification", "cumulative"])
def test_every_ordinal_head_learns_the_graded_test_bed(graded_runs, head):
    from eval_suite.results import validate_record

    record = graded_runs[head]
    validate_record(record)
    m = record["metrics"]
    assert record["protocol"]["params"]["ordinal_head"] == head
    assert m["qwk"] > 0.5, m["qwk"]
    assert min(m["per_class"]["recall"]) > 0, m["per_class"]["recall"]
    assert sum(sum(row) for row in m["confusion_matrix"].values()) == record["dataset"]["n_eval"]
    if head == "regression":
        assert "auc" not in m and len(record["fit"]["thresholds"]) == 4
    else:
        assert 0.5 < m["auc"] <= 1 and 0 <= m["ece"] <= 1 and record["policy"]["loss"] == "weighted"


def test_cumulative_head_trains_end_to_end_with_weighted_loss_and_mixup(tmp_path, data_dir):
    """A short scratch run of the cumulative head takes the policies a regressed grade cannot."""
    cfg = EvalConfig(
        checkpoint=TIMM_2D,
        dataset="graded:breastmnist",
        protocol="scratch",
        ordinal_head="cumulative",
        loss="weighted",
        mixup=0.2,
        preset="quick",
        epochs=3,
        batch_size=32,
        n_bootstrap=50,
        results_dir=str(tmp_path / "r"),
        cache_dir=str(tmp_path / "c"),
        device="cpu",
    )
    record = evaluate(cfg)[0]
    m = record["metrics"]
    assert record["policy"]["mixup"] == 0.2 and record["protocol"]["params"]["ordinal_head"] == "cumulative"
    history = record["fit"]["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert m["auc"] > 0.6, m["auc"]  # 3 CPU epochs rank the grades; the linear probes above grade them


def test_non_ordinal_records_have_no_ordinal_entries(tmp_path, data_dir):
    cfg = EvalConfig(
        checkpoint=TIMM_2D,
        protocol="linear",
        max_train_samples=32,
        max_eval_samples=32,
        n_bootstrap=20,
        results_dir=str(tmp_path / "r"),
        cache_dir=str(tmp_path / "c"),
    )
    record = evaluate(cfg)[0]
    assert "ordinal_head" not in record["protocol"]["params"]
    assert record["protocol"]["params"]["classifier"] == "logistic_regression"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dataset="breastmnist", ordinal_head="cumulative"), "needs graded labels"),
        (dict(dataset="graded:breastmnist", ordinal_head="ordinalish"), "unknown ordinal head"),
        (
            dict(dataset="graded:breastmnist", ordinal_head="regression", loss="focal", protocol="scratch"),
            "regressed grade",
        ),
        (
            dict(dataset="graded:breastmnist", ordinal_head="regression", mixup=0.2, protocol="scratch"),
            "regressed grade",
        ),
        (dict(dataset="graded:breastmnist", ordinal_head="cumulative", protocol="knn"), "no ordinal head"),
    ],
)
def test_bad_ordinal_input_is_a_one_line_config_error(tmp_path, data_dir, kwargs, match):
    base = dict(checkpoint=TIMM_2D, protocol="linear", results_dir=str(tmp_path), cache_dir=str(tmp_path))
    base.update(kwargs)
    with pytest.raises(ConfigError, match=match) as err:
        evaluate(EvalConfig(**base))
    assert "\n" not in str(err.value)


def test_cumulative_head_refuses_two_grades():
    from eval_suite.protocols.ordinal import resolve_head

    with pytest.raises(ConfigError, match="at least 3 grades"):
        resolve_head("cumulative", "ordinal", 2)
