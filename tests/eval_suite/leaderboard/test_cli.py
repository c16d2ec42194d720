"""``hfssl leaderboard`` end to end, on records written by real (short) evaluations."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from hfssl.cli.main import main


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, data_dir):
    """Three checkpoints evaluated for real with the linear probe on BreastMNIST 28 px, two seeds:
    two tiny hfssl checkpoints (different weights) and the random-init baseline of the architecture."""
    import torch

    from eval_suite.runner import EvalConfig, evaluate
    from hfssl.models import HfsslConfig, HfsslModel

    tmp = tmp_path_factory.mktemp("lbcli")
    results = tmp / "results"
    common = dict(
        dataset="breastmnist",
        image_size=28,
        protocol="linear",
        seeds=[0, 1],
        results_dir=str(results),
        data_dir=str(data_dir),
        cache_dir=str(tmp / "cache"),
        max_train_samples=96,
        device="cpu",
    )
    records = []
    for i, name in enumerate(("ssl-a", "ssl-b")):
        torch.manual_seed(100 + i)
        folder = tmp / name
        HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(folder)
        records += evaluate(EvalConfig(checkpoint=str(folder), name=name, **common))
    records += evaluate(EvalConfig(checkpoint=str(tmp / "ssl-a"), random_init=True, **common))
    return results, records


def test_cli_writes_all_outputs_that_agree_with_the_records(evaluated, tmp_path, capsys):
    results, records = evaluated
    (results / "partial.json").write_text(json.dumps({"schema_version": 1}), encoding="utf-8")
    out = tmp_path / "lb"
    rc = main(["leaderboard", str(results), "--out", str(out), "--n-resamples", "200"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html"):
        assert (out / name).stat().st_size > 0
    pngs = sorted((out / "plots").glob("*.png"))
    assert any(p.name.startswith("recall_") for p in pngs) and any(
        p.name.startswith("reliability_") for p in pngs
    )
    # the malformed file is counted and named, not silently dropped
    assert "skipped 1 malformed or partial inputs" in captured.err and "partial.json" in captured.err

    by_name: dict[str, list[float]] = {}
    for r in records:
        by_name.setdefault(r["checkpoint"]["name"], []).append(r["metrics"]["balanced_accuracy"])
    assert len(by_name) == 3
    rows = list(csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text(encoding="utf-8"))))
    assert {r["checkpoint"] for r in rows} == set(by_name)
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    html = (out / "leaderboard.html").read_text(encoding="utf-8")
    for row in rows:
        mean = float(np.mean(by_name[row["checkpoint"]]))
        assert float(row["mean"]) == pytest.approx(mean, abs=1e-12)
        assert f"{mean:.4f}" in md
        assert f'data-key="mean" class="num" data-value="{float(row["mean"])!r}"' in html
        assert row["n_seeds"] == "2"
        if row["is_baseline"] == "True":
            assert row["checkpoint"].startswith("scratch (") and row["delta"] == ""
        else:
            assert row["baseline"].startswith("scratch (") and row["delta"] != "" and row["p_value"] != ""
    assert "leaderboard:" in captured.out and "| rank |" in captured.out


def test_cli_refuses_missing_inputs(capsys):
    assert main(["leaderboard", "--out", "x"]) == 2
    assert "no inputs given" in capsys.readouterr().err


def test_cli_with_nothing_usable_fails_clearly(tmp_path, capsys):
    bad = tmp_path / "results"
    bad.mkdir()
    (bad / "x.json").write_text("{", encoding="utf-8")
    assert main(["leaderboard", str(bad), "--out", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err
    assert "no usable evaluation results" in err and "x.json" in err
    assert not (tmp_path / "lb" / "leaderboard.md").exists()


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "--help"])
    assert exc.value.code == 0
    assert "hfssl leaderboard results/ --out leaderboard/" in capsys.readouterr().out
