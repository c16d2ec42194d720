"""``benchmarks/lora_vs_finetune.py --summary``: rows group by (label, run), deltas pair by seed within
one start, old rows without a label count as random init, and the paired 90 % intervals decide
non-inferiority / equivalence at the margin."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "lora_vs_finetune.py"


def _load():
    spec = importlib.util.spec_from_file_location("lora_vs_finetune", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(module, run, seed, bacc, auc, label=None):
    row = {
        "run": run,
        "lr": 1e-3,
        "seed": seed,
        "spec": module.SPEC if label is None else "/ckpt/backbone",
        "params_trainable": 10,
        "params_total": 100,
        "params_trainable_percent": 10.0,
        "balanced_accuracy": bacc,
        "auc": auc,
        "train_s": 1.0,
    }
    if label is not None:
        row["label"] = label
    return row


def test_summary_groups_by_label_and_pairs_within_a_start(tmp_path):
    module = _load()
    rows = [
        _row(module, "finetune", 0, 0.50, 0.70),  # written before --label: random init
        _row(module, "lora", 0, 0.60, 0.70),
        _row(module, "finetune", 0, 0.70, 0.80, label="mae"),
        _row(module, "finetune", 1, 0.70, 0.80, label="mae"),
        _row(module, "finetune", 2, 0.70, 0.80, label="mae"),
        _row(module, "lora", 0, 0.69, 0.80, label="mae"),
        _row(module, "lora", 1, 0.70, 0.81, label="mae"),
        _row(module, "lora", 2, 0.71, 0.80, label="mae"),
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = module.summarise(path)
    lines = text.splitlines()
    assert any(line.startswith("| random | lora |") and "0.100 ± 0.000" in line for line in lines)
    mae_lora = next(line for line in lines if line.startswith("| mae | lora |"))
    assert "| 3 |" in mae_lora and "0.000 ± 0.010" in mae_lora  # paired with mae's finetune, not random's
    note = next(line for line in lines if line.startswith("- mae / lora vs finetune, 3 paired seeds"))
    assert "not worse by 0.05: yes; within ±0.05: yes" in note
    # one paired seed: no interval
    assert not any(line.startswith("- random / lora") for line in lines)
