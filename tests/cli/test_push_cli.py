"""``hfssl push`` from the command line, against the loopback Hub."""

from __future__ import annotations

import pytest

from hfssl import HfsslConfig, HfsslModel
from hfssl.cli.main import main
from tests.hub.hub_server import LoopbackHub


@pytest.fixture
def hub(tmp_path):
    with LoopbackHub() as server, server.patch_client(cache_dir=tmp_path / "hf-cache"):
        yield server


def test_push_cli_round_trip(hub, tmp_path, capsys):
    folder = tmp_path / "backbone"
    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(folder)
    argv = ["push", str(folder), "--repo-id", "org/cli", "--commit-message", "first"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "pushed 3 file(s) to org/cli@main" in out and "/org/cli/commit/" in out
    assert main(argv) == 0
    assert "is up to date" in capsys.readouterr().out
    assert hub.commit_count("org/cli") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repo-id", "bad repo"], "malformed repo id"),
        (["--repo-id", "org/x", "--dataset-ids", "breastmnist"], "is not NAME=ORG/DATASET"),
    ],
)
def test_push_cli_errors_are_one_line(hub, tmp_path, capsys, args, message):
    folder = tmp_path / "backbone"
    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(folder)
    assert main(["push", str(folder), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (after transformers' save progress bar)
    assert err.startswith("hfssl push: error:") and message in err and "(fix:" in err and "\n" not in err


def test_push_cli_not_a_checkpoint(hub, tmp_path, capsys):
    assert main(["push", str(tmp_path), "--repo-id", "org/x"]) == 2
    assert "is not a checkpoint" in capsys.readouterr().err


def test_push_help_lists_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["push", "--help"])
    assert exit_info.value.code == 0
    assert "hfssl push runs/simclr/backbone --repo-id" in capsys.readouterr().out
