"""``python -m eval_suite``: the same command as ``hfssl evaluate``."""

from __future__ import annotations

import sys


def _run() -> int:
    from eval_suite.cli import main
    from hfssl.errors import HfsslError

    try:
        return main(sys.argv[1:])
    except HfsslError as err:  # one line with a fix hint, as the hfssl CLI prints it
        print(f"python -m eval_suite: error: {err.one_line()}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(_run())
