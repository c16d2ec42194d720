"""Generic image sources converted to hfssl's schema, and the fast NumPy → Arrow builder all sources use.

* ``load_imagefolder(PATH)`` reads a local folder through ``datasets.load_dataset("imagefolder")``
  (``PATH/<split>/<class>/*.png`` or ``PATH/<class>/*.png``) and returns grey
  ``Array2D((H, W), "uint8")`` or RGB ``Array3D((H, W, 3), "uint8")`` images of one size (resized
  with Pillow when ``image_size`` is given) and a ``ClassLabel`` ``label`` (from the class folders).
* ``load_hub(ORG/NAME)`` does the same for a dataset on the Hugging Face Hub (or in its local cache
  when offline), with ``image_column``/``label_column`` naming the columns to use.

Both materialise the images in memory as uint8 arrays, like the MedMNIST loader: the target is
small medical datasets whose arrays fit in RAM, where that makes every later epoch cheap.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hfssl.errors import DataError
from hfssl.utils.logging import get_logger

logger = get_logger(__name__)

_SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation"}
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "P")


# ----------------------------------------------------------------------------------------------------
# NumPy -> Arrow
# ----------------------------------------------------------------------------------------------------


def _nested_list_array(values: np.ndarray, shape: Sequence[int]):
    """``values`` (N, *shape) as Arrow ``list<list<...>>`` without a Python-level copy.

    Written by hand because ``Dataset.from_dict`` converts array features row by row, which is
    several times slower for whole MedMNIST splits (``benchmarks/data_format.py`` compares them).
    """
    import pyarrow as pa

    arr = pa.array(np.ascontiguousarray(values).reshape(-1))
    for dim in reversed(tuple(shape)):
        n_lists = len(arr) // dim
        offsets = pa.array(np.arange(0, (n_lists + 1) * dim, dim, dtype=np.int32))
        arr = pa.ListArray.from_arrays(offsets, arr)
    return arr


def dataset_from_arrays(
    columns: dict[str, Any],
    features,
    *,
    info=None,
    split: str | None = None,
    fingerprint: str | None = None,
):
    """Build a ``datasets.Dataset`` from NumPy columns matching ``features``.

    ``Array2D``/``Array3D`` columns are (N, *shape) arrays of the feature's dtype; a fixed-length
    ``List`` column (multi-label targets) is an (N, K) array; other columns are 1-D arrays or lists.
    ``fingerprint`` identifies the content for ``datasets``' caching (e.g. derived from a file's
    checksum); without one a random fingerprint is used, because ``datasets``' default hashes the
    whole in-memory table, which dominates the load time of the larger 3D subsets.
    """
    import pyarrow as pa
    from datasets import Array2D, Array3D, Array4D, Array5D, Dataset, DatasetInfo, List, NamedSplit
    from datasets.fingerprint import generate_random_fingerprint

    names, arrays = [], []
    schema = features.arrow_schema
    for name, feature in features.items():
        values = columns[name]
        if isinstance(feature, (Array2D, Array3D, Array4D, Array5D)):
            values = np.asarray(values)
            if values.shape[1:] != tuple(feature.shape) or values.dtype != np.dtype(feature.dtype):
                raise ValueError(
                    f"column {name}: got {values.shape[1:]} {values.dtype}, feature wants {feature.shape} {feature.dtype}"
                )
            storage = _nested_list_array(values, feature.shape)
            array = pa.ExtensionArray.from_storage(feature(), storage)
        elif isinstance(feature, List) and feature.length > 0:
            values = np.ascontiguousarray(values)
            flat = pa.array(values.reshape(-1), type=schema.field(name).type.value_type)
            array = pa.FixedSizeListArray.from_arrays(flat, feature.length)
        else:
            array = pa.array(values, type=schema.field(name).type)
        names.append(name)
        arrays.append(array)
    table = pa.Table.from_arrays(arrays, names=names)
    if info is None:
        info = DatasetInfo(features=features)
    else:
        info = info.copy()
        info.features = features
    return Dataset(
        table,
        info=info,
        split=NamedSplit(split) if split else None,
        fingerprint=fingerprint or generate_random_fingerprint(),
    )


def column_to_numpy(ds, column: str = "image", *, copy: bool = False) -> np.ndarray:
    """One column of ``ds`` as a NumPy array of its stored dtype (uint8 images stay uint8).

    Without ``copy`` the result is usually a read-only view of the Arrow buffers (no copy at all);
    pass ``copy=True`` for a writable array (e.g. before ``torch.from_numpy``).

    The inverse of ``dataset_from_arrays``: ``Array2D``/``Array3D`` -> (N, *shape), fixed-length
    ``List`` -> (N, K), others -> (N,). Honours ``select``/``shuffle`` (indices mappings). Written
    by hand because ``with_format("numpy")`` widens integers to int64 and converts row by row
    (an order of magnitude slower than reading the Arrow buffers directly, as done here).
    """
    out = _column_to_numpy(ds, column)
    return np.array(out, copy=True) if copy else out


def _column_to_numpy(ds, column: str) -> np.ndarray:
    import pyarrow as pa
    from datasets import Array2D, Array3D, Array4D, Array5D, List

    feature = ds.features[column]
    arr = ds.with_format("arrow")[:][column]
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if isinstance(feature, (Array2D, Array3D, Array4D, Array5D)):
        flat = arr.storage if isinstance(arr, pa.ExtensionArray) else arr
        for _ in feature.shape:
            flat = flat.flatten()
        return flat.to_numpy(zero_copy_only=False).reshape(n, *feature.shape)
    if isinstance(feature, List) and feature.length > 0:
        return arr.flatten().to_numpy(zero_copy_only=False).reshape(n, feature.length)
    return arr.to_numpy(zero_copy_only=False)


# ----------------------------------------------------------------------------------------------------
# Images -> fixed-size uint8 arrays
# ----------------------------------------------------------------------------------------------------


def _open(item: Any):
    """A PIL image from what a ``datasets`` Image column holds (decoded image or {bytes, path})."""
    from PIL import Image

    if isinstance(item, Image.Image):
        return item
    if isinstance(item, dict):
        if item.get("bytes"):
            return Image.open(io.BytesIO(item["bytes"]))
        if item.get("path"):
            return Image.open(item["path"])
    if isinstance(item, (np.ndarray, list)):  # array columns (Array2D/Array3D, nested lists)
        a = np.asarray(item)
        if a.dtype != np.uint8:
            if np.issubdtype(a.dtype, np.floating) and a.size and float(a.max()) <= 1.0:
                a = a * 255.0  # [0, 1] floats
            a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(a)
    raise DataError(
        f"cannot read an image from a value of type {type(item).__name__}",
        "point image_column at an image column",
    )


def images_to_array(items: Iterable[Any], image_size: int | None, mode: str) -> np.ndarray:
    """Decode ``items`` to one uint8 array (N, H, W) for ``mode="L"`` or (N, H, W, 3) for ``"RGB"``.

    Resized to ``image_size`` x ``image_size`` (bicubic) when given, else all images must share a size.
    """
    from PIL import Image

    out: list[np.ndarray] = []
    first: tuple[int, int] | None = None
    for item in items:
        img = _open(item)
        if img.mode != mode:
            if img.mode.startswith("I") or img.mode == "F":  # 16-bit / float greys: scale to 8 bits
                a = np.asarray(img, dtype=np.float64)
                lo, hi = float(a.min()), float(a.max())
                img = Image.fromarray(((a - lo) / (hi - lo or 1.0) * 255.0).round().astype(np.uint8))
            img = img.convert(mode)
        if image_size is not None and img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.Resampling.BICUBIC)
        if first is None:
            first = img.size
        elif img.size != first:
            raise DataError(
                f"images have different sizes ({first[0]}x{first[1]} and {img.size[0]}x{img.size[1]})",
                "pass image_size (--image-size N) to resize them all to N x N",
            )
        out.append(np.asarray(img, dtype=np.uint8))
    if not out:
        raise DataError("no images found", "check the folder or dataset has image files")
    return np.stack(out)


def _pick_mode(items: Iterable[Any]) -> str:
    """``"L"`` if every image is single-channel, else ``"RGB"`` (reads headers only)."""
    for item in items:
        if _open(item).mode not in _GREY_MODES:
            return "RGB"
    return "L"


def _image_feature(arr: np.ndarray):
    from datasets import Array2D, Array3D

    return Array2D(arr.shape[1:], "uint8") if arr.ndim == 3 else Array3D(arr.shape[1:], "uint8")


def _label_encoding(split_features: list[Any], split_values: list[Sequence[Any]]):
    """One ``ClassLabel`` for all splits and each split's int64 labels.

    Accepts ``ClassLabel`` columns (must agree across splits), integer labels (K = max + 1 over all
    splits) or string labels (classes = sorted union over all splits).
    """
    from datasets import ClassLabel

    first = split_features[0]
    if isinstance(first, ClassLabel):
        for feat in split_features[1:]:
            if not isinstance(feat, ClassLabel) or feat.names != first.names:
                raise DataError(
                    f"splits disagree on the classes ({first.names} vs {getattr(feat, 'names', feat)})",
                    "give every split the same class folders / label set",
                )
        return first, [np.asarray(list(v), dtype=np.int64) for v in split_values]
    lists = [list(v) for v in split_values]
    flat = [x for v in lists for x in v]
    if flat and all(isinstance(x, str) for x in flat):
        names = sorted(set(flat))
        index = {n: i for i, n in enumerate(names)}
        return ClassLabel(names=names), [np.asarray([index[x] for x in v], dtype=np.int64) for v in lists]
    try:
        ints = [np.asarray(v, dtype=np.int64).reshape(len(v)) for v in lists]
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"label column holds values that are neither integers nor strings (e.g. {flat[0]!r})",
            "pick a single-label column with label_column",
        ) from exc
    lo = min((int(a.min()) for a in ints if a.size), default=0)
    if lo < 0:
        raise DataError(f"label column has negative labels (min {lo})", "use labels 0..K-1")
    k = max((int(a.max()) for a in ints if a.size), default=-1) + 1
    return ClassLabel(num_classes=k), ints


def convert_to_schema(
    dsd,
    *,
    image_column: str = "image",
    label_column: str | None = "label",
    image_size: int | None = None,
    mode: str | None = None,
    dataset_name: str,
    config_name: str | None = None,
    description: str = "",
):
    """Any image ``DatasetDict`` -> hfssl's schema (uint8 ``image`` array + ``ClassLabel`` ``label``)."""
    from datasets import DatasetDict, DatasetInfo, Features, Image

    names = {str(n): _SPLIT_ALIASES.get(str(n).lower(), str(n)) for n in dsd}
    for split_name, ds in dsd.items():
        cols = ds.column_names
        for column, what in ((image_column, "image_column"), (label_column, "label_column")):
            if column is not None and column not in cols:
                raise DataError(
                    f"split {split_name!r} has no column {column!r} (columns: {', '.join(cols)})",
                    f"pass {what}=<column name>"
                    + (" (or label_column=None for unlabelled images)" if what == "label_column" else ""),
                )
    labels: dict[str, np.ndarray] = {}
    label_feature = None
    if label_column is not None:
        label_feature, encoded = _label_encoding(
            [ds.features[label_column] for ds in dsd.values()], [ds[label_column] for ds in dsd.values()]
        )
        labels = dict(zip(names.values(), encoded))
    info = DatasetInfo(description=description, dataset_name=dataset_name, config_name=config_name)
    splits = {}
    for split_name, ds in dsd.items():
        split = names[str(split_name)]
        if isinstance(ds.features[image_column], Image):
            ds = ds.cast_column(image_column, Image(decode=False))  # decode ourselves, once
            images = ds[image_column]
        else:  # array columns come back as NumPy arrays, keeping their dtype
            images = list(ds.with_format("numpy")[image_column])
        if mode is None:
            mode = _pick_mode(images)
        arr = images_to_array(images, image_size, mode)
        columns: dict[str, Any] = {"image": arr}
        feats: dict[str, Any] = {"image": _image_feature(arr)}
        if label_feature is not None:
            feats["label"] = label_feature
            columns["label"] = labels[split]
        splits[split] = dataset_from_arrays(columns, Features(feats), info=info, split=split)
    shapes = {s: d.features["image"].shape for s, d in splits.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(f"splits have different image sizes {shapes}", "pass image_size (--image-size N)")
    return DatasetDict(splits)


def load_imagefolder(
    path: str | os.PathLike,
    image_size: int | None = None,
    *,
    mode: str | None = None,
    cache_dir: str | None = None,
):
    """A local image folder as a ``DatasetDict`` in hfssl's schema (see module docstring).

    ``mode``: ``"L"`` (grey) or ``"RGB"``; default: grey if every image is single-channel.
    """
    import datasets

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"image folder {folder} does not exist or is not a directory", "pass imagefolder:PATH of a folder"
        )
    if mode not in (None, "L", "RGB"):
        raise DataError(f"mode {mode!r} is not supported", "use mode='L' (grey) or mode='RGB'")
    try:
        dsd = datasets.load_dataset("imagefolder", data_dir=str(folder), cache_dir=cache_dir)
    except (FileNotFoundError, ValueError) as exc:  # no images / unsupported layout
        raise DataError(
            f"cannot read image folder {folder}: {exc}",
            "put images in PATH/<class>/ or PATH/<split>/<class>/",
        ) from exc
    has_label = all("label" in ds.column_names for ds in dsd.values())
    return convert_to_schema(
        dsd,
        label_column="label" if has_label else None,
        image_size=image_size,
        mode=mode,
        dataset_name="imagefolder",
        config_name=str(folder),
        description=f"Images from the local folder {folder} (labels from its class sub-folders).",
    )


def load_hub(
    repo_id: str,
    image_size: int | None = None,
    *,
    config: str | None = None,
    revision: str | None = None,
    image_column: str = "image",
    label_column: str | None = "label",
    mode: str | None = None,
    cache_dir: str | None = None,
):
    """A Hub dataset ``ORG/NAME`` as a ``DatasetDict`` in hfssl's schema; offline it must be cached.

    Remote code is never run (``datasets`` 5 has no loading scripts; only data files are read).
    """
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    try:
        dsd = datasets.load_dataset(repo_id, config, revision=revision, cache_dir=cache_dir)
    except (ConnectionError, DatasetNotFoundError, FileNotFoundError) as exc:
        from hfssl.data.download import is_offline

        where = "offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set)" if is_offline() else "the Hub"
        raise DataError(
            f"Hub dataset {repo_id!r} could not be loaded from the local cache or {where}: {exc}",
            f"check the id, go online once (unset HF_HUB_OFFLINE) to cache it, e.g. "
            f"'hf download --repo-type dataset {repo_id}'",
        ) from exc
    if not isinstance(dsd, datasets.DatasetDict):
        dsd = datasets.DatasetDict({"train": dsd})
    return convert_to_schema(
        dsd,
        image_column=image_column,
        label_column=label_column,
        image_size=image_size,
        mode=mode,
        dataset_name=repo_id,
        config_name=config,
        description=f"Hugging Face Hub dataset {repo_id}" + (f" (config {config})" if config else ""),
    )
