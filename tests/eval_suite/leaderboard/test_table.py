"""Ranking, ties, summaries and the comparison with scratch (eval_suite.leaderboard.table)."""

from __future__ import annotations

import numpy as np
import pytest

from eval_suite.leaderboard.collect import collect
from eval_suite.leaderboard.table import build_leaderboard
from hfssl.errors import ConfigError
from tests.eval_suite.leaderboard._factory import make_record, standard_records, write_results


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return standard_records()


@pytest.fixture
def results_dir(tmp_path, records):
    return write_results(tmp_path / "results", records)


def _by_name(group):
    return {e.checkpoint: e for e in group.entries}


def test_groups_rank_and_summaries_follow_the_records(results_dir, records):
    from eval_suite.stats import summarise

    lb = build_leaderboard(collect([results_dir]), n_resamples=200)
    # scratch is the finetune recipe from random init: one finetune group with all three.
    assert len(lb.groups) == 1
    group = lb.groups[0]
    assert group.setting.protocol == "finetune" and group.metric == "balanced_accuracy"
    entries = _by_name(group)
    assert set(entries) == {"ssl-strong", "ssl-weak", "scratch (resnet18)"}
    for name, e in entries.items():
        values = [r["metrics"]["balanced_accuracy"] for r in records if r["checkpoint"]["name"] == name]
        assert e.n_seeds == 3
        assert e.mean == pytest.approx(np.mean(values), abs=1e-12)
        assert e.std == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        expected_ci = summarise(values, (0.0, 1.0))["ci95"]
        assert (e.ci_low, e.ci_high) == pytest.approx(tuple(expected_ci))
        assert e.ci_kind == "seeds"
    # best first
    assert group.entries[0].checkpoint == "ssl-strong" and group.entries[0].rank == 1
    assert not group.entries[0].tied
    assert entries["scratch (resnet18)"].is_baseline


def test_delta_vs_scratch_is_the_paired_bootstrap(results_dir, records):
    from eval_suite.stats import paired_bootstrap, significance_marker

    lb = build_leaderboard(collect([results_dir]), n_resamples=200, seed=0)
    entries = _by_name(lb.groups[0])
    strong = [r for r in records if r["checkpoint"]["name"] == "ssl-strong"]
    scratch = [r for r in records if r["checkpoint"]["name"] == "scratch (resnet18)"]
    expected = paired_bootstrap(strong, scratch, "balanced_accuracy", n_resamples=200, seed=0)
    e = entries["ssl-strong"]
    assert e.baseline == "scratch (resnet18)"
    assert e.delta == pytest.approx(expected["delta"])
    assert e.p_value == pytest.approx(expected["p_value"])
    assert (e.delta_ci_low, e.delta_ci_high) == pytest.approx(tuple(expected["ci95"]))
    assert e.marker == significance_marker(expected["p_value"]) and e.marker  # clearly better -> marked
    assert entries["scratch (resnet18)"].delta is None


def test_overlapping_cis_are_ties_not_a_ranking(tmp_path):
    # Two checkpoints of identical skill (different names -> different noise) overlap; a strong one does not.
    recs = []
    for seed in (0, 1, 2):
        recs.append(make_record("twin-a", skill=1.0, seed=seed))
        recs.append(make_record("twin-b", skill=1.02, seed=seed))
        recs.append(make_record("best", skill=4.0, seed=seed))
    lb = build_leaderboard(collect([write_results(tmp_path, recs)]), n_resamples=100)
    entries = _by_name(lb.groups[0])
    assert entries["best"].rank == 1 and not entries["best"].tied
    assert entries["twin-a"].rank == entries["twin-b"].rank
    assert entries["twin-a"].tied and entries["twin-b"].tied
    assert entries["twin-a"].rank_label.startswith("=")
    # linear probe without a scratch baseline: no delta.
    assert all(e.delta is None for e in entries.values())


def test_single_seed_uses_the_bootstrap_ci_of_the_record(tmp_path):
    rec = make_record("one-seed", skill=1.5)
    lb = build_leaderboard(collect([write_results(tmp_path, [rec])]))
    e = lb.groups[0].entries[0]
    assert e.n_seeds == 1 and e.std is None and e.ci_kind == "bootstrap"
    assert (e.ci_low, e.ci_high) == pytest.approx(tuple(rec["ci95"]["balanced_accuracy"]))


def test_settings_are_grouped_by_dataset_protocol_regime_policy(tmp_path):
    recs = [
        make_record("a", skill=1.0, protocol="linear"),
        make_record("a", skill=1.0, protocol="knn"),
        make_record("a", skill=1.0, label_fraction=0.1),
        make_record("a", skill=1.0, imbalance_ratio="10"),
        make_record(
            "a", skill=1.0, policy={"sampler": "balanced", "loss": "ce", "augment": "none", "mixup": 0.0}
        ),
        make_record("a", skill=1.0, image_size=64),
    ]
    lb = build_leaderboard(collect([write_results(tmp_path, recs)]))
    assert len(lb.groups) == 6
    assert all(len(g.entries) == 1 for g in lb.groups)


def test_metric_choice_and_lower_is_better(tmp_path, records):
    lb = build_leaderboard(collect([write_results(tmp_path, records)]), metric="ece", n_resamples=50)
    group = lb.groups[0]
    assert group.metric == "ece" and not group.higher_is_better
    means = [e.mean for e in group.entries]
    assert means == sorted(means)  # lower ECE ranks first
    with pytest.raises(ConfigError, match="no collected result has the metric"):
        build_leaderboard(collect([tmp_path]), metric="not_a_metric")


def test_warmup_compares_with_the_scratch_of_the_same_regime(tmp_path):
    recs = []
    for seed in (0, 1):
        recs.append(make_record("ssl", skill=2.0, seed=seed, protocol="warmup"))
        recs.append(
            make_record("scratch (resnet18)", skill=0.5, seed=seed, protocol="scratch", random_init=True)
        )
    lb = build_leaderboard(collect([write_results(tmp_path, recs)]), n_resamples=100)
    warmup = next(g for g in lb.groups if g.setting.protocol == "warmup")
    assert warmup.entries[0].baseline == "scratch (resnet18)"
    assert warmup.entries[0].delta is not None and warmup.entries[0].delta > 0


def test_unpaired_baseline_falls_back_to_the_difference_of_means_with_a_note(tmp_path):
    recs = [
        make_record("ssl", skill=2.0, seed=0, protocol="finetune"),
        make_record("scratch (resnet18)", skill=0.5, seed=7, protocol="scratch", random_init=True),
    ]
    lb = build_leaderboard(collect([write_results(tmp_path, recs)]), n_resamples=50)
    e = _by_name(lb.groups[0])["ssl"]
    base = _by_name(lb.groups[0])["scratch (resnet18)"]
    assert e.delta == pytest.approx(e.mean - base.mean)
    assert e.p_value is None and e.marker == "" and "paired bootstrap unavailable" in e.note


def test_ordinal_settings_rank_by_qwk_or_balanced_accuracy_and_split_by_head():
    from eval_suite.leaderboard.collect import setting_from_record
    from eval_suite.leaderboard.table import _default_metric, build_leaderboard
    from hfssl.errors import ConfigError

    record = {
        "dataset": {"name": "graded:breastmnist", "task": "ordinal", "image_size": 28},
        "protocol": {"name": "scratch", "params": {"ordinal_head": "cumulative"}},
        "regime": {"label_fraction": 1.0, "imbalance_ratio": "natural"},
        "policy": {"sampler": "none", "loss": "ce", "augment": "none", "mixup": 0.0},
    }
    setting = setting_from_record(record)
    assert setting.protocol == "finetune (cumulative head)"
    assert _default_metric(setting) == "qwk"
    assert _default_metric(setting, "balanced_accuracy") == "balanced_accuracy"
    record["dataset"]["task"] = "binary"
    del record["protocol"]["params"]["ordinal_head"]
    plain = setting_from_record(record)
    assert plain.protocol == "finetune" and _default_metric(plain) == "balanced_accuracy"
    with pytest.raises(ConfigError, match="ordinal ranking metric"):
        build_leaderboard(None, ordinal_metric="mae")
