"""MedMNIST loader: official ``.npz`` file -> checked ``datasets.DatasetDict``.

``load_medmnist("breastmnist", 64)`` finds ``<data root>/medmnist/breastmnist_64.npz`` (downloading
it from Zenodo if it is missing and the network is allowed), verifies its MD5 against the
official table (cached, see ``hfssl.data.download``), checks keys, dtypes, shapes, label range and
split sizes, and returns splits ``train``/``validation``/``test`` with this fixed schema:

* ``image``: grey 2D ``Array2D((H, W), "uint8")``; RGB 2D ``Array3D((H, W, 3), "uint8")``;
  3D ``Array3D((D, H, W), "uint8")`` - the file's own arrays, unchanged.
* ``label``: ``ClassLabel(names=<official names>)`` (binary-class, multi-class, ordinal-regression);
  ChestMNIST (multi-label): ``List(Value("uint8"), length=14)``, one 0/1 per finding.

Arrays rather than ``Image()`` (``benchmarks/data_format.py``, BreastMNIST train, 546 images,
noisy shared 2-core CPU): building is 100-200x faster (~1.3 ms vs 140-290 ms of PNG encoding);
``with_format("torch")[:]`` of the whole split is 5-7x faster (16-36 ms vs 84-259 ms); but a
``DataLoader`` epoch through datasets' torch formatter is *not* faster (Array2D 305-324 ms, or
170-215 ms with ``dtype=torch.uint8``, vs Image() 136-272 ms). The fast path for arrays is
``hfssl.data.generic.column_to_numpy``: the whole split as uint8 in ~1.6 ms, then a
``TensorDataset`` epoch in ~20 ms. Arrays also hold 3D volumes, which ``Image()`` cannot. Note:
datasets' numpy/torch formatters widen integer arrays to int64 unless given ``dtype``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from hfssl.data.download import download_file, file_digest, is_offline
from hfssl.data.medmnist_info import MEDMNIST_CITATION, NPZ_SPLITS, MedMNISTInfo, get_info
from hfssl.data.paths import source_dir
from hfssl.errors import DataError
from hfssl.utils.logging import get_logger

logger = get_logger(__name__)

SPLIT_NAMES: dict[str, str] = {"train": "train", "val": "validation", "test": "test"}
"""``.npz`` prefix -> ``DatasetDict`` split name."""

HOMEPAGE = "https://medmnist.com/"
_SCHEMA_VERSION = 1  # bump when the Features produced here change (invalidates datasets' caches)


def medmnist_path(name: str, image_size: int = 28, data_dir: str | os.PathLike | None = None) -> Path:
    """Where the file of subset ``name`` at ``image_size`` lives (or would live) under the data root."""
    info = get_info(name)
    return source_dir("medmnist", data_dir) / info.file(image_size).file_name


def medmnist_features(info: MedMNISTInfo, image_size: int):
    """The ``datasets.Features`` of a subset at one size (the fixed schema above)."""
    from datasets import Array2D, Array3D, ClassLabel, Features, List, Value

    shape = info.image_shape(image_size)
    image = Array2D(shape, "uint8") if len(shape) == 2 else Array3D(shape, "uint8")
    if info.is_multilabel:
        label = List(Value("uint8"), length=info.n_classes)
    else:
        label = ClassLabel(names=list(info.labels))
    return Features({"image": image, "label": label})


def fetch_medmnist(
    name: str, image_size: int = 28, data_dir: str | os.PathLike | None = None, *, download: bool = True
) -> Path:
    """The path of the file, downloading it first when missing (and allowed); ``DataError`` otherwise."""
    info = get_info(name)
    entry = info.file(image_size)
    path = medmnist_path(name, image_size, data_dir)
    if path.is_file():
        return path
    if path.exists():
        raise DataError(f"{path} exists but is not a file", f"remove it and put {entry.file_name} there")
    fix = (
        f"download {entry.url} and put it in {path.parent}, or set HFSSL_DATA_DIR (or --data-dir) "
        f"to a folder whose medmnist/ holds {entry.file_name}"
    )
    if not download:
        raise DataError(f"MedMNIST file {entry.file_name} is missing in {path.parent}", fix)
    if is_offline():
        raise DataError(
            f"MedMNIST file {entry.file_name} is missing in {path.parent} and downloads are off "
            "(HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set)",
            fix,
        )
    logger.info("%s not found in %s; downloading it from %s", entry.file_name, path.parent, entry.url)
    return download_file(entry.url, path, md5=entry.md5, what=f"MedMNIST file {entry.file_name}")


def check_md5(path: Path, info: MedMNISTInfo, image_size: int) -> str:
    """``"verified"`` or ``"mismatch"`` for ``path`` against the official MD5 (cached digest)."""
    return "verified" if file_digest(path, "md5") == info.file(image_size).md5 else "mismatch"


def read_medmnist_npz(
    path: Path, info: MedMNISTInfo, image_size: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read and check a MedMNIST ``.npz``: keys, dtypes, shapes, split sizes and label range.

    Returns ``{npz prefix: (images, labels)}`` with labels as (N,) int64 (single-label) or
    (N, K) uint8 (multi-label). Never unpickles (``allow_pickle=False``).
    """
    fix_redownload = f"delete {path} and download it again from {info.file(image_size).url}"
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc})", fix_redownload) from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{path} holds a single array, not the six arrays of a MedMNIST .npz", fix_redownload)
    with npz:
        expected = {f"{s}_{k}" for s in NPZ_SPLITS for k in ("images", "labels")}
        missing = sorted(expected - set(npz.files))
        if missing:
            raise DataError(
                f"{path} lacks the key(s) {', '.join(missing)} (has: {', '.join(npz.files) or 'none'})",
                fix_redownload,
            )
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        shape = info.image_shape(image_size)
        for split in NPZ_SPLITS:
            try:
                images = npz[f"{split}_images"]
                labels = npz[f"{split}_labels"]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise DataError(
                    f"{path} is corrupt: reading {split} arrays failed ({exc})", fix_redownload
                ) from exc
            n = info.n_samples[split]
            if images.dtype != np.uint8 or images.shape != (n, *shape):
                raise DataError(
                    f"{path}: {split}_images is {images.dtype} {images.shape}, expected uint8 {(n, *shape)} "
                    f"for {info.python_class} at {image_size} px",
                    fix_redownload,
                )
            width = info.n_classes if info.is_multilabel else 1
            if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (n, width):
                raise DataError(
                    f"{path}: {split}_labels is {labels.dtype} {labels.shape}, expected integers of shape {(n, width)}",
                    fix_redownload,
                )
            hi = 1 if info.is_multilabel else info.n_classes - 1
            if n and (labels.min() < 0 or labels.max() > hi):
                raise DataError(
                    f"{path}: {split}_labels range from {labels.min()} to {labels.max()}, "
                    f"outside 0..{hi} for {info.python_class}",
                    fix_redownload,
                )
            labels = labels.astype(np.uint8) if info.is_multilabel else labels[:, 0].astype(np.int64)
            out[split] = (images, labels)
    return out


def _dataset_info(info: MedMNISTInfo, image_size: int, checksum: dict | None):
    from datasets import DatasetInfo

    side = "x".join([str(image_size)] * info.spatial_dims)
    entry = info.file(image_size)
    description = (
        f"MedMNIST {info.python_class} ({info.spatial_dims}D, {side}, {info.n_channels} channel(s), "
        f"task: {info.task}). {info.description} "
        f"Official file {entry.file_name} (MD5 {entry.md5}) from {entry.url}. License {info.license}. "
        "MedMNIST is not intended for clinical use."
    )
    return DatasetInfo(
        description=description,
        citation=MEDMNIST_CITATION,
        homepage=HOMEPAGE,
        license=info.license,
        dataset_name="medmnist",
        config_name=info.name,
        version="3.0.0",
        download_checksums={entry.url: checksum} if checksum else None,
    )


def load_medmnist(
    name: str,
    image_size: int = 28,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    verify: bool = True,
):
    """Load a MedMNIST subset as a ``DatasetDict`` (``train``/``validation``/``test``), checked.

    Args:
        name: subset, e.g. ``"breastmnist"`` or ``"adrenalmnist3d"`` (case-insensitive).
        image_size: 28, 64, 128 or 224 for 2D subsets; 28 or 64 for 3D subsets.
        data_dir: data root (else ``$HFSSL_DATA_DIR``, else ``~/.cache/hfssl/data``).
        download: fetch a missing file from Zenodo (never when offline).
        verify: check the file's MD5 against the official one (cached per path+size+mtime).
            When verified, ``ds.info.download_checksums`` records the URL, size and MD5.
    """
    from datasets import DatasetDict

    from hfssl.data.generic import dataset_from_arrays

    info = get_info(name)
    entry = info.file(image_size)
    path = fetch_medmnist(info.name, image_size, data_dir, download=download)
    checksum = None
    if verify:
        digest = file_digest(path, "md5")
        if digest != entry.md5:
            raise DataError(
                f"MD5 mismatch for {path}: got {digest}, the official {entry.file_name} has {entry.md5} "
                "(corrupt, truncated or not the official file)",
                f"delete it and download it again from {entry.url}",
            )
        checksum = {"num_bytes": path.stat().st_size, "checksum": entry.md5}
    arrays = read_medmnist_npz(path, info, image_size)
    features = medmnist_features(info, image_size)
    ds_info = _dataset_info(info, image_size, checksum)
    # Deterministic fingerprints from the verified content; random ones when the file was not checked.
    stamp = f"{entry.md5}-{_SCHEMA_VERSION}" if verify else None
    return DatasetDict(
        {
            SPLIT_NAMES[split]: dataset_from_arrays(
                {"image": images, "label": labels},
                features,
                info=ds_info,
                split=SPLIT_NAMES[split],
                fingerprint=f"medmnist-{info.name}-{image_size}-{split}-{stamp}" if stamp else None,
            )
            for split, (images, labels) in arrays.items()
        }
    )
