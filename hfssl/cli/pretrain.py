"""``hfssl pretrain ...``: pretrain a backbone with a pretext task (one process; for several GPUs or
nodes use ``accelerate launch -m hfssl.pretrain`` with the same options)."""

from __future__ import annotations


def run(argv: list[str]) -> int:
    from hfssl.training.pretrain import run as run_pretraining

    return run_pretraining(argv, prog="hfssl pretrain")
