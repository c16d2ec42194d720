"""``python -m hfssl.pretrain ...`` and ``accelerate launch -m hfssl.pretrain ...``.

The module that ``-m`` runs; the command line itself is :mod:`hfssl.cli.pretrain` (see
``python -m hfssl.pretrain --help``). The library function is :func:`hfssl.pretrain_backbone`.
"""

from __future__ import annotations

import sys

from hfssl.cli.pretrain import main

if __name__ == "__main__":
    sys.exit(main())
