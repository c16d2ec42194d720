"""``python -m hfssl.pretrain ...`` and ``accelerate launch -m hfssl.pretrain ...``.

A thin shim over :func:`hfssl.training.pretrain.main`; see ``python -m hfssl.pretrain --help``.
"""

from __future__ import annotations

import sys

from hfssl.training.pretrain import main

if __name__ == "__main__":
    sys.exit(main())
