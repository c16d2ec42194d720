"""End-to-end modes: frozen keeps the encoder (and its batch-norm statistics), finetune changes it."""

from __future__ import annotations

import pytest
import torch

from eval_suite.protocols.finetune import PRESETS, Recipe, run_finetune
from hfssl.errors import ConfigError

POLICY = {"sampler": "none", "loss": "ce", "augment": "none", "mixup": 0.0}


@pytest.fixture(scope="module")
def splits(data_dir):
    from hfssl.data import load_source

    dsd = load_source("breastmnist", data_dir=data_dir)
    return dsd["train"].select(range(24)), dsd["validation"].select(range(16)), dsd["test"].select(range(16))


def _extractor():
    from hfssl.hub import load_feature_extractor

    torch.manual_seed(0)
    return load_feature_extractor("timm:resnet10t?in_chans=1")


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize(
    "mode, policy",
    [
        ("frozen", POLICY),
        ("finetune", {"sampler": "balanced", "loss": "focal", "augment": "S3", "mixup": 0.2}),
    ],
)
def test_frozen_keeps_encoder_finetune_changes_it(splits, mode, policy):
    train, val, test = splits
    extractor = _extractor()
    before = _state(extractor)
    recipe = Recipe.from_preset("quick", epochs=1, batch_size=8)
    y_true, y_score, info = run_finetune(
        extractor,
        train,
        val,
        test,
        mode=mode,
        task="binary",
        num_classes=2,
        train_class_counts=[8, 16],
        recipe=recipe,
        policy=policy,
        seed=0,
    )
    after = _state(extractor)
    unchanged = all(torch.equal(before[k], after[k]) for k in before)
    assert unchanged is (mode == "frozen")
    assert y_score.shape == (16, 2) and torch.allclose(
        torch.tensor(y_score).sum(1), torch.ones(16, dtype=torch.float64)
    )
    assert info["epochs_run"] == 1 and len(y_true) == 16


def test_warmup_freezes_then_unfreezes(splits):
    train, val, test = splits
    extractor = _extractor()
    snapshots = []
    recipe = Recipe.from_preset("quick", epochs=2, batch_size=8, warmup_epochs=1)
    run_finetune(
        extractor,
        train,
        val,
        test,
        mode="warmup",
        task="binary",
        num_classes=2,
        train_class_counts=[8, 16],
        recipe=recipe,
        policy=POLICY,
        seed=0,
        on_epoch=lambda entry, model, best: snapshots.append(_state(extractor)),
    )
    start = _state(_extractor())
    assert all(torch.equal(start[k], snapshots[0][k]) for k in start)  # epoch 1: frozen
    assert not all(torch.equal(snapshots[0][k], snapshots[1][k]) for k in start)  # epoch 2: trained


def test_medmnist_preset_is_the_official_recipe():
    recipe = Recipe.from_preset("medmnist")
    assert (recipe.epochs, recipe.lr, recipe.batch_size, recipe.milestones, recipe.gamma) == (
        100,
        1e-3,
        128,
        [0.5, 0.75],
        0.1,
    )
    assert recipe.select_metric == "auc" and PRESETS["quick"]["epochs"] < 10
    with pytest.raises(ConfigError, match="preset"):
        Recipe.from_preset("imagenet")
    with pytest.raises(ConfigError, match="epochs"):
        Recipe.from_preset("quick", epochs=0)


def test_early_stopping(splits):
    train, val, test = splits
    recipe = Recipe.from_preset("quick", epochs=6, batch_size=8, lr=1e-12, patience=1)
    _, _, info = run_finetune(
        _extractor(),
        train,
        val,
        test,
        mode="frozen",
        task="binary",
        num_classes=2,
        train_class_counts=[8, 16],
        recipe=recipe,
        policy=POLICY,
        seed=0,
    )
    # with a vanishing learning rate no later epoch beats the first: stop after patience + 1 epochs
    assert info["best_epoch"] == 1 and info["epochs_run"] == 2


def test_volume_memory_format_keeps_predictions(data_dir, tmp_path):
    """3D models run channels-last-3d (2x faster on CPU); the predictions must not change."""
    from eval_suite.protocols import to_memory_format, volume_memory_format
    from eval_suite.protocols.finetune import _classifier, predict
    from hfssl.data import load_source, make_dataloader
    from hfssl.hub import load_feature_extractor
    from hfssl.models import HfsslConfig, HfsslModel

    assert volume_memory_format(2) is None and volume_memory_format(3) is torch.channels_last_3d
    torch.manual_seed(0)
    config = HfsslConfig(
        backbone="unet3d_encoder", spatial_dims=3, image_size=28, backbone_kwargs={"channels": [4, 8, 16, 32]}
    )
    HfsslModel(config).save_pretrained(tmp_path / "unet3d")
    extractor = load_feature_extractor(str(tmp_path / "unet3d"))
    model = _classifier(extractor, 2, "linear")
    loader = make_dataloader(
        load_source("adrenalmnist3d", data_dir=data_dir)["test"].select(range(12)), batch_size=6
    )
    y_plain, s_plain = predict(model, loader, "binary", "cpu")
    fmt = volume_memory_format(3)
    y_cl, s_cl = predict(to_memory_format(model, fmt), loader, "binary", "cpu", fmt)
    assert (y_plain == y_cl).all()
    torch.testing.assert_close(torch.from_numpy(s_cl), torch.from_numpy(s_plain), atol=1e-5, rtol=1e-4)
