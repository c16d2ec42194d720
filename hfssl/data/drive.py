"""DRIVE retinal vessel segmentation (Staal et al., 2004) as a ``datasets.DatasetDict``.

Reads the original release layout under ``<data root>/drive/`` (``training/`` = images 21-40,
``test/`` = images 01-20; ``images/*.tif``, ``1st_manual/*.gif``, ``mask/*.gif``) and returns splits
``train`` (20) and ``test`` (20), optionally with a ``validation`` split carved from ``train`` with a
fixed seed. Columns:

* ``image``: ``Array3D((584, 565, 3), "uint8")``, the RGB fundus photograph, unchanged;
* ``mask``: ``Array2D((584, 565), "uint8")``, vessels of the first observer, binarised ``> 0`` to 0/1;
* ``fov``: ``Array2D((584, 565), "uint8")``, the field-of-view mask, 0/1;
* ``id``: the image number as a two-digit string (``"01"`` ... ``"40"``).

DRIVE is for research and teaching only, not for clinical use; cite Staal et al. (``DRIVE_CITATION``).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from hfssl.data.download import file_digest
from hfssl.data.paths import source_dir
from hfssl.errors import DataError

DRIVE_HEIGHT, DRIVE_WIDTH = 584, 565
DRIVE_HOMEPAGE = "https://drive.grand-challenge.org/"
DRIVE_CITATION = """@article{staal2004drive,
  title={Ridge-based vessel segmentation in color images of the retina},
  author={Staal, Joes and Abr{\\`a}moff, Michael D. and Niemeijer, Meindert and Viergever, Max A.
          and van Ginneken, Bram},
  journal={IEEE Transactions on Medical Imaging},
  volume={23},
  number={4},
  pages={501--509},
  year={2004},
  doi={10.1109/TMI.2004.825627}
}"""
DRIVE_CLASS_NAMES = ("background", "vessel")

# release folder -> (split name, image file suffix, expected ids)
_SPLITS: dict[str, tuple[str, str, list[str]]] = {
    "training": ("train", "training", [f"{i:02d}" for i in range(21, 41)]),
    "test": ("test", "test", [f"{i:02d}" for i in range(1, 21)]),
}
_FIX = (
    f"download DRIVE from {DRIVE_HOMEPAGE} and unpack it so that <data root>/drive/ holds training/ and "
    "test/ (each with images/, 1st_manual/, mask/), or set HFSSL_DATA_DIR"
)


def drive_features():
    from datasets import Array2D, Array3D, Features, Value

    return Features(
        {
            "image": Array3D((DRIVE_HEIGHT, DRIVE_WIDTH, 3), "uint8"),
            "mask": Array2D((DRIVE_HEIGHT, DRIVE_WIDTH), "uint8"),
            "fov": Array2D((DRIVE_HEIGHT, DRIVE_WIDTH), "uint8"),
            "id": Value("string"),
        }
    )


def drive_files(folder: Path) -> dict[str, list[dict[str, Path | str]]]:
    """``{split: [{"id", "image", "mask", "fov"}, ...]}`` for the release in ``folder``; ``DataError`` if incomplete."""
    out: dict[str, list[dict[str, Path | str]]] = {}
    for release, (split, suffix, ids) in _SPLITS.items():
        rows = []
        for i in ids:
            row: dict[str, Path | str] = {
                "id": i,
                "image": folder / release / "images" / f"{i}_{suffix}.tif",
                "mask": folder / release / "1st_manual" / f"{i}_manual1.gif",
                "fov": folder / release / "mask" / f"{i}_{suffix}_mask.gif",
            }
            for key in ("image", "mask", "fov"):
                if not Path(row[key]).is_file():
                    raise DataError(f"DRIVE file {row[key]} is missing (looked in {folder})", _FIX)
            rows.append(row)
        out[split] = rows
    return out


def read_sha256sums(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` from ``folder/SHA256SUMS`` (``sha256sum`` format)."""
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        raise DataError(
            f"{sums} is missing, so the DRIVE files cannot be verified", "pass verify=False or restore it"
        )
    table: dict[str, str] = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"([0-9a-fA-F]{64}) [ *](.+)", line.strip())
        if m:
            table[m.group(2)] = m.group(1).lower()
    return table


def verify_drive(folder: Path, paths: list[Path] | None = None) -> dict[str, str]:
    """SHA-256 status (``"verified"`` / ``"mismatch"`` / ``"missing"``) of the listed files (all by default).

    Digests are cached per path+size+mtime like the MedMNIST MD5s.
    """
    table = read_sha256sums(folder)
    wanted = [p.relative_to(folder).as_posix() for p in paths] if paths is not None else sorted(table)
    status: dict[str, str] = {}
    for rel in wanted:
        path = folder / rel
        if rel not in table:
            status[rel] = "not listed"
        elif not path.is_file():
            status[rel] = "missing"
        else:
            status[rel] = "verified" if file_digest(path, "sha256") == table[rel] else "mismatch"
    return status


def _read_binary(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        arr = np.asarray(img)
    if arr.shape != (DRIVE_HEIGHT, DRIVE_WIDTH):
        raise DataError(f"{path} has shape {arr.shape}, expected {(DRIVE_HEIGHT, DRIVE_WIDTH)}", _FIX)
    return (arr > 0).astype(np.uint8)


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"))
    if arr.shape != (DRIVE_HEIGHT, DRIVE_WIDTH, 3):
        raise DataError(f"{path} has shape {arr.shape}, expected {(DRIVE_HEIGHT, DRIVE_WIDTH, 3)}", _FIX)
    return arr


def load_drive(
    data_dir: str | os.PathLike | None = None,
    *,
    validation_size: int | float = 0,
    seed: int = 0,
    verify: bool = False,
):
    """Load DRIVE as a ``DatasetDict`` (``train``/``test``, plus ``validation`` if ``validation_size``).

    Args:
        data_dir: data root (else ``$HFSSL_DATA_DIR``, else ``~/.cache/hfssl/data``).
        validation_size: images (int) or fraction (float) of ``train`` moved to ``validation``,
            chosen with ``seed`` through ``Dataset.train_test_split``; 0 = no validation split.
        seed: seed of that choice.
        verify: check every file used against ``SHA256SUMS`` (cached digests).
    """
    from datasets import DatasetDict, DatasetInfo

    from hfssl.data.generic import dataset_from_arrays

    n_train = len(_SPLITS["training"][2])
    if isinstance(validation_size, float) and not 0 <= validation_size < 1:
        raise DataError(f"validation_size {validation_size} is not a fraction in [0, 1)", "use e.g. 0.2 or 4")
    if isinstance(validation_size, int) and not 0 <= validation_size < n_train:
        raise DataError(
            f"validation_size {validation_size} must be between 0 and {n_train - 1} images",
            "use e.g. validation_size=4",
        )
    folder = source_dir("drive", data_dir)
    if not folder.is_dir():
        raise DataError(f"DRIVE folder {folder} does not exist", _FIX)
    files = drive_files(folder)
    if verify:
        used = [Path(r[k]) for rows in files.values() for r in rows for k in ("image", "mask", "fov")]
        bad = {p: s for p, s in verify_drive(folder, used).items() if s != "verified"}
        if bad:
            listing = ", ".join(f"{p} ({s})" for p, s in sorted(bad.items())[:5])
            raise DataError(f"{len(bad)} DRIVE file(s) fail SHA256SUMS: {listing}", _FIX)
    info = DatasetInfo(
        description=(
            "DRIVE: Digital Retinal Images for Vessel Extraction. 40 colour fundus photographs (565x584) "
            "from a Dutch diabetic-retinopathy screening programme with manual vessel segmentations (first "
            "observer, binarised to 0/1 in 'mask') and field-of-view masks ('fov'). Official split: 20 train "
            "(21-40), 20 test (01-20). Research and teaching use only; not for clinical use."
        ),
        citation=DRIVE_CITATION,
        homepage=DRIVE_HOMEPAGE,
        dataset_name="drive",
    )
    features = drive_features()
    stamp = hashlib.sha256()
    for rows in files.values():
        for r in rows:
            for k in ("image", "mask", "fov"):
                st = Path(r[k]).stat()
                stamp.update(f"{r[k]}:{st.st_size}:{st.st_mtime_ns};".encode())
    splits = {}
    for split, rows in files.items():
        columns = {
            "image": np.stack([_read_rgb(Path(r["image"])) for r in rows]),
            "mask": np.stack([_read_binary(Path(r["mask"])) for r in rows]),
            "fov": np.stack([_read_binary(Path(r["fov"])) for r in rows]),
            "id": [str(r["id"]) for r in rows],
        }
        fingerprint = f"drive-{split}-{stamp.hexdigest()[:16]}"
        splits[split] = dataset_from_arrays(
            columns, features, info=info, split=split, fingerprint=fingerprint
        )
    if validation_size:
        train = splits["train"]
        parts = train.train_test_split(test_size=validation_size, seed=seed)
        position = {i: n for n, i in enumerate(train["id"])}  # keep both parts in id order

        def ordered(ids: list[str]) -> list[int]:
            return sorted(position[i] for i in ids)

        splits = {
            "train": train.select(ordered(parts["train"]["id"])),
            "validation": train.select(ordered(parts["test"]["id"])),
            "test": splits["test"],
        }
    return DatasetDict(splits)
