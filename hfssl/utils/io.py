"""Atomic file writing: write to a temporary sibling, then rename, so a crash never leaves a
half-written file under the final name."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hfssl.errors import OutputError

# Write errors that mean "this location cannot take the file", not a bug: full disk, file-size
# limit, quota, read-only file system.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


def output_error(path: str | os.PathLike, exc: OSError, what: str = "") -> OutputError:
    """The one-line :class:`OutputError` for an ``OSError`` met while creating or writing ``path``."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        hint = (
            "free disk space (or raise the file-size limit / quota) and run again; nothing was half-written"
        )
    else:
        hint = "choose a folder you can write to"
    return OutputError(f"cannot write {what + ' ' if what else ''}{path}: {reason}", hint)


def is_write_error(exc: BaseException) -> bool:
    """True for an ``OSError`` that says the destination cannot take the data (disk full, read-only, ...)."""
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        return True
    # safetensors (Rust) and torch.save report the same OS errors inside their own exception text
    text = str(exc)
    return any(s in text for s in ("File too large", "No space left", "Disk quota", "Read-only file system"))


def ensure_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``path`` (and parents) or raise a one-line :class:`OutputError` saying why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc, what) from exc
    if not path.is_dir():
        raise OutputError(f"{what} {path} is not a folder", "choose a folder path")
    return path


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``final``; on success it is renamed over ``final``.

    On any exception the temporary file is removed and ``final`` is left untouched; a folder that
    cannot be created and a write that fails for lack of space (or a read-only file system) become
    one-line :class:`~hfssl.errors.OutputError` s.
    """
    final = Path(final)
    ensure_dir(final.parent, "folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix + ".tmp", dir=final.parent)
    except OSError as exc:
        raise output_error(final, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if is_write_error(exc):  # a full disk is the user's to fix, not a bug: one line, no traceback
            raise output_error(final, exc if isinstance(exc, OSError) else OSError(str(exc))) from exc
        raise


def write_text_atomic(final: str | os.PathLike, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(final: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(final, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks (weights files are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
