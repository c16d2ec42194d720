"""eval_suite.robustness + --corruption end to end: mCE against a hand computation, per-class recall,
records with the corruption field (and schema-1 upgrade), only the test split corrupted, the
leaderboard's robustness section."""

from __future__ import annotations

import json
import math

import pytest

from eval_suite.results import load_records, make_record, record_key, validate_record, write_record
from eval_suite.robustness import corruption_errors, format_markdown, summarise
from eval_suite.runner import EvalConfig, evaluate
from hfssl.errors import ConfigError


def _record(name: str, *, seed: int = 0, corruption=None, ba: float, recall=(0.5, 0.5), random_init=False):
    return make_record(
        checkpoint={
            "spec": f"/ck/{name}",
            "name": name,
            "content_hash": f"hash-{name}",
            "random_init": random_init,
        },
        dataset={
            "name": "breastmnist",
            "image_size": 28,
            "task": "binary",
            "train_split": "train",
            "eval_split": "test",
            "class_names": ["malignant", "benign"],
        },
        protocol={"name": "linear", "params": {"C_grid": [1.0]}},
        regime={"label_fraction": 1.0, "imbalance_ratio": "natural"},
        policy={"sampler": "none", "loss": "ce", "augment": "none", "mixup": 0.0},
        seed=seed,
        corruption=corruption,
        metrics={"balanced_accuracy": ba, "per_class": {"recall": list(recall)}},
    )


def _set(name: str, clean: float, table: dict[str, list[float]], random_init=False, seed=0):
    out = [_record(name, ba=clean, seed=seed, random_init=random_init)]
    for c, values in table.items():
        for s, v in enumerate(values, 1):
            corr = {"name": c, "severity": s, "seed": 0}
            out.append(
                _record(
                    name, ba=v, seed=seed, corruption=corr, recall=(v - 0.2, v + 0.2), random_init=random_init
                )
            )
    return out


def test_mce_matches_hand_computation():
    model = {"noise": [0.8, 0.7, 0.6, 0.5, 0.4], "blur": [0.9, 0.9, 0.8, 0.8, 0.7]}
    base = {"noise": [0.7, 0.6, 0.5, 0.5, 0.5], "blur": [0.8, 0.7, 0.7, 0.6, 0.6]}
    records = _set("ssl", 0.85, model) + _set("scratch", 0.75, base, random_init=True)
    entries = {e.checkpoint: e for e in summarise(records)}
    ssl = entries["ssl"]
    # hand: CE_noise = (0.2+0.3+0.4+0.5+0.6) / (0.3+0.4+0.5+0.5+0.5) = 2.0 / 2.2
    #       CE_blur  = (0.1+0.1+0.2+0.2+0.3) / (0.2+0.3+0.3+0.4+0.4) = 0.9 / 1.6
    ce_noise, ce_blur = 2.0 / 2.2, 0.9 / 1.6
    assert ssl.baseline == "scratch"
    assert ssl.ce["noise"] == pytest.approx(ce_noise) and ssl.ce["blur"] == pytest.approx(ce_blur)
    assert ssl.mce == pytest.approx((ce_noise + ce_blur) / 2)
    # relative: sum_s (E_s - E_clean): model noise 2.0 - 5*0.15 = 1.25, baseline 2.2 - 5*0.25 = 0.95
    rel_noise, rel_blur = (2.0 - 0.75) / (2.2 - 1.25), (0.9 - 0.75) / (1.6 - 1.25)
    assert ssl.relative_mce == pytest.approx((rel_noise + rel_blur) / 2)
    assert ssl.clean == pytest.approx(0.85)
    assert ssl.per_corruption()["noise"] == pytest.approx(0.6)
    assert ssl.mean_corrupted == pytest.approx((3.0 + 4.1) / 10)
    assert ssl.severity_curve()[1] == pytest.approx(0.85) and ssl.severity_curve()[0] == pytest.approx(0.85)
    # per-class recall under corruption: class 0 got v - 0.2, class 1 v + 0.2 (mean over corruptions)
    rec = ssl.recall_by_severity()
    assert rec[5] == pytest.approx([0.55 - 0.2, 0.55 + 0.2]) and rec[0] == pytest.approx([0.5, 0.5])
    assert entries["scratch"].mce is None  # the baseline has no baseline
    ce, mce, _ = corruption_errors({"a": {1: 0.5}}, {"a": {1: 0.75}})
    assert ce == {"a": pytest.approx(2.0)} and mce == pytest.approx(2.0)
    text = format_markdown(list(entries.values()))
    assert "| ssl | 0.850 |" in text and f"{(ce_noise + ce_blur) / 2:.3f}" in text and "malignant" in text


def test_seeds_are_averaged_and_named_baseline():
    records = _set("ssl", 0.8, {"noise": [0.6] * 5}, seed=0) + _set("ssl", 0.6, {"noise": [0.4] * 5}, seed=1)
    records += _set("other", 0.7, {"noise": [0.5] * 5})
    entries = {e.checkpoint: e for e in summarise(records, baseline="other")}
    assert entries["ssl"].clean == pytest.approx(0.7) and entries["ssl"].seeds == [0, 1]
    assert entries["ssl"].mce == pytest.approx(0.5 / 0.5)
    with pytest.raises(ConfigError, match="baseline 'nope' has no corrupted records"):
        summarise(records, baseline="nope")


def test_records_round_trip_and_schema_1_upgrade(tmp_path):
    clean = _record("ssl", ba=0.8)
    corrupted = _record("ssl", ba=0.6, corruption={"name": "pixelate", "severity": 3, "seed": 0})
    assert clean["corruption"] is None and corrupted["corruption"]["severity"] == 3
    assert clean["record_id"] != corrupted["record_id"]
    write_record(corrupted, tmp_path)
    # a schema-1 file (no corruption field) keeps its id and loads as schema 2
    old = {k: v for k, v in clean.items() if k != "corruption"}
    old["schema_version"] = 1
    (tmp_path / "old.json").write_text(json.dumps(old))
    records, problems = load_records(tmp_path)
    assert problems == []
    by_id = {r["record_id"]: r for r in records}
    assert by_id[clean["record_id"]]["corruption"] is None
    assert by_id[clean["record_id"]]["schema_version"] == 2
    assert by_id[corrupted["record_id"]]["corruption"] == {"name": "pixelate", "severity": 3, "seed": 0}
    ids = {k: clean[k] for k in ("checkpoint", "dataset", "protocol", "regime", "policy", "seed")}
    assert record_key(**ids) == clean["record_id"]  # clean ids are the schema-1 ids
    bad = dict(corrupted, corruption={"name": "pixelate", "severity": 6, "seed": 0})
    assert any("severity must be an integer 1-5" in p for p in validate_record(bad))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    from hfssl import HfsslConfig, HfsslModel

    folder = tmp_path_factory.mktemp("ckpt")
    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def corrupted_run(tmp_path_factory, data_dir, tiny_checkpoint):
    tmp = tmp_path_factory.mktemp("robust")
    base = dict(
        checkpoint=tiny_checkpoint,
        protocol="linear",
        seeds=[0],
        max_train_samples=32,
        max_eval_samples=24,
        n_bootstrap=20,
        cache_dir=str(tmp / "cache"),
    )
    clean = evaluate(EvalConfig(**base, results_dir=str(tmp / "clean")))
    config = EvalConfig(**base, results_dir=str(tmp / "results"), corruption="speckle_noise:5,pixelate:2")
    return tmp, config, clean, evaluate(config)


def test_corruption_scores_the_test_split_only(corrupted_run, monkeypatch):
    import hfssl.data.corruptions as corruptions

    tmp, config, clean, records = corrupted_run
    assert len(records) == 3
    plain = [r for r in records if r["corruption"] is None]
    assert [r["record_id"] for r in plain] == [clean[0]["record_id"]]
    # training and validation stayed clean: the same probe (C) and the same clean test metrics
    assert plain[0]["fit"]["C"] == clean[0]["fit"]["C"]
    assert plain[0]["metrics"]["balanced_accuracy"] == pytest.approx(clean[0]["metrics"]["balanced_accuracy"])
    corrupted = {r["corruption"]["name"]: r for r in records if r["corruption"]}
    assert corrupted["speckle_noise"]["corruption"] == {"name": "speckle_noise", "severity": 5, "seed": 0}
    assert corrupted["pixelate"]["fit"] == {"clean_record_id": plain[0]["record_id"]}
    assert corrupted["speckle_noise"]["test_outputs"]["y_true"] == plain[0]["test_outputs"]["y_true"]
    assert corrupted["speckle_noise"]["test_outputs"]["y_score"] != plain[0]["test_outputs"]["y_score"]
    for r in records:
        on_disk = json.loads((tmp / "results" / f"{r['record_id']}.json").read_text())
        assert validate_record(on_disk) == [] and on_disk["corruption"] == r["corruption"]
    # a rerun loads every record and corrupts nothing
    monkeypatch.setattr(corruptions, "corrupt_dataset", lambda *a, **k: pytest.fail("recomputed"))
    again = evaluate(config)
    assert sorted(r["record_id"] for r in again) == sorted(r["record_id"] for r in records)


def test_leaderboard_robustness_section(corrupted_run):
    from eval_suite.leaderboard import make_leaderboard

    tmp, config, _, records = corrupted_run
    report = make_leaderboard([config.results_dir], tmp / "lb", n_resamples=50)
    md = report.markdown.read_text()
    assert "## Robustness under corruption" in md and "speckle noise" in md
    ranked = [e for g in report.leaderboard.groups for e in g.entries]
    assert len(ranked) == 1 and ranked[0].n_seeds == 1  # corrupted records are not ranked as seeds
    assert '<section id="robustness">' in report.html.read_text()
    plots = [p for p in report.plots if p.kind == "robustness"]
    assert len(plots) == 1 and plots[0].path.is_file()


def test_corrupt_augmentation_in_finetune(tmp_path, data_dir, tiny_checkpoint):
    records = evaluate(
        EvalConfig(
            checkpoint=tiny_checkpoint,
            protocol="finetune",
            preset="quick",
            epochs=1,
            batch_size=16,
            seeds=[0],
            max_train_samples=32,
            max_eval_samples=16,
            n_bootstrap=20,
            augment="corrupt:1",
            corruption="jpeg_compression:5",
            results_dir=str(tmp_path / "r"),
        )
    )
    assert [r["corruption"] for r in records] == [
        None,
        {"name": "jpeg_compression", "severity": 5, "seed": 0},
    ]
    assert records[0]["policy"]["augment"] == "corrupt:1"
    assert all(math.isfinite(r["metrics"]["balanced_accuracy"]) for r in records)


@pytest.mark.slow  # ~10 s: DRIVE images are 565 x 584 px
def test_drive_segmentation_under_fundus_corruptions(tmp_path, data_dir):
    records = evaluate(
        EvalConfig(
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
            n_bootstrap=20,
            augment="corrupt:0.5",
            corruption="defocus_blur:5,gaussian_noise:5",
            results_dir=str(tmp_path),
        )
    )
    assert [r["corruption"] and r["corruption"]["name"] for r in records] == [
        None,
        "defocus_blur",
        "gaussian_noise",
    ]
    dice = [r["metrics"]["dice"] for r in records]
    assert all(0 <= d <= 1 for d in dice) and len(set(dice)) > 1
    assert all(len(r["test_outputs"]["per_image"]["dice"]) == 1 for r in records)
