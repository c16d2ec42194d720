"""``hfssl demo`` at toy scale: a leaderboard with SSL vs scratch deltas, and a re-run reuses everything."""

from __future__ import annotations

from hfssl.cli.main import main

TINY = [
    "--backbone",
    "resnet10t",
    "--pretrain-steps",
    "2",
    "--epochs",
    "1",
    "--seeds",
    "0",
    "1",
    "--max-train-samples",
    "48",
    "--no-plots",
]


def test_demo_prints_leaderboard_and_resumes(tmp_path, monkeypatch, capsys, data_dir):
    monkeypatch.setenv("HFSSL_EVAL_CACHE", str(tmp_path / "features"))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *TINY]) == 0
    text = capsys.readouterr().out
    for name in ("rot", "simclr", "scratch", "linear", "finetune"):
        assert name in text
    assert "demo: 6 steps computed, 0 reused" in text
    for f in ("leaderboard.md", "leaderboard.csv", "leaderboard.html"):
        assert (out / "leaderboard" / f).is_file()
    assert len(list((out / "results").glob("*.json"))) == 12  # 6 evaluations x 2 seeds
    assert main(["demo", "--out", str(out), *TINY]) == 0
    assert "demo: 0 steps computed, 6 reused" in capsys.readouterr().out


def test_demo_help_has_examples(capsys):
    try:
        main(["demo", "--help"])
    except SystemExit:
        pass
    assert "examples:" in capsys.readouterr().out
