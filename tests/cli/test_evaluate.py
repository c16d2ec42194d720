"""``hfssl evaluate`` goes through the hfssl CLI: registered, runs, prints one-line errors."""

from __future__ import annotations

from hfssl.cli.main import main


def test_evaluate_help(capsys):
    try:
        main(["evaluate", "--help"])
    except SystemExit as exit_info:
        assert exit_info.code == 0
    assert "hfssl evaluate" in capsys.readouterr().out


def test_evaluate_runs_knn(tmp_path, data_dir, capsys):
    code = main(
        [
            "evaluate",
            "--checkpoint",
            "timm:resnet10t?in_chans=1",
            "--protocol",
            "knn",
            "--max-train-samples",
            "32",
            "--max-eval-samples",
            "32",
            "--n-bootstrap",
            "50",
            "--results-dir",
            str(tmp_path / "r"),
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 0
    assert "auc" in capsys.readouterr().out


def test_evaluate_bad_input_one_line(tmp_path, data_dir, capsys):
    code = main(
        [
            "evaluate",
            "--checkpoint",
            "timm:resnet10t?in_chans=1",
            "--protocol",
            "linear",
            "--label-fraction",
            "0.001",
            "--results-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hfssl evaluate: error: label fraction 0.001")
