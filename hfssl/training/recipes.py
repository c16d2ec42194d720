"""Recipes as arguments: a recipe file (``scripts/recipes/*.yaml``) + overrides -> the argument classes.

The same files ``hfssl pretrain --config FILE`` reads; used by the zoo to build each entry with its
recipe and budget. Overrides win over the file, exactly as command-line flags do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hfssl.errors import ConfigError


def arguments_from_recipe(
    recipe: str | os.PathLike, overrides: Mapping[str, Any] | None = None
) -> tuple[Any, Any, Any]:
    """``(ModelArguments, DataArguments, PretrainingArguments)`` of ``recipe`` with ``overrides`` applied.

    Unknown option names in the file or the overrides are a :class:`ConfigError` naming them."""
    from transformers import HfArgumentParser

    from hfssl.training.arguments import ARGUMENT_CLASSES
    from hfssl.utils.args import load_config_file

    values = load_config_file(str(recipe))
    values.update({str(k).replace("-", "_"): v for k, v in (overrides or {}).items()})
    parser = HfArgumentParser(list(ARGUMENT_CLASSES))
    known = {a.dest for a in parser._actions}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"recipe {recipe} (with overrides) has unknown option(s): {', '.join(unknown)}",
            "see 'hfssl pretrain --help' for valid names",
        )
    # values as parser defaults, exactly as `--config FILE` does: argparse then converts strings
    # with each option's type (YAML reads 1e-06 as a string), and required options are satisfied
    parser.set_defaults(**values)
    for action in parser._actions:
        if action.dest in values:
            action.required = False
    model_args, data_args, train_args = parser.parse_args_into_dataclasses(args=[])
    return model_args, data_args, train_args
