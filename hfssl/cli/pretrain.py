"""``hfssl pretrain ...``, ``python -m hfssl.pretrain ...`` and ``accelerate launch -m hfssl.pretrain ...``.

The command line of the pretraining engine: argv and ``--config FILE`` are parsed into the
engine's argument classes (:mod:`hfssl.training.arguments`), the run is
:func:`hfssl.training.pretrain_backbone`, and user errors become one-line messages with an exit
code (:func:`main`; under ``hfssl`` the dispatcher in :mod:`hfssl.cli.main` does that). One
process here; for several GPUs or nodes use ``accelerate launch -m hfssl.pretrain`` with the same
options.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from hfssl.training.arguments import DataArguments, ModelArguments, PretrainingArguments
    from hfssl.training.callbacks import TrainerCallback

DESCRIPTION = (
    "Pretrain a backbone with a self-supervised pretext task on unlabelled medical images (Accelerate: one "
    "process, multi-GPU, multi-node). Writes checkpoints, metrics.jsonl, TensorBoard logs, and at the end "
    "OUTPUT_DIR/backbone (HfsslModel) and OUTPUT_DIR/pretext_model."
)

EXAMPLES = (
    "hfssl pretrain --method rot --dataset breastmnist --output-dir runs/rot --max-steps 200",
    "accelerate launch -m hfssl.pretrain --config scripts/recipes/simclr_breastmnist.yaml --output-dir runs/simclr",
    "accelerate launch --multi_gpu --num_processes 4 -m hfssl.pretrain --config scripts/recipes/byol_breastmnist.yaml "
    "--output-dir runs/byol --sync-batchnorm",
    "hfssl pretrain --config scripts/recipes/simclr_breastmnist.yaml --output-dir runs/simclr --resume-from latest",
    "hfssl pretrain --config scripts/recipes/simclr_breastmnist.yaml --dataset imagefolder:scans/ --output-dir "
    "runs/simclr-more --init-from runs/simclr",
    "hfssl pretrain --method rot:0.5+simclr --dataset breastmnist --output-dir runs/multi --method-kwargs "
    "'{\"simclr.temperature\": 0.2}'",
)


def build_parser(prog: str = "hfssl pretrain"):
    from hfssl.training.arguments import ARGUMENT_CLASSES
    from hfssl.utils.args import make_parser

    return make_parser(prog, DESCRIPTION, ARGUMENT_CLASSES, EXAMPLES)


def parse_args(
    argv: Sequence[str], prog: str = "hfssl pretrain"
) -> tuple[ModelArguments, DataArguments, PretrainingArguments]:
    """Parse command-line (and ``--config FILE``) arguments into the three argument classes."""
    from hfssl.utils.args import parse

    parsed = parse(build_parser(prog), argv)
    return parsed[0], parsed[1], parsed[2]


def run(argv: Sequence[str], callbacks: Sequence[TrainerCallback] = (), prog: str = "hfssl pretrain") -> int:
    """Parse ``argv`` and pretrain; user errors propagate as :class:`~hfssl.errors.HfsslError`."""
    from hfssl.training import pretrain_backbone

    model_args, data_args, args = parse_args(argv, prog)
    result = pretrain_backbone(model_args, data_args, args, callbacks)
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"pretraining done: {result.global_step} steps; backbone saved to {result.backbone_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hfssl.pretrain`` / ``accelerate launch -m hfssl.pretrain``: exit code."""
    from hfssl.errors import HfsslError

    try:
        return run(list(sys.argv[1:] if argv is None else argv), prog="hfssl.pretrain")
    except HfsslError as err:
        print(f"hfssl.pretrain: error: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("hfssl.pretrain: interrupted", file=sys.stderr)
        return 130
