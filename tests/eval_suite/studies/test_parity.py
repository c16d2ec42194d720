"""Baseline parity: the settings it accepts, the table it writes, and a tiny run through the grid."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval_suite.stats import summarise
from eval_suite.studies.parity import OFFICIAL, main, parity_section, parse_setting, run_parity
from hfssl.errors import ConfigError


def test_parse_setting_accepts_published_rows_only():
    assert parse_setting("breastmnist:28") == ("breastmnist", 28)
    assert parse_setting("AdrenalMNIST3D:28") == ("adrenalmnist3d", 28)
    for bad in ("breastmnist:32", "pathmnist:28", "breastmnist"):
        with pytest.raises(ConfigError, match="no published parity row"):
            parse_setting(bad)


def test_bad_setting_exits_with_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--settings", "breastmnist:32"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "breastmnist:32" in err and "breastmnist:28" in err and len(err.splitlines()) == 1


def _record(acc: float, auc: float) -> dict:
    return {"metrics": {"accuracy": acc, "auc": auc}}


def test_parity_section_reports_mean_ci_and_where_the_published_number_lies():
    accs, aucs = [0.85, 0.86, 0.87], [0.86, 0.88, 0.90]
    text = parity_section({("breastmnist", 28): [_record(a, u) for a, u in zip(accs, aucs)]})
    s_acc, s_auc = summarise(accs, (0.0, 1.0)), summarise(aucs, (0.0, 1.0))
    row = next(line for line in text.splitlines() if line.startswith("| breastmnist 28 px"))
    assert f"{s_acc['mean']:.3f} [{s_acc['ci95'][0]:.3f}, {s_acc['ci95'][1]:.3f}] (n=3)" in row
    assert f"{s_auc['mean']:.3f} [{s_auc['ci95'][0]:.3f}, {s_auc['ci95'][1]:.3f}] (n=3)" in row
    # published ACC 0.863 lies inside [0.835, 0.885]; published AUC 0.901 is inside [0.830, 0.930]
    lo, hi = s_acc["ci95"]
    assert lo <= OFFICIAL[("breastmnist", 28)][0]["accuracy"] <= hi
    assert "accuracy: published inside our CI" in row
    # settings that were not selected are left out, not reported as "not run"
    assert "adrenalmnist3d" not in text and "64 px" not in text
    far = parity_section({("breastmnist", 28): [_record(0.70, 0.70), _record(0.71, 0.71)]})
    assert "accuracy: published above our CI" in far


def test_tiny_parity_run_writes_parity_md_and_resumes(sandbox):
    out = sandbox["out"]
    kwargs = dict(
        seeds=[0, 1],
        epochs=1,
        preset="quick",
        settings=[("breastmnist", 28)],
        max_train_samples=64,
        data_dir=str(sandbox["data"]),
        device="cpu",
    )
    path = run_parity(out, **kwargs)
    text = path.read_text()
    records = [json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))]
    assert len(records) == 2 and {r["seed"] for r in records} == {0, 1}
    assert all(r["protocol"]["name"] == "scratch" and r["dataset"]["n_train"] == 64 for r in records)
    mean_acc = np.mean([r["metrics"]["accuracy"] for r in records])
    assert f"{mean_acc:.3f} [" in text and "ResNet-18 (28)" in text
    stamp = {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert run_parity(out, **kwargs).read_text() == text
    assert {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")} == stamp
