"""Library logging, following the ``transformers.utils.logging`` conventions.

The library logs under the ``hfssl`` logger; verbosity is set with ``set_verbosity`` or the
``HFSSL_VERBOSITY`` environment variable (debug, info, warning, error).
"""

from __future__ import annotations

import logging
import os
import sys

_LIBRARY = "hfssl"
_configured = False


def _configure() -> None:
    global _configured
    if _configured:
        return
    root = logging.getLogger(_LIBRARY)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(levelname)s|%(name)s] %(message)s"))
    root.addHandler(handler)
    level = os.environ.get("HFSSL_VERBOSITY", "info").upper()
    root.setLevel(getattr(logging, level, logging.INFO))
    root.propagate = False
    _configured = True


def get_logger(name: str | None = None) -> logging.Logger:
    _configure()
    if name is None or name == _LIBRARY:
        return logging.getLogger(_LIBRARY)
    if not name.startswith(_LIBRARY):
        name = f"{_LIBRARY}.{name}"
    return logging.getLogger(name)


def set_verbosity(level: int | str) -> None:
    _configure()
    if isinstance(level, str):
        level = getattr(logging, level.upper())
    logging.getLogger(_LIBRARY).setLevel(level)


def progress_disabled() -> bool:
    """Progress bars are shown unless ``HFSSL_DISABLE_PROGRESS_BARS=1`` (tests, CI logs)."""
    return os.environ.get("HFSSL_DISABLE_PROGRESS_BARS", "0") not in ("0", "", "false", "False")
