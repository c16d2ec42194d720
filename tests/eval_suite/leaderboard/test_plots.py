"""Leaderboard plots (eval_suite.leaderboard.plots)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from eval_suite.leaderboard.collect import collect
from eval_suite.leaderboard.plots import (
    make_plots,
    overlay_rgb,
    plot_per_class_recall,
    plot_segmentation_overlay,
    reliability_bins,
)
from eval_suite.leaderboard.table import build_leaderboard
from tests.eval_suite.leaderboard._factory import make_record, write_results


def _png_ok(path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_segmentation_overlay_on_drive(data_dir, tmp_path):
    from hfssl.data import load_source

    ds = load_source("drive", data_dir=data_dir)["test"].with_format("numpy")
    item = ds[0]
    image, target, fov = item["image"], item["mask"].astype(bool), item["fov"].astype(bool)
    # A crude "prediction": dark pixels of the green channel inside the FOV (vessels are dark there).
    green = image[..., 1].astype(float)
    pred = (green < np.percentile(green[fov], 15)) & fov
    rgb = overlay_rgb(image, target, pred, fov)
    assert rgb.shape == (*target.shape, 3) and rgb.dtype == np.uint8
    inside = fov
    tp, fp, fn = pred & target & inside, pred & ~target & inside, ~pred & target & inside
    assert tp.any() and fp.any() and fn.any()
    assert (rgb[tp] == [255, 255, 255]).all()
    assert (rgb[fp] == np.round(np.array([0.95, 0.15, 0.15]) * 255)).all()
    assert (rgb[fn] == np.round(np.array([0.2, 0.45, 1.0]) * 255)).all()
    # outside the field of view is darkened
    assert rgb[~fov].mean() < rgb[fov & ~pred & ~target].mean()
    out = plot_segmentation_overlay(image, target, pred, fov, tmp_path / "overlay.png", title="DRIVE 01")
    w, h = _png_ok(out)
    assert w > 300 and h > 100


def test_overlay_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="must have one shape"):
        overlay_rgb(np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 9)))


def test_reliability_bins_match_a_hand_computation():
    y_true = np.array([0, 1, 1, 0])
    y_score = np.array([[0.95, 0.05], [0.28, 0.72], [0.63, 0.37], [0.55, 0.45]])
    b = reliability_bins(y_true, y_score, n_bins=10)
    # top-label confidences 0.95 (correct), 0.72 (correct), 0.63 (wrong), 0.55 (correct); none on a bin edge
    assert b["count"][9] == 1 and b["accuracy"][9] == 1.0 and b["confidence"][9] == pytest.approx(0.95)
    assert b["count"][7] == 1 and b["accuracy"][7] == 1.0
    assert b["count"][6] == 1 and b["accuracy"][6] == 0.0
    assert b["count"][5] == 1 and b["accuracy"][5] == 1.0
    assert b["count"].sum() == 4 and b["confidence"][6] == pytest.approx(0.63)
    assert np.isnan(b["accuracy"][0])  # empty bin


def test_per_class_recall_checks_lengths(tmp_path):
    with pytest.raises(ValueError, match="2 recalls for 3 classes"):
        plot_per_class_recall({"a": [0.1, 0.2]}, ["x", "y", "z"], tmp_path / "r.png")


def test_make_plots_writes_recall_reliability_and_curves(tmp_path):
    recs = []
    for name, skill, random_init in (("ssl", 2.0, False), ("scratch (resnet18)", 0.8, True)):
        proto = "scratch" if random_init else "finetune"
        for ratio, counts in (("natural", [147, 399]), ("10", [40, 399]), ("50", [8, 399])):
            recs.append(
                make_record(
                    name,
                    skill=skill - 0.01 * len(ratio),
                    protocol=proto,
                    random_init=random_init,
                    imbalance_ratio=ratio,
                    train_counts=counts,
                )
            )
        recs.append(
            make_record(name, skill=skill - 0.5, protocol=proto, random_init=random_init, label_fraction=0.1)
        )
    lb = build_leaderboard(collect([write_results(tmp_path / "results", recs)]), n_resamples=50)
    plots = make_plots(lb, tmp_path / "out")
    kinds = [p.kind for p in plots]
    assert kinds.count("per_class_recall") == len(lb.groups) == 4
    assert kinds.count("reliability") == 4
    assert kinds.count("metric_vs_imbalance_ratio") == 1
    assert kinds.count("metric_vs_label_fraction") == 1
    for p in plots:
        _png_ok(p.path)
        assert p.path.parent == tmp_path / "out" / "plots"


def test_overlays_beside_records_are_copied_once_per_entry(tmp_path):
    """Evaluations write overlays/<record_id>_<i>.png; the leaderboard shows the first seed's only."""
    recs = [make_record("ssl", skill=2.0, seed=s) for s in (2, 0, 1)]
    results = write_results(tmp_path / "results", recs)
    rng = np.random.default_rng(0)
    for r in recs:
        image, target = rng.random((16, 16)), rng.random((16, 16)) > 0.5
        plot_segmentation_overlay(
            image, target, ~target, None, results / "overlays" / f"{r['record_id']}_0.png"
        )
    lb = build_leaderboard(collect([results]), n_resamples=50)
    overlays = [p for p in make_plots(lb, tmp_path / "out") if p.kind == "segmentation_overlay"]
    seed0 = next(r for r in recs if r["seed"] == 0)
    assert len(overlays) == 1 and overlays[0].path.name.endswith(f"{seed0['record_id']}_0.png")
    assert "seed 0" in overlays[0].title
    _png_ok(overlays[0].path)


def test_confusion_matrices_are_summed_over_seeds_and_plotted(tmp_path):
    from eval_suite.leaderboard.plots import _summed_confusion, plot_confusion_matrices

    recs = [make_record("ssl", skill=1.5, seed=s) for s in (0, 1)]
    recs[0]["metrics"]["confusion_matrix"] = {"0": [30, 12], "1": [20, 94]}
    recs[1]["metrics"]["confusion_matrix"] = {"0": [28, 14], "1": [10, 104]}
    assert _summed_confusion(recs).tolist() == [[58, 26], [30, 198]]
    lb = build_leaderboard(collect([write_results(tmp_path / "results", recs)]), n_resamples=50)
    plots = [p for p in make_plots(lb, tmp_path / "out") if p.kind == "confusion_matrix"]
    assert len(plots) == 1
    _png_ok(plots[0].path)
    with pytest.raises(ValueError, match="shape"):
        plot_confusion_matrices({"a": np.ones((3, 3))}, ["x", "y"], tmp_path / "bad.png")
