"""Argument parsing shared by the ``hfssl`` subcommands and ``python -m eval_suite``.

Arguments are dataclasses parsed with transformers' ``HfArgumentParser`` (the ecosystem's
convention: ``--per_device_train_batch_size`` and ``--per-device-train-batch-size`` both work).
Every parser also accepts ``--config FILE.yaml|FILE.json``: the file gives defaults and
command-line flags override them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfssl.errors import ConfigError


def make_parser(
    prog: str,
    description: str,
    dataclass_types: Sequence[type] = (),
    examples: Sequence[str] = (),
):
    """An ``HfArgumentParser`` for ``dataclass_types`` with examples in its ``--help``."""
    from transformers import HfArgumentParser

    epilog = None
    if examples:
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    parser = HfArgumentParser(
        list(dataclass_types),
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    def one_line_error(message: str) -> None:
        # argparse prints the whole usage before the message; a user error is one line with a hint
        import sys

        text = " ".join(message.split())
        print(f"{prog}: error: {text} (fix: see '{prog} --help')", file=sys.stderr)
        raise SystemExit(2)

    parser.error = one_line_error  # type: ignore[method-assign]
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML or JSON file with default values for these options; flags given here override it",
    )
    return parser


def load_config_file(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"config file {path} does not exist", "pass the path of an existing .yaml or .json file"
        )
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # parse errors of either format
        raise ConfigError(f"config file {path} cannot be parsed: {exc}", "fix its syntax") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of option names to values", "write key: value pairs"
        )
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def parse(parser, argv: Sequence[str]) -> tuple[Any, ...]:
    """Parse ``argv`` into the parser's dataclasses (+ a namespace of any extra arguments)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(list(argv))
    if known.config:
        defaults = load_config_file(known.config)
        dests = {a.dest for a in parser._actions}
        unknown = sorted(set(defaults) - dests)
        if unknown:
            raise ConfigError(
                f"config file {known.config} has unknown option(s): {', '.join(unknown)}",
                f"see '{parser.prog} --help' for valid names",
            )
        parser.set_defaults(**defaults)
        # Required options given by the file are no longer required on the command line.
        for action in parser._actions:
            if action.dest in defaults:
                action.required = False
    outputs = list(parser.parse_args_into_dataclasses(args=list(argv), return_remaining_strings=True))
    remaining = outputs.pop()  # HfArgumentParser raises a bare ValueError on these; a user error instead
    if remaining:
        raise ConfigError(
            f"unrecognised argument(s): {' '.join(remaining)}",
            f"see '{parser.prog} --help' for valid options",
        )
    # HfArgumentParser appends a namespace of non-dataclass arguments; --config is consumed here.
    if outputs and isinstance(outputs[-1], argparse.Namespace):
        extra = vars(outputs.pop())
        extra.pop("config", None)
        if extra:
            outputs.append(argparse.Namespace(**extra))
    return tuple(outputs)
