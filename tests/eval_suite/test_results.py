"""Result records: ids, atomic store, validation, and the model-card round trip."""

from __future__ import annotations

import copy
import json
import multiprocessing
import sys

import numpy as np
import pytest
from huggingface_hub import ModelCard, ModelCardData

from eval_suite.results import (
    SCHEMA_VERSION,
    aggregate_records,
    compute_record_id,
    eval_results_to_rows,
    find_record,
    identity_of,
    load_records,
    make_record,
    record_key,
    to_eval_results,
    validate_record,
    write_record,
)
from hfssl.errors import ConfigError


def _parts(**over) -> dict:
    parts = {
        "checkpoint": {
            "spec": "hfssl/simclr-resnet18",
            "name": "simclr-r18",
            "source": "hfssl",
            "content_hash": "ab" * 32,
            "random_init": False,
            "embed_dim": 512,
        },
        "dataset": {
            "name": "breastmnist",
            "image_size": 28,
            "spatial_dims": 2,
            "task": "binary",
            "num_classes": 2,
            "class_names": ["malignant", "normal/benign"],
            "train_split": "train",
            "eval_split": "test",
            "n_train": 546,
            "n_eval": 4,
            "train_class_counts": [147, 399],
        },
        "protocol": {"name": "linear", "params": {"C": 1.0, "max_iter": 100}},
        "regime": {"label_fraction": 1.0, "imbalance_ratio": "natural"},
        "policy": {"sampler": "none", "loss": "ce", "augment": "none", "mixup": 0.0},
        "seed": 0,
    }
    for key, value in over.items():
        if isinstance(value, dict) and key in parts:
            parts[key] = {**parts[key], **value}
        else:
            parts[key] = value
    return parts


def _record(balanced: float = 0.8, **over) -> dict:
    return make_record(
        **_parts(**over),
        metrics={
            "accuracy": np.float64(0.85),
            "balanced_accuracy": balanced,
            "auc": float("nan"),
            "per_class": {"recall": np.array([0.7, 0.9]), "support": [1, 3]},
        },
        ci95={"balanced_accuracy": (balanced - 0.1, balanced + 0.1)},
        test_outputs={"y_true": np.array([0, 1, 1, 1]), "y_score": np.full((4, 2), 0.5)},
        timings={"train_s": 1.5, "total_s": 2.0},
    )


def test_make_record_fills_schema_fields() -> None:
    rec = _record()
    assert rec["schema_version"] == SCHEMA_VERSION == 2
    assert rec["corruption"] is None
    assert rec["record_id"] == record_key(**_parts())
    assert rec["created_at"].endswith("+00:00")
    assert {"hfssl", "eval_suite", "torch", "transformers", "timm", "scikit-learn", "datasets"} <= set(
        rec["versions"]
    )
    assert rec["metrics"]["auc"] is None  # nan is stored as null
    assert rec["metrics"]["per_class"]["recall"] == [0.7, 0.9]
    assert rec["ci95"]["balanced_accuracy"] == [pytest.approx(0.7), pytest.approx(0.9)]
    assert validate_record(rec) == []
    json.dumps(rec, allow_nan=False)  # strict JSON


def test_record_id_stable_and_sensitive_to_identifying_fields() -> None:
    base = record_key(**_parts())
    # stable: key order, 1 vs 1.0, descriptive fields
    reordered = {
        k: dict(reversed(list(v.items()))) if isinstance(v, dict) else v for k, v in _parts().items()
    }
    assert record_key(**reordered) == base
    assert record_key(**_parts(regime={"label_fraction": 1})) == base
    assert record_key(**_parts(checkpoint={"name": "other display name"}, dataset={"n_eval": 5})) == base
    assert compute_record_id(identity_of(**_parts())) == base
    changes = [
        {"checkpoint": {"spec": "hfssl/byol-resnet18"}},
        {"checkpoint": {"content_hash": "cd" * 32}},
        {"checkpoint": {"random_init": True}},
        {"dataset": {"name": "pneumoniamnist"}},
        {"dataset": {"image_size": 64}},
        {"dataset": {"train_split": "train+val"}},
        {"dataset": {"eval_split": "val"}},
        {"protocol": {"name": "knn"}},
        {"protocol": {"params": {"C": 0.1, "max_iter": 100}}},
        {"regime": {"label_fraction": 0.1}},
        {"regime": {"imbalance_ratio": 10}},
        {"policy": {"sampler": "balanced"}},
        {"policy": {"loss": "focal"}},
        {"policy": {"augment": "S2"}},
        {"policy": {"mixup": 0.2}},
        {"seed": 1},
    ]
    ids = {record_key(**_parts(**change)) for change in changes}
    assert base not in ids and len(ids) == len(changes)


def test_write_load_round_trip(tmp_path) -> None:
    rec = _record()
    path = write_record(rec, tmp_path / "results")
    assert path.name == f"{rec['record_id']}.json"
    records, messages = load_records(tmp_path / "results")
    assert messages == [] and records == [rec]
    assert find_record(tmp_path / "results", rec["record_id"]) == rec
    assert find_record(tmp_path / "results", "0" * 64) is None
    # the same file given twice (folder + file) is returned once
    records, _ = load_records(tmp_path / "results", path)
    assert len(records) == 1


def _write_one(args: tuple[str, int]) -> str:
    results_dir, seed = args
    return str(write_record(_record(seed=seed % 10, balanced=0.5 + seed / 100), results_dir))


def test_concurrent_writers_never_lose_or_corrupt(tmp_path) -> None:
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    jobs = [(str(tmp_path), i) for i in range(20)]  # 10 distinct ids, each written twice at once
    with multiprocessing.get_context(method).Pool(4) as pool:
        paths = pool.map(_write_one, jobs)
    records, messages = load_records(tmp_path)
    assert messages == []
    assert len({p for p in paths}) == 10 and len(records) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        {p.split("/")[-1] for p in paths}
    )  # no temp files


def test_malformed_files_become_messages(tmp_path) -> None:
    good = _record()
    write_record(good, tmp_path)
    (tmp_path / "truncated.json").write_text(json.dumps(good)[:100])
    (tmp_path / "list.json").write_text("[1, 2]")
    old = dict(good, schema_version=0)
    (tmp_path / "old.json").write_text(json.dumps(old))
    edited = copy.deepcopy(good)
    edited["seed"] = 7  # identity changed, id not
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "edited.json").write_text(json.dumps(edited))
    missing = dict(good)
    del missing["metrics"]
    (tmp_path / "missing.json").write_text(json.dumps(missing))
    records, messages = load_records(tmp_path, tmp_path / "nope")
    assert records == [good]
    text = "\n".join(messages)
    assert len(messages) == 6
    assert "truncated.json: not valid JSON" in text
    assert "list.json: not a valid result record: a record must be a JSON object" in text
    assert "schema_version is 0, expected 2" in text
    assert "record_id does not match" in text
    assert "missing field 'metrics'" in text
    assert "nope: no such file or folder" in text
    assert find_record(tmp_path, "truncated") is None  # corrupt: re-run, not crash


def test_write_record_refuses_invalid(tmp_path) -> None:
    bad = dict(_record(), seed="zero")
    with pytest.raises(ConfigError, match="seed must be an integer"):
        write_record(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="dataset.task"):
        _record(dataset={"task": "regression"})


def _card_records() -> list[dict]:
    recs = []
    for seed, value in enumerate([0.8, 0.84, 0.79]):
        recs.append(_record(balanced=value, seed=seed))
        recs.append(_record(balanced=value - 0.1, seed=seed, regime={"label_fraction": 0.1}))
        recs.append(_record(balanced=value - 0.05, seed=seed, protocol={"name": "knn", "params": {"k": 20}}))
    seg = make_record(
        **_parts(
            dataset={"name": "drive", "task": "segmentation", "image_size": 64, "train_class_counts": None},
            protocol={"name": "segmentation", "params": {}},
        ),
        metrics={"dice": 0.71, "iou": 0.55},
    )
    return [*recs, seg]


def test_model_card_round_trip() -> None:
    records = _card_records()
    results = to_eval_results(records)
    card = ModelCard.from_template(
        ModelCardData(eval_results=results, model_name="simclr-r18", license="apache-2.0"),
        template_str="---\n{{ card_data }}\n---\n# simclr-r18\n",
    )
    parsed = ModelCard(str(card))
    assert parsed.data.model_name == "simclr-r18"
    rows = eval_results_to_rows(parsed.data.eval_results, model_name=parsed.data.model_name)
    direct = eval_results_to_rows(results, model_name="simclr-r18")
    assert rows == direct
    groups = {
        (g["dataset"]["name"], g["protocol"]["name"], g["regime"]["label_fraction"]): g
        for g in aggregate_records(records)
    }
    assert len({(r["dataset"], r["protocol"], r["label_fraction"]) for r in rows}) == len(groups) == 4
    for row in rows:
        g = groups[(row["dataset"], row["protocol"], row["label_fraction"])]
        summary = g["metrics"][row["metric"]]
        assert row["value"] == pytest.approx(summary["mean"], abs=1e-6)
        assert row["n_seeds"] == summary["n"] and row["seeds"] == g["seeds"]
        assert row["policy"] == g["policy"] and row["protocol_params"] == g["protocol"]["params"]
        assert row["image_size"] == g["dataset"]["image_size"] and row["task"] == g["dataset"]["task"]
        assert row["model_name"] == "simclr-r18" and row["random_init"] is False
        if summary["n"] > 1:
            assert row["ci_kind"] == "seeds" and row["ci95"] == pytest.approx(summary["ci95"], abs=1e-6)
    linear = {r["metric"]: r for r in rows if r["protocol"] == "linear" and r["label_fraction"] == 1.0}
    assert linear["balanced_accuracy"]["value"] == pytest.approx(np.mean([0.8, 0.84, 0.79]))
    assert linear["balanced_accuracy"]["std"] == pytest.approx(np.std([0.8, 0.84, 0.79], ddof=1), abs=1e-6)
    assert linear["balanced_accuracy"]["task_type"] == "image-classification"
    assert "auc" not in linear  # undefined in every seed: not reported
    seg = {r["metric"]: r for r in rows if r["dataset"] == "drive"}
    assert seg["dice"]["task_type"] == "image-segmentation" and seg["dice"]["value"] == 0.71
    assert seg["dice"]["ci95"] is None and seg["dice"]["n_seeds"] == 1  # one seed, no bootstrap CI stored


def test_single_seed_reports_its_bootstrap_ci() -> None:
    rows = eval_results_to_rows(to_eval_results([_record()]))
    (row,) = [r for r in rows if r["metric"] == "balanced_accuracy"]
    assert row["ci_kind"] == "bootstrap" and row["ci95"] == pytest.approx([0.7, 0.9])


def test_eval_results_need_one_checkpoint() -> None:
    records = [
        _record(),
        _record(checkpoint={"spec": "timm/resnet18", "name": "r18", "content_hash": "ef" * 32}),
    ]
    with pytest.raises(ConfigError, match="2 different checkpoints"):
        to_eval_results(records)
    picked = to_eval_results(records, model_name="r18")
    assert picked and all(r.dataset_args["n_seeds"] == 1 for r in picked)
