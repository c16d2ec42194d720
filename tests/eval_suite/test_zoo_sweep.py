"""The investigation sweep: variant parsing (scripts/zoo_sweep.py) and its MODEL_ZOO.md table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from eval_suite.zoo_table import sweep_section
from hfssl.errors import ConfigError
from hfssl.zoo import load_manifest

REPO = Path(__file__).resolve().parents[2]


def _sweep_module():
    spec = importlib.util.spec_from_file_location("zoo_sweep", REPO / "scripts" / "zoo_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variants_parse_into_recipe_and_method_overrides():
    sweep = _sweep_module()
    assert sweep.parse_variant("asbuilt:") == ("asbuilt", {})
    label, over = sweep.parse_variant("m99:method_kwargs.momentum=0.99,learning_rate=3e-4,max_steps=60")
    assert label == "m99"
    assert over == {"method_kwargs": {"momentum": 0.99}, "learning_rate": 3e-4, "max_steps": 60}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        sweep.parse_variant("bad:max_steps")
    with pytest.raises(ConfigError, match="no label"):
        sweep.parse_variant(":max_steps=3")


def test_a_variant_changes_only_what_it_names():
    sweep = _sweep_module()
    entry = load_manifest().get("pcrl-resnet18-breastmnist28")
    varied = sweep.variant_entry(entry, {"method_kwargs": {"momentum": 0.99}, "max_steps": 90})
    over = varied.overrides("cpu")
    assert over["max_steps"] == 90 and over["method_kwargs"]["momentum"] == 0.99
    assert {k: v for k, v in over.items() if k not in ("max_steps", "method_kwargs")} == {
        k: v for k, v in entry.overrides("cpu").items() if k not in ("max_steps", "method_kwargs")
    }
    assert entry.overrides("cpu")["max_steps"] == 30  # the entry itself is unchanged


def test_sweep_table_shows_every_variant_with_its_delta(tmp_path: Path):
    def row(label, over, bal, delta):
        probe = {"balanced_accuracy": bal, "auc": 0.8, "delta_balanced_accuracy": delta, "delta_auc": None}
        return {
            "variant": label,
            "overrides": over,
            "global_step": 30,
            "pretrain_wall_seconds": 90.0,
            "hardware": "CPU: test",
            "pretext": {"loss": 1.5, "pretext/accuracy": 0.25},
            "probes": {"linear": probe, "knn": probe},
        }

    path = tmp_path / "x.jsonl"
    rows = [
        row("asbuilt", {}, 0.6, {"delta": 0.01, "ci95": [-0.05, 0.07], "p_value": 0.7}),
        row(
            "m99",
            {"method_kwargs": {"momentum": 0.99}},
            0.7,
            {"delta": 0.1, "ci95": [0.02, 0.18], "p_value": 0.01},
        ),
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    lines = sweep_section(path)
    table = [ln for ln in lines if ln.startswith("| ")]
    assert len(table) == 3  # header + one row per variant
    assert "accuracy" in table[0] and "Δ linear" in table[0]
    assert "as built" in table[1] and "+0.010 [-0.050, +0.070]" in table[1] and "✓" not in table[1]
    assert 'method_kwargs={"momentum": 0.99}' in table[2] and "+0.100 [+0.020, +0.180] ✓" in table[2]
    assert sweep_section(tmp_path / "missing.jsonl") == []
    assert "linear ACC" not in table[0]  # sweeps that did not record it get no empty column
    rows[1]["probes"]["linear"] = {**rows[1]["probes"]["linear"], "accuracy": 0.8125}
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    table = [ln for ln in sweep_section(path) if ln.startswith("| ")]
    assert "linear ACC" in table[0] and "| 0.812 |" in table[2] and "| – |" in table[1]


def test_as_built_reruns_are_found_and_judged(tmp_path: Path):
    from eval_suite.zoo_table import _as_built_reruns

    def line(variant, overrides, low):
        delta = {"delta": low + 0.05, "ci95": [low, low + 0.1], "p_value": 0.01}
        return json.dumps(
            {
                "variant": variant,
                "overrides": overrides,
                "probes": {"linear": {"delta_balanced_accuracy": delta}},
            }
        )

    (tmp_path / "a.jsonl").write_text(
        line("m0.9", {"max_steps": 3}, 0.02) + "\n" + line("asbuilt", {}, -0.01) + "\n"
    )
    (tmp_path / "b.jsonl").write_text(line("asbuilt", {}, 0.03) + "\n")
    (tmp_path / "c.jsonl").write_text(line("m0.9", {"max_steps": 3}, 0.03) + "\n")  # no unchanged re-run
    assert _as_built_reruns(["a", "b", "c", "missing"], tmp_path) == [("a", False), ("b", True)]
