"""The top-level ``hfssl`` command: help, version, unknown commands, config files."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from hfssl.cli.main import SUBCOMMANDS, main
from hfssl.errors import ConfigError
from hfssl.utils.args import make_parser, parse


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_unknown_command_is_one_line_error_and_nonzero(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown command" in err[0] and "fix:" in err[0]


def test_console_script_help_does_not_import_torch():
    code = (
        "import sys, hfssl_cli; sys.argv=['hfssl','--help']; rc=hfssl_cli.main(); "
        "assert 'torch' not in sys.modules, 'torch imported by --help'; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@dataclass
class _Args:
    name: str = field(metadata={"help": "a name"})
    batch_size: int = field(default=8, metadata={"help": "batch"})


def test_config_file_gives_defaults_and_flags_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: from-file\nbatch-size: 16\n")
    parser = make_parser("t", "test", [_Args])
    (args,) = parse(parser, ["--config", str(cfg), "--batch-size", "32"])
    assert args.name == "from-file" and args.batch_size == 32


def test_config_file_with_unknown_key_is_refused(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"name": "x", "bogus": 1}')
    parser = make_parser("t", "test", [_Args])
    with pytest.raises(ConfigError, match="bogus"):
        parse(parser, ["--config", str(cfg)])
