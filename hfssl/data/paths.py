"""Where hfssl finds data and keeps its small caches.

Data root: ``--data-dir``, else ``$HFSSL_DATA_DIR``, else ``~/.cache/hfssl/data``. Each source has
its own folder under it (``<root>/medmnist/``, ``<root>/drive/``). The data root may be read-only
(a shared mount), so derived state such as checksum results lives in the cache dir instead:
``$HFSSL_CACHE_DIR``, else ``~/.cache/hfssl``.
"""

from __future__ import annotations

import os
from pathlib import Path

from hfssl.errors import DataError

DATA_DIR_ENV = "HFSSL_DATA_DIR"
CACHE_DIR_ENV = "HFSSL_CACHE_DIR"
_DEFAULT_HOME = Path("~/.cache/hfssl")

_FIX_ROOT = f"pass --data-dir DIR or set {DATA_DIR_ENV} to a readable folder"


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root: ``data_dir`` if given, else ``$HFSSL_DATA_DIR``, else ``~/.cache/hfssl/data``.

    Only resolves the path; existence is checked where a file is needed (see ``source_dir``).
    """
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(DATA_DIR_ENV) or (_DEFAULT_HOME / "data")
    return Path(data_dir).expanduser()


def cache_dir() -> Path:
    """hfssl's own cache (checksum results): ``$HFSSL_CACHE_DIR`` else ``~/.cache/hfssl``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or _DEFAULT_HOME).expanduser()


def check_readable_dir(path: Path, what: str) -> None:
    """Raise ``DataError`` if ``path`` exists but is not a directory we can list.

    A path that does not exist passes: callers report the missing *file* with its expected location
    (and may create the folder to download into).
    """
    if not path.exists():
        return
    if not path.is_dir():
        raise DataError(f"{what} {path} is not a directory", _FIX_ROOT)
    if not os.access(path, os.R_OK | os.X_OK):
        raise DataError(f"{what} {path} is not readable (permission denied)", _FIX_ROOT)


def source_dir(source: str, data_dir: str | os.PathLike | None = None) -> Path:
    """``<data root>/<source>`` (``medmnist``, ``drive``), after checking both are usable folders."""
    root = data_root(data_dir)
    check_readable_dir(root, "data dir")
    folder = root / source
    check_readable_dir(folder, f"{source} data folder")
    return folder
