"""ECE / reliability bins against a hand computation, segmentation metrics against a confusion
matrix from scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from eval_suite.metrics import (
    MetricInputError,
    UndefinedMetricWarning,
    calibration_bins,
    compute_classification_metrics,
    compute_segmentation_metrics,
    reliability_diagram,
)


def test_ece_matches_hand_computation() -> None:
    # confidences 0.9, 0.8, 0.6, 0.55 with 5 bins: bins (0.8,1.0] -> {0.9}, (0.6,0.8] -> {0.8},
    # (0.4,0.6] -> {0.6, 0.55}
    y_true = np.array([0, 1, 1, 0])
    y_score = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    # predictions 0, 1, 0, 1 -> correct 1, 1, 0, 0
    expected = (1 / 4) * abs(1 - 0.9) + (1 / 4) * abs(1 - 0.8) + (2 / 4) * abs(0.0 - 0.575)
    out = reliability_diagram(y_true, y_score, task="binary", n_bins=5)
    assert out["ece"] == pytest.approx(expected)
    bins = out["bins"]
    assert bins["count"] == [0, 0, 2, 1, 1]
    assert bins["confidence"][2] == pytest.approx(0.575)
    assert bins["accuracy"][2:] == pytest.approx([0.0, 1.0, 1.0])
    assert np.isnan(bins["confidence"][0])
    assert bins["lower"] == [0.0, 0.2, 0.4, 0.6, 0.8]
    metrics = compute_classification_metrics(y_true, y_score, task="binary", metrics=["ece"], n_bins=5)
    assert metrics["ece"] == pytest.approx(expected)
    again = calibration_bins(y_true, y_score, n_bins=5)
    for key in bins:
        np.testing.assert_array_equal(again[key], bins[key])  # nan == nan here


def test_perfectly_calibrated_is_zero() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_score = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert reliability_diagram(y_true, y_score, task="binary")["ece"] == 0.0


def _sk_confusion(pred, target, fov=None):
    p, t = np.asarray(pred).reshape(-1) != 0, np.asarray(target).reshape(-1) != 0
    if fov is not None:
        keep = np.asarray(fov).reshape(-1) != 0
        p, t = p[keep], t[keep]
    return confusion_matrix(t, p, labels=[False, True]).ravel()


@pytest.mark.parametrize("shape", [(17, 23), (3, 9, 11), (2, 4, 6, 5)])
@pytest.mark.parametrize("with_fov", [False, True])
def test_segmentation_matches_confusion_matrix(shape, with_fov) -> None:
    rng = np.random.default_rng(sum(shape))
    target = rng.random(shape) < 0.3
    pred = np.where(rng.random(shape) < 0.8, target, ~target).astype(np.uint8)
    fov = rng.random(shape) < 0.7 if with_fov else None
    tn, fp, fn, tp = _sk_confusion(pred, target, fov)
    out = compute_segmentation_metrics(pred, target, fov)
    assert out["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert out["iou"] == pytest.approx(tp / (tp + fp + fn))
    assert out["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert out["specificity"] == pytest.approx(tn / (tn + fp))
    assert out["accuracy"] == pytest.approx((tp + tn) / (tp + tn + fp + fn))


def test_fov_excludes_outside_pixels() -> None:
    target = np.zeros((4, 4), np.uint8)
    pred = np.ones((4, 4), np.uint8)  # wrong everywhere
    fov = np.zeros((4, 4), bool)
    target[0, 0] = pred[0, 0] = 1
    fov[0, 0] = True
    with pytest.warns(UndefinedMetricWarning, match="specificity"):  # no background inside the FOV
        out = compute_segmentation_metrics(pred, target, fov)
    assert out["dice"] == 1.0 and out["accuracy"] == 1.0 and np.isnan(out["specificity"])


def test_segmentation_probability_maps_threshold_at_half() -> None:
    target = np.array([[0, 1], [1, 0]])
    probs = np.array([[0.2, 0.5], [0.7, 0.49]])
    assert compute_segmentation_metrics(probs, target)["dice"] == 1.0
    # 0/255 masks count as binary
    assert compute_segmentation_metrics(target * 255, target)["iou"] == 1.0


def test_segmentation_errors_and_undefined() -> None:
    with pytest.raises(MetricInputError, match="pred has shape"):
        compute_segmentation_metrics(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(MetricInputError, match="fov has shape"):
        compute_segmentation_metrics(np.zeros((3, 3)), np.zeros((3, 3)), np.ones((2, 2)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compute_segmentation_metrics(np.zeros((3, 3), int), np.zeros((3, 3), int))
    undefined = {str(w.message).split(":")[0] for w in caught if w.category is UndefinedMetricWarning}
    assert undefined == {"dice", "iou", "sensitivity"}
    assert np.isnan(out["sensitivity"]) and np.isnan(out["dice"]) and out["specificity"] == 1.0
