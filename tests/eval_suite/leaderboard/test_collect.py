"""Collecting records and model cards (eval_suite.leaderboard.collect)."""

from __future__ import annotations

import json

import pytest

from eval_suite.leaderboard.collect import collect
from eval_suite.leaderboard.table import build_leaderboard
from hfssl.errors import DataError
from tests.eval_suite.leaderboard._factory import make_record, standard_records, write_results


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return standard_records(seeds=(0, 1))


def _write_bad_files(folder):
    (folder / "truncated.json").write_text(
        '{"schema_version": 1, "record_id": "abc", "metr', encoding="utf-8"
    )
    (folder / "partial.json").write_text(
        json.dumps({"schema_version": 1, "record_id": "def"}), encoding="utf-8"
    )
    (folder / "future.json").write_text(
        json.dumps({"schema_version": 99, "record_id": "ghi"}), encoding="utf-8"
    )


def test_records_become_run_sets_and_bad_files_are_reported(tmp_path, records):
    folder = write_results(tmp_path / "results", records)
    _write_bad_files(folder)
    col = collect([folder])
    assert col.n_records == len(records)
    assert len(col.runsets) == 3
    assert sorted(len(rs.records) for rs in col.runsets) == [2, 2, 2]
    # each bad file is reported by name, none crashes the collection
    assert len(col.problems) == 3
    for name in ("truncated.json", "partial.json", "future.json"):
        assert any(name in p for p in col.problems), (name, col.problems)


def test_the_same_record_given_twice_counts_once(tmp_path, records):
    folder = write_results(tmp_path / "results", records)
    one_file = next(folder.glob("*.json"))
    col = collect([folder, one_file])
    assert col.n_records == len(records)


def test_unknown_input_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="neither an existing file/folder nor a Hub repo id"):
        collect([str(tmp_path / "missing" / "deeper" / "x")])
    empty = tmp_path / "empty"
    empty.mkdir()
    col = collect([empty])
    assert col.runsets == [] and any("no result records" in p for p in col.problems)


def _card_folder(tmp_path, records, name):
    from huggingface_hub import ModelCard, ModelCardData

    from eval_suite.results import to_eval_results

    mine = [r for r in records if r["checkpoint"]["name"] == name]
    data = ModelCardData(model_name=name, eval_results=to_eval_results(mine, model_name=name))
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n# {name}\n")
    folder = tmp_path / "cards" / name.replace(" ", "_").replace("(", "").replace(")", "")
    folder.mkdir(parents=True)
    card.save(folder / "README.md")
    return folder


def _comparable(lb):
    """What must agree between records and cards: (structure, numbers). Cards keep 6 decimals."""
    out = []
    for g in lb.groups:
        for e in g.entries:
            key = (repr(e.setting), e.metric, e.checkpoint, e.rank, e.tied, e.is_baseline, e.n_seeds)
            nums = (e.mean, e.ci_low, e.ci_high, e.delta)
            out.append((key, nums))
    return sorted(out, key=lambda kv: kv[0])


def _assert_same(a, b):
    assert [k for k, _ in a] == [k for k, _ in b]
    for (_, na), (_, nb) in zip(a, b):
        assert [x is None for x in na] == [x is None for x in nb]
        assert [x for x in na if x is not None] == pytest.approx([x for x in nb if x is not None], abs=2e-6)


def test_model_cards_give_the_same_leaderboard_as_records(tmp_path, records):
    folder = write_results(tmp_path / "results", records)
    from_records = build_leaderboard(collect([folder]), n_resamples=100)
    names = sorted({r["checkpoint"]["name"] for r in records})
    card_dirs = [_card_folder(tmp_path, records, n) for n in names]
    col = collect(card_dirs)
    assert col.n_records == 0 and col.n_card_rows > 0 and not col.problems
    from_cards = build_leaderboard(col, n_resamples=100)
    _assert_same(_comparable(from_cards), _comparable(from_records))
    assert any(e.delta is not None for g in from_cards.groups for e in g.entries)


def test_cards_from_a_loopback_hub_match_local_cards(tmp_path, records):
    from tests.hub.hub_server import LoopbackHub

    names = sorted({r["checkpoint"]["name"] for r in records})
    card_dirs = [_card_folder(tmp_path, records, n) for n in names]
    local = build_leaderboard(collect(card_dirs))
    with LoopbackHub() as hub, hub.patch_client(cache_dir=tmp_path / "hf-cache"):
        repo_ids = []
        for i, d in enumerate(card_dirs):
            repo_id = f"org/model-{i}"
            hub.put_files(repo_id, {"README.md": (d / "README.md").read_bytes()})
            repo_ids.append(repo_id)
        col = collect(repo_ids + ["org/does-not-exist"])
    assert len(col.problems) == 1 and "org/does-not-exist" in col.problems[0]
    remote = build_leaderboard(col)
    _assert_same(_comparable(remote), _comparable(local))
    assert all(e.source.startswith("hub:org/model-") for g in remote.groups for e in g.entries)


def test_a_card_without_results_is_reported(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# no results\n", encoding="utf-8")
    col = collect([folder])
    assert col.runsets == [] and len(col.problems) == 1 and "no model-index" in col.problems[0]


def test_records_and_a_checkpoint_folder_mix(tmp_path, records):
    folder = write_results(tmp_path / "results", [make_record("solo", skill=1.0)])
    col = collect([folder])
    assert [rs.checkpoint for rs in col.runsets] == ["solo"]


def test_non_square_image_sizes_group_and_label_without_crashing():
    # DRIVE records store the image size as [height, width]
    from eval_suite.leaderboard.collect import setting_from_record

    base = {"dataset": {"name": "drive", "task": "segmentation"}, "protocol": {"name": "segmentation"}}
    wide = setting_from_record({**base, "dataset": {**base["dataset"], "image_size": [584, 565]}})
    square = setting_from_record({**base, "dataset": {**base["dataset"], "image_size": [64, 64]}})
    assert wide.image_size == "584x565" and wide.dataset_label == "drive (584x565px)"
    assert square.image_size == 64
    assert wide.kind == "segmentation"
