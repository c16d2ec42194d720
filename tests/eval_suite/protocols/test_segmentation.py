"""Segmentation protocol: sliding-window inference and a tiny DRIVE run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval_suite.protocols.segmentation import sliding_window_predict


class _PixelModel(torch.nn.Module):
    """Per-pixel logits from the input alone: any window tiling must give the full-image result."""

    def forward(self, x):
        return (x[:, :1] * 8 - 4) * (x[:, 1:2] + 0.5)


@pytest.mark.parametrize("patch, overlap", [(16, 0.0), (16, 0.5), (24, 0.25), (64, 0.5)])
def test_sliding_window_equals_full_image(patch, overlap):
    image = torch.rand(3, 37, 45, generator=torch.Generator().manual_seed(0))
    full = torch.sigmoid(_PixelModel()(image[None])[0, 0]).numpy()
    tiled = sliding_window_predict(_PixelModel(), image, patch=min(patch, 37), overlap=overlap, batch_size=5)
    np.testing.assert_allclose(tiled, full, atol=1e-6)


def test_drive_segmentation_tiny(tmp_path, data_dir):
    from eval_suite.runner import EvalConfig, evaluate

    config = EvalConfig(
        checkpoint="timm:resnet10t",
        dataset="drive",
        protocol="segmentation",
        preset="quick",
        seeds=[0],
        max_train_samples=2,
        max_eval_samples=1,
        patch_size=64,
        patches_per_image=2,
        batch_size=4,
        sw_overlap=0.0,
        decoder_channels=[16, 8, 4],
        skip_connections=False,
        n_bootstrap=50,
        results_dir=str(tmp_path),
    )
    (record,) = evaluate(config)
    assert record["dataset"]["task"] == "segmentation" and record["dataset"]["n_train"] == 2
    assert set(record["metrics"]) == {"dice", "iou", "sensitivity", "specificity", "accuracy"}
    assert record["protocol"]["params"]["skip_connections"] is False
    per_image = record["test_outputs"]["per_image"]
    assert len(per_image["dice"]) == 1
    # one test image: the pooled Dice is that image's Dice
    assert record["metrics"]["dice"] == pytest.approx(per_image["dice"][0])
    # the prediction-vs-truth picture of the one test image sits beside the record, for the leaderboard
    overlays = sorted((tmp_path / "overlays").glob("*.png"))
    assert [p.name for p in overlays] == [f"{record['record_id']}_0.png"]
    assert overlays[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "test_examples" not in record["fit"]
