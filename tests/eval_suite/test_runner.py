"""eval_suite.runner: records per seed, resuming, feature cache, 2D/3D protocols, bad inputs, compare."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval_suite.runner import EvalConfig, compare, evaluate
from hfssl.errors import CheckpointError, ConfigError, DataError

TIMM_2D = "timm:resnet10t?in_chans=1"


def _tiny(tmp_path, **kw) -> EvalConfig:
    base = dict(
        checkpoint=TIMM_2D,
        seeds=[0],
        max_train_samples=32,
        max_eval_samples=32,
        preset="quick",
        epochs=1,
        batch_size=16,
        n_bootstrap=200,
        results_dir=str(tmp_path / "results"),
        cache_dir=str(tmp_path / "cache"),
    )
    base.update(kw)
    return EvalConfig(**base)


@pytest.fixture(scope="module")
def hfssl_3d_checkpoint(tmp_path_factory):
    from hfssl.models import HfsslConfig, HfsslModel

    folder = tmp_path_factory.mktemp("unet3d")
    config = HfsslConfig(
        backbone="unet3d_encoder", spatial_dims=3, image_size=28, backbone_kwargs={"channels": [4, 8, 16, 32]}
    )
    HfsslModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("linear")
    config = _tiny(tmp, protocol="linear", seeds=[0, 1])
    return config, evaluate(config)


def test_linear_writes_one_valid_record_per_seed(linear_run):
    from eval_suite.metrics import compute_classification_metrics
    from eval_suite.results import validate_record

    config, records = linear_run
    assert [r["seed"] for r in records] == [0, 1]
    assert len({r["record_id"] for r in records}) == 2
    for record in records:
        path = f"{config.results_dir}/{record['record_id']}.json"
        on_disk = json.loads(open(path).read())
        assert validate_record(on_disk) == []
        assert on_disk["protocol"]["name"] == "linear" and on_disk["dataset"]["name"] == "breastmnist"
        assert on_disk["dataset"]["n_train"] == 32 and sum(on_disk["dataset"]["train_class_counts"]) == 32
        outputs = on_disk["test_outputs"]
        expected = compute_classification_metrics(
            np.array(outputs["y_true"]),
            np.array(outputs["y_score"]),
            task="binary",
            train_class_counts=on_disk["dataset"]["train_class_counts"],
        )
        assert on_disk["metrics"]["balanced_accuracy"] == pytest.approx(expected["balanced_accuracy"])
        lo, hi = on_disk["ci95"]["balanced_accuracy"]
        assert lo <= on_disk["metrics"]["balanced_accuracy"] <= hi
        assert {"features_s", "train_s", "total_s"} <= set(on_disk["timings"])


def test_finished_seeds_are_loaded_not_recomputed(linear_run, monkeypatch):
    import eval_suite.protocols.linear as linear

    config, records = linear_run

    def boom(*args, **kwargs):
        raise AssertionError("a finished seed was recomputed")

    monkeypatch.setattr(linear, "run_linear", boom)
    again = evaluate(config)
    assert [r["created_at"] for r in again] == [r["created_at"] for r in records]


def test_feature_cache_is_reused(linear_run, tmp_path):
    config, records = linear_run
    from dataclasses import replace

    rerun = evaluate(replace(config, results_dir=str(tmp_path / "fresh"), seeds=[0]))
    assert rerun[0]["fit"]["features_cached"] is True
    assert rerun[0]["metrics"]["auc"] == pytest.approx(records[0]["metrics"]["auc"])


def test_knn_and_compare(linear_run, tmp_path):
    config, linear_records = linear_run
    from dataclasses import replace

    knn_records = evaluate(replace(config, protocol="knn", knn_k=5))
    assert all(r["protocol"]["params"]["k"] == 5 for r in knn_records)
    result = compare(linear_records, knn_records, "balanced_accuracy")
    expected = np.mean(
        [
            a["metrics"]["balanced_accuracy"] - b["metrics"]["balanced_accuracy"]
            for a, b in zip(linear_records, knn_records)
        ]
    )
    assert result["delta"] == pytest.approx(expected)
    assert result["n_pairs"] == 2 and 0 <= result["p_value"] <= 1
    assert len(result["class_deltas"]["delta"]) == 2


@pytest.mark.parametrize("protocol", ["finetune", "scratch"])
def test_training_protocols_2d(tmp_path, data_dir, protocol):
    (record,) = evaluate(_tiny(tmp_path, protocol=protocol))
    assert record["protocol"]["name"] == protocol
    assert record["protocol"]["params"]["epochs"] == 1
    assert record["fit"]["best_epoch"] == 1
    assert len(record["test_outputs"]["y_true"]) == 32
    if protocol == "scratch":
        assert record["checkpoint"]["random_init"] is True
        assert record["checkpoint"]["name"].startswith("scratch (")


def test_3d_checkpoint_on_adrenalmnist3d(tmp_path, data_dir, hfssl_3d_checkpoint):
    config = _tiny(tmp_path, checkpoint=hfssl_3d_checkpoint, dataset="adrenalmnist3d", protocol="finetune")
    (record,) = evaluate(config)
    assert record["dataset"]["spatial_dims"] == 3 and record["checkpoint"]["spatial_dims"] == 3
    assert np.array(record["test_outputs"]["y_score"]).shape == (32, 2)


def test_2d_checkpoint_on_3d_dataset_is_refused(tmp_path, data_dir):
    with pytest.raises(DataError, match="2D but dataset adrenalmnist3d is 3D"):
        evaluate(_tiny(tmp_path, dataset="adrenalmnist3d"))


def test_channel_counts_adapted_or_refused(tmp_path, data_dir):
    from types import SimpleNamespace

    from eval_suite.runner import _check_fit
    from hfssl.hub import load_feature_extractor

    rgb_model = load_feature_extractor("timm:resnet10t")
    grey = SimpleNamespace(spatial_dims=2, in_chans=1, name="breastmnist")
    assert _check_fit(rgb_model, grey) == "repeat"  # grey images into an RGB model: channel repeated
    # DRIVE is RGB: a 2-channel model cannot take it
    with pytest.raises(CheckpointError, match="2-channel images but drive has 3 channels"):
        evaluate(
            _tiny(tmp_path, checkpoint="timm:resnet10t?in_chans=2", dataset="drive", protocol="segmentation")
        )


def test_bad_inputs_fail_before_training(tmp_path, data_dir):
    with pytest.raises(ConfigError, match="qwk.*binary"):
        evaluate(_tiny(tmp_path, protocol="finetune", metrics=["accuracy", "qwk"]))
    with pytest.raises(ConfigError, match="malignant"):
        evaluate(_tiny(tmp_path, protocol="linear", label_fraction=0.001))
    with pytest.raises(ConfigError, match="cached features"):
        evaluate(_tiny(tmp_path, protocol="linear", augment="S3"))
    with pytest.raises(ConfigError, match="unknown protocol"):
        evaluate(_tiny(tmp_path, protocol="svm"))
    with pytest.raises(ConfigError, match="segmentation"):
        evaluate(_tiny(tmp_path, protocol="segmentation"))
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


@pytest.mark.slow
def test_scratch_resnet18_medmnist_preset_parity(tmp_path, data_dir):
    """MedMNIST v2 reports ResNet-18 (28) on BreastMNIST: test ACC 0.863, AUC 0.901 (official recipe).

    Hours on a shared CPU (100 epochs x 3 seeds); minutes on a GPU. The band allows for seed noise
    on a 156-image test set.
    """
    from hfssl.models import HfsslConfig, HfsslModel

    folder = tmp_path / "resnet18"
    HfsslModel(HfsslConfig(backbone="resnet18", in_chans=1, image_size=28)).save_pretrained(folder)
    records = evaluate(
        EvalConfig(
            checkpoint=str(folder),
            protocol="scratch",
            preset="medmnist",
            seeds=[0, 1, 2],
            results_dir=str(tmp_path / "results"),
            cache_dir=str(tmp_path / "cache"),
        )
    )
    acc = np.mean([r["metrics"]["accuracy"] for r in records])
    auc = np.mean([r["metrics"]["auc"] for r in records])
    assert acc == pytest.approx(0.863, abs=0.05)
    assert auc == pytest.approx(0.901, abs=0.05)


def test_protocol_registry_and_baseline_config():
    from dataclasses import replace

    from eval_suite.protocols import PROTOCOLS
    from eval_suite.runner import baseline_config

    assert list(PROTOCOLS) == [
        "linear",
        "knn",
        "finetune",
        "warmup",
        "frozen",
        "scratch",
        "lora",
        "segmentation",
    ]
    assert all(cls.name == name for name, cls in PROTOCOLS.items())
    assert [n for n, cls in PROTOCOLS.items() if cls.needs_features] == ["linear", "knn"]
    assert [n for n, cls in PROTOCOLS.items() if cls.random_init] == ["scratch"]
    config = EvalConfig(checkpoint="timm:resnet10t", protocol="linear", compare_to="scratch", name="mine")
    scratch = baseline_config(config)
    assert (scratch.protocol, scratch.random_init, scratch.compare_to, scratch.name) == (
        "scratch",
        False,
        None,
        None,
    )
    seg = baseline_config(replace(config, protocol="segmentation"))
    assert seg.protocol == "segmentation" and seg.random_init is True
    other = baseline_config(replace(config, compare_to="timm:resnet18"))
    assert other.checkpoint == "timm:resnet18" and other.protocol == "linear" and other.compare_to is None
