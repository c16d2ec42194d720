"""eval_suite.cli: help with examples, a run printing the table, config files, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from eval_suite.cli import format_comparison, main
from hfssl.errors import ConfigError

ARGS = [
    "--checkpoint",
    "timm:resnet10t?in_chans=1",
    "--protocol",
    "knn",
    "--knn-k",
    "5",
    "--max-train-samples",
    "32",
    "--max-eval-samples",
    "32",
    "--n-bootstrap",
    "100",
]


def test_help_lists_options_and_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--compare-to" in out and "--imbalance-ratio" in out


def test_run_prints_table_and_writes_records(tmp_path, data_dir, capsys):
    code = main(
        [*ARGS, "--seeds", "0", "1", "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "balanced_accuracy" in out and "±" in out and "per-class recall" in out
    assert len(list((tmp_path / "r").glob("*.json"))) == 2


def test_config_file_and_flags(tmp_path, data_dir, capsys):
    config = tmp_path / "eval.json"
    config.write_text(
        json.dumps(
            {
                "checkpoint": "timm:resnet10t?in_chans=1",
                "protocol": "knn",
                "knn_k": 3,
                "max_train_samples": 32,
                "max_eval_samples": 32,
                "n_bootstrap": 50,
            }
        )
    )
    assert (
        main(
            [
                "--config",
                str(config),
                "--results-dir",
                str(tmp_path / "r"),
                "--cache-dir",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "r").glob("*.json")]
    assert record["protocol"]["params"]["k"] == 3


def test_bad_protocol_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown protocol"):
        main(["--checkpoint", "timm:resnet10t", "--protocol", "svm", "--results-dir", str(tmp_path)])


def test_module_entry_prints_one_line_error(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "eval_suite",
            "--checkpoint",
            "timm:resnet10t",
            "--protocol",
            "linear",
            "--augment",
            "S3",
            "--results-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "(fix:" in lines[0]


def test_format_comparison_names_classes():
    text = format_comparison(
        {
            "metric": "balanced_accuracy",
            "delta": 0.05,
            "ci95": [0.01, 0.09],
            "p_value": 0.02,
            "n_pairs": 3,
            "class_deltas": {"delta": [0.1, -0.02], "p_value": [0.01, 0.6]},
        },
        ["malignant", "benign"],
    )
    assert "+0.050" in text and "malignant: +0.100" in text and "p = 0.020" in text
