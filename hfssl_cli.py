"""Console-script shim for ``hfssl`` (``[project.scripts]`` in ``pyproject.toml``).

``import hfssl`` is cheap (it registers the ``Auto*`` classes only once transformers is
imported), so ``hfssl --help`` answers without importing torch.
"""

from __future__ import annotations

import sys


def main() -> int:
    from hfssl.cli.main import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
