"""Console-script shim for ``hfssl``.

It marks the start as a CLI start before the ``hfssl`` package is imported, so that the
package defers its (slow) transformers registration until a subcommand needs models.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    os.environ["HFSSL_LAZY_INIT"] = "1"
    try:
        from hfssl.cli.main import main as cli_main
    finally:
        # Child processes (accelerate launch, workers) import hfssl normally.
        os.environ.pop("HFSSL_LAZY_INIT", None)
    return cli_main(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
