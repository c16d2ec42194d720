"""``hfssl evaluate``: finetune or probe any checkpoint on (imbalanced) medical data.

A thin entry into ``eval_suite.cli.main`` (the evaluation suite owns protocols, regimes and records);
``hfssl evaluate --help`` lists the options with examples.
"""

from __future__ import annotations


def run(argv: list[str]) -> int:
    from eval_suite.cli import main

    return main(argv)
