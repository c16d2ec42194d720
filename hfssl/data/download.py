"""Checksums (cached) and verified downloads of data files.

* ``file_digest(path, "md5")`` hashes a file once and remembers the result in
  ``<cache dir>/checksums.json`` keyed by absolute path + size + mtime, so a 300 MB file is hashed
  once, not at every load. The cache sits in hfssl's cache dir, never in the (possibly read-only)
  data dir. A changed file (new size or mtime) is hashed again.
* ``download_file(url, dest, md5=...)`` streams ``url`` into a temporary file next to ``dest`` with
  a tqdm progress bar, checks the digest and only then renames it into place: a failed, interrupted
  or mismatched download leaves nothing behind.

Plain ``urllib`` is used on purpose: the files are public single-URL downloads (Zenodo), and this
keeps the dependency surface at the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

from hfssl.data.paths import cache_dir
from hfssl.errors import DataError
from hfssl.utils.io import atomic_path, write_json_atomic
from hfssl.utils.logging import get_logger, progress_disabled

logger = get_logger(__name__)

_CHUNK = 1 << 20
_OFFLINE_ENVS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_lock = threading.Lock()


def is_offline() -> bool:
    """True when the Hugging Face offline switches (``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``) are on."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in _OFFLINE_ENVS)


def checksum_cache_file() -> Path:
    return cache_dir() / "checksums.json"


def _read_cache() -> dict[str, dict]:
    path = checksum_cache_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _hash_file(path: Path, algorithm: str) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def file_digest(path: str | os.PathLike, algorithm: str = "md5", *, use_cache: bool = True) -> str:
    """Hex digest of ``path`` (``md5`` or ``sha256``), remembered per path + size + mtime.

    The cache is best effort: if the cache dir is not writable the digest is still returned.
    """
    path = Path(path).resolve()
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if use_cache:
        hit = _read_cache().get(f"{algorithm}:{path}")
        if isinstance(hit, dict) and all(hit.get(k) == v for k, v in stamp.items()) and "digest" in hit:
            return str(hit["digest"])
    digest = _hash_file(path, algorithm)
    if use_cache:
        remember_digest(path, algorithm, digest)
    return digest


def remember_digest(path: str | os.PathLike, algorithm: str, digest: str) -> None:
    """Store a digest computed elsewhere (e.g. while downloading) for the file as it is now."""
    path = Path(path).resolve()
    st = path.stat()
    with _lock:  # read-modify-write of one small JSON; the atomic rename keeps it whole for other processes
        cache = _read_cache()
        cache[f"{algorithm}:{path}"] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "digest": digest}
        try:
            write_json_atomic(checksum_cache_file(), cache)
        except OSError as exc:
            logger.debug("checksum cache not written (%s)", exc)


def _progress(total: int | None, desc: str):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=progress_disabled()
    )


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 30.0,
    what: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying ``md5``/``sha256`` when given.

    Raises ``DataError`` when offline, when the request fails, or when the digest does not match;
    in every failure case neither ``dest`` nor a temporary file (nor a folder created for it) remains.
    """
    dest = Path(dest)
    what = what or dest.name
    if is_offline():
        raise DataError(
            f"{what} is missing at {dest} and downloads are off (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set)",
            f"download {url} and put it in {dest.parent}, or set HFSSL_DATA_DIR to a folder that has it",
        )
    created: list[Path] = []  # folders we create, removed again if the download fails
    parent = dest.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    hashers = {name: hashlib.new(name) for name, want in (("md5", md5), ("sha256", sha256)) if want}
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "hfssl (+https://github.com/hfssl)"})
        with atomic_path(dest, suffix=".part") as tmp:
            with urllib.request.urlopen(request, timeout=timeout) as resp, tmp.open("wb") as out:
                length = resp.headers.get("Content-Length")
                with _progress(
                    int(length) if length and length.isdigit() else None, f"download {what}"
                ) as bar:
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        for h in hashers.values():
                            h.update(chunk)
                        bar.update(len(chunk))
            for name, want in (("md5", md5), ("sha256", sha256)):
                if want and hashers[name].hexdigest() != want.lower():
                    raise DataError(
                        f"download of {what} from {url} has {name.upper()} {hashers[name].hexdigest()}, "
                        f"expected {want} (corrupt transfer or changed file); nothing was saved",
                        "try again later, or download the file by hand and put it in " + str(dest.parent),
                    )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        _remove_empty(created)
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"{what} is missing at {dest} and downloading it from {url} failed ({reason})",
            f"check the network, or download {url} yourself and put it in {dest.parent}, "
            "or set HFSSL_DATA_DIR to a folder that has it",
        ) from exc
    except BaseException:
        _remove_empty(created)
        raise
    for name, h in hashers.items():
        remember_digest(dest, name, h.hexdigest())
    logger.info("downloaded %s to %s", what, dest)
    return dest


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()
