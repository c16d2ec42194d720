"""``hfssl`` entry point.

Subcommands live in their own modules and are imported only when called, so that
``hfssl --help`` answers instantly (no torch/transformers import). Each subcommand module
exposes ``run(argv: list[str]) -> int``. User errors (``HfsslError``) are caught here, once,
and printed as a single line with a fix hint; the exit code is non-zero.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line description). Add a subcommand by adding a line here.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "data": ("hfssl.cli.data", "inspect datasets: MedMNIST, DRIVE, image folders, Hub datasets"),
    "export-timm": ("hfssl.cli.export_timm", "export a backbone checkpoint to timm's format"),
    "pretrain": ("hfssl.cli.pretrain", "pretrain a backbone with a pretext task (Accelerate)"),
    "push": ("hfssl.cli.push", "push a checkpoint with its model card to the Hub"),
    "evaluate": ("hfssl.cli.evaluate", "finetune or probe any checkpoint on (imbalanced) medical data"),
    "leaderboard": ("hfssl.cli.leaderboard", "rank evaluated checkpoints: markdown, CSV, HTML and plots"),
    "study": ("hfssl.cli.study", "run one of the paper's four studies as a pretrain-evaluate grid"),
    "demo": ("hfssl.cli.demo", "pretrain two methods, evaluate vs scratch, print a leaderboard"),
    "zoo": ("hfssl.cli.zoo", "the model zoo: list, build, push, pull, table (MODEL_ZOO.md), status"),
}


def _top_help() -> str:
    from hfssl import __version__

    lines = [
        f"usage: hfssl <command> [options]   (hfssl {__version__})",
        "",
        "Self-supervised learning for medical images, native to the Hugging Face Hub.",
        "",
        "commands:",
    ]
    width = max(len(n) for n in SUBCOMMANDS)
    for name, (_, desc) in SUBCOMMANDS.items():
        lines.append(f"  {name:<{width}}  {desc}")
    lines += [
        "",
        "Run 'hfssl <command> --help' for a command's options and examples.",
        "Data root: --data-dir, else $HFSSL_DATA_DIR, else ~/.cache/hfssl/data.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_top_help())
        return 0
    if argv[0] in ("-V", "--version"):
        from hfssl import __version__

        print(f"hfssl {__version__}")
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        known = ", ".join(SUBCOMMANDS)
        print(f"hfssl: error: unknown command {name!r} (fix: use one of: {known})", file=sys.stderr)
        return 2
    from hfssl.errors import HfsslError

    module = importlib.import_module(SUBCOMMANDS[name][0])
    try:
        return int(module.run(argv[1:]) or 0)
    except HfsslError as err:
        print(f"hfssl {name}: error: {err.one_line()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"hfssl {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
