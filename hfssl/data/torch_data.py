"""The bridge from the Arrow schema of hfssl's datasets to torch tensors and DataLoaders.

Schema (see ``hfssl.data``): ``image`` is ``Array2D((H, W), uint8)`` (grey 2D), ``Array3D((H, W, 3),
uint8)`` (RGB 2D) or ``Array3D((D, H, W), uint8)`` (3D); ``label`` is a ``ClassLabel`` or, for
multi-label data, a fixed-length 0/1 sequence. Models take ``pixel_values`` float32 in [0, 1] shaped
``(B, C, H, W)`` or ``(B, C, D, H, W)``.

Speed (``benchmarks/data_throughput.py`` and one-off timings on this project's shared 2-core CPU
box, best of a few runs): the ``numpy`` formatter of ``datasets`` returns these uint8 arrays as
*int64* — whole train split of AdrenalMNIST3D-28 0.4-0.8 s, of AdrenalMNIST3D-64 ~10 s — while
reading the Arrow buffers directly (``arrow_to_numpy``: flatten the nested lists, reshape, bit-
identical uint8) takes 0.008 s and ~0.2 s (BreastMNIST-28/64: 0.001 s vs 0.006-0.015 s). Per-row
access through ``with_format("numpy")[i]`` costs ~0.7-1 ms a row (0.4 s for BreastMNIST train). So
``MedicalImageDataset`` converts the split *once* to a uint8 tensor and indexes it per batch
(``__getitems__``), keeping uint8 through the loader (4x less inter-process traffic than float32)
and converting to float in the collate step; splits larger than ``max_memory_bytes`` fall back to
reading each batch from Arrow (still through ``arrow_to_numpy``). ``benchmarks/data_throughput.py``
prints the resulting loader throughput: without augmentation the in-process loader (``num_workers=0``)
delivers ~350k images/s at 28 px and ~18k volumes/s at 28^3 there, more than worker processes on
two shared cores (IPC costs more than indexing); CPU augmentation is what workers help with. On a
shared CPU box, set ``torch.set_num_threads(1)``: with two intra-op threads on two busy cores the
same loader ran 4-65x slower (OpenMP threads waiting on each other).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from hfssl.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from datasets import Dataset

__all__ = [
    "Layout",
    "MedicalImageDataset",
    "arrow_to_numpy",
    "image_layout",
    "make_dataloader",
    "to_tensor_batch",
]

Layout = Literal["auto", "grey2d", "hwc", "3d"]
"""How an image array is laid out: ``grey2d`` (N, H, W) -> add a channel; ``hwc`` (N, H, W, C)
channel-last 2D (RGB) -> move channels first; ``3d`` (N, D, H, W) -> add a channel."""

_DEFAULT_MAX_MEMORY = 2 * 1024**3


# ----------------------------------------------------------------------------------------- arrow


def arrow_to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric Arrow column (plain, fixed-shape ``Array2D``/``Array3D`` extension, or nested
    equal-length lists) as one numpy array ``(N, *shape)`` with its own dtype (uint8 stays uint8).

    Flattens the list levels (which honours slices/offsets) and reshapes; raises ``DataError`` for
    nulls or ragged rows, which the fixed schema does not allow.
    """
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    fixed: tuple | None = None
    if isinstance(array.type, pa.ExtensionType):
        # datasets' Array2D..5D: the shape is part of the type and enforced on write, so the per-row
        # length check (a pass over every inner list, ~1 s for AdrenalMNIST3D-64) can be skipped.
        fixed = getattr(array.type, "shape", None)
        fixed = tuple(fixed) if fixed is not None and None not in tuple(fixed) else None
        array = array.storage
    shape: list[int] = [len(array)]
    values = array
    while (
        pa.types.is_list(values.type)
        or pa.types.is_large_list(values.type)
        or pa.types.is_fixed_size_list(values.type)
    ):
        if values.null_count:
            raise DataError("an image/label column holds missing (null) rows", "drop or fill the empty rows")
        level = len(shape) - 1
        if pa.types.is_fixed_size_list(values.type):
            shape.append(values.type.list_size)
        elif fixed is not None and level < len(fixed):
            shape.append(int(fixed[level]))
        else:
            lengths = values.value_lengths().to_numpy(zero_copy_only=False)
            if lengths.size and (lengths != lengths[0]).any():
                raise DataError(
                    "an array column has rows of different shapes",
                    "resize all images to one size before loading",
                )
            shape.append(int(lengths[0]) if lengths.size else 0)
        values = values.flatten()
    if values.null_count:
        raise DataError("an image/label column holds missing (null) values", "drop or fill the empty rows")
    if len(values) != math.prod(shape):
        raise DataError(
            f"an array column holds {len(values)} values where its shape {tuple(shape)} needs {math.prod(shape)}",
            "rebuild the dataset with the fixed image schema",
        )
    out = values.to_numpy(zero_copy_only=False)
    if not out.flags.writeable:  # zero-copy view of (possibly memory-mapped) Arrow memory: own it
        out = out.copy()
    return out.reshape(shape)


def image_layout(feature_or_array: Any) -> Layout:
    """The layout of an image column from its ``datasets`` feature or from a batch array ``(N, ...)``.

    ``Array2D`` -> ``grey2d``; ``Array3D`` with a last axis of at most 4 -> ``hwc`` (RGB/RGBA); other
    ``Array3D`` -> ``3d``. For arrays: 3 dims -> ``grey2d``; 4 dims -> ``hwc`` when the last axis is
    at most 4 and the others are larger, else ``3d``.
    """
    from datasets import Array2D, Array3D

    if isinstance(feature_or_array, Array2D):
        return "grey2d"
    if isinstance(feature_or_array, Array3D):
        return "hwc" if feature_or_array.shape[-1] <= 4 else "3d"
    shape = tuple(feature_or_array.shape)
    if len(shape) == 3:
        return "grey2d"
    if len(shape) == 4:
        return "hwc" if shape[-1] <= 4 < min(shape[1], shape[2]) else "3d"
    raise DataError(
        f"image batch of shape {shape} is neither (N, H, W), (N, H, W, C) nor (N, D, H, W)",
        "use the fixed image schema: Array2D (grey), Array3D (H, W, 3) (RGB) or Array3D (D, H, W) (3D)",
    )


def _channels_first(images: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(N, H, W) / (N, H, W, C) / (N, D, H, W) -> (N, C, H, W) / (N, C, D, H, W), same dtype."""
    if layout == "auto":
        layout = image_layout(images)
    if layout == "hwc":
        if images.ndim != 4:
            raise DataError(f"expected (N, H, W, C) images, got shape {tuple(images.shape)}", "check layout=")
        return images.permute(0, 3, 1, 2).contiguous()
    expected = 3 if layout == "grey2d" else 4
    if images.ndim != expected:
        raise DataError(
            f"expected {expected}-dim images for layout {layout!r}, got shape {tuple(images.shape)}",
            "check layout= (grey2d, hwc or 3d)",
        )
    return images.unsqueeze(1)


def _to_float01(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    if images.dtype == torch.bool:
        return images.to(torch.float32)
    if images.is_floating_point():
        return images.to(torch.float32)
    if not images.is_complex() and images.dtype != torch.bool:
        # datasets' numpy/torch formatters widen the schema's uint8 to int64: same grey levels
        if images.numel() and (int(images.min()) < 0 or int(images.max()) > 255):
            raise DataError(
                f"integer images hold values outside 0..255 (dtype {images.dtype})",
                "store images as uint8 grey levels (or float in [0, 1])",
            )
        return images.to(torch.float32).div_(255.0)
    raise DataError(
        f"images have dtype {images.dtype}; expected uint8 (or float in [0, 1])", "use uint8 images"
    )


def _as_tensor(value: Any) -> torch.Tensor:
    import pyarrow as pa

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        value = arrow_to_numpy(value)
    return torch.from_numpy(np.ascontiguousarray(np.asarray(value)))


def to_tensor_batch(
    batch: Mapping[str, Any] | pa.Table,
    image_column: str = "image",
    label_column: str = "label",
    layout: Layout = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(pixel_values, labels)`` from a batch of rows (``dataset[i:j]`` in any format, or an Arrow table).

    ``pixel_values``: float32 in [0, 1], ``(B, 1, H, W)`` for grey, ``(B, 3, H, W)`` for RGB (HWC ->
    CHW), ``(B, 1, D, H, W)`` for 3D. ``labels``: ``LongTensor`` ``(B,)`` (``(B, L)`` for multi-label),
    or ``None`` when the batch has no ``label_column``. Give ``layout`` when ``auto`` could be wrong
    (a 3D volume whose last axis is at most 4 voxels would be read as channel-last 2D).
    """
    import pyarrow as pa

    if isinstance(batch, pa.Table):
        columns = {name: batch.column(name) for name in batch.column_names}
    else:
        columns = dict(batch)
    if image_column not in columns:
        raise DataError(
            f"batch has no image column {image_column!r} (columns: {', '.join(columns)})",
            "pass image_column= with the name of the image column",
        )
    images = _channels_first(_as_tensor(columns[image_column]), layout)
    pixel_values = _to_float01(images)
    labels = None
    if label_column in columns:
        labels = _as_tensor(columns[label_column]).to(torch.long)
    return pixel_values, labels


# ------------------------------------------------------------------------------------------ dataset


class MedicalImageDataset(torch.utils.data.Dataset):
    """A map-style torch ``Dataset`` over one split; items are uint8, batches come from ``__getitems__``.

    ``split[i]`` -> ``{"image": uint8 (C, ...), "labels": long}``; ``split.__getitems__(indices)`` ->
    ``{"image": uint8 (B, C, ...), "labels": long (B,)}`` (what ``DataLoader`` calls with a batch of
    indices). ``make_dataloader``'s collate turns that into float ``pixel_values``.

    ``in_memory=None`` holds the whole split as one uint8 tensor when it takes at most
    ``max_memory_bytes`` (default 2 GiB) and reads each batch from Arrow otherwise (see the module
    docstring for the numbers behind this choice).
    """

    def __init__(
        self,
        split: Dataset,
        image_column: str = "image",
        label_column: str | None = "label",
        layout: Layout = "auto",
        in_memory: bool | None = None,
        max_memory_bytes: int = _DEFAULT_MAX_MEMORY,
    ) -> None:
        if image_column not in split.column_names:
            raise DataError(
                f"the dataset has no image column {image_column!r} (columns: {', '.join(split.column_names)})",
                "pass image_column= with the name of the image column",
            )
        self.split = split
        self.image_column = image_column
        self.label_column = label_column if label_column and label_column in split.column_names else None
        feature = split.features[image_column]
        if not hasattr(feature, "shape"):
            raise DataError(
                f"image column {image_column!r} is {type(feature).__name__}, not a fixed-shape array",
                "load data through hfssl.data.load_source, which stores images as Array2D/Array3D uint8",
            )
        self.layout: Layout = image_layout(feature) if layout == "auto" else layout
        shape = getattr(feature, "shape", None)
        row_bytes = math.prod(shape) if shape else None
        if in_memory is None:
            in_memory = row_bytes is None or len(split) * row_bytes <= max_memory_bytes
        self.in_memory = bool(in_memory)
        self._images: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None
        if self.in_memory:
            self._images, self._labels = self._read(None)

    def _read(self, indices: Sequence[int] | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        columns = [self.image_column] + ([self.label_column] if self.label_column else [])
        view = self.split.with_format("arrow", columns=columns)
        table = view[:] if indices is None else view[list(indices)]
        images = torch.from_numpy(arrow_to_numpy(table.column(self.image_column)))
        if self.layout == "auto":
            self.layout = image_layout(images)
        images = _channels_first(images, self.layout)
        labels = None
        if self.label_column:
            labels = torch.from_numpy(arrow_to_numpy(table.column(self.label_column)).astype(np.int64))
        return images, labels

    def __len__(self) -> int:
        return len(self.split)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        if self._images is not None:
            idx = torch.as_tensor(indices, dtype=torch.long)
            out = {"image": self._images[idx]}
            if self._labels is not None:
                out["labels"] = self._labels[idx]
            return out
        images, labels = self._read(indices)
        out = {"image": images}
        if labels is not None:
            out["labels"] = labels
        return out

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([int(index)])
        return {k: v[0] for k, v in batch.items()}


def _accepts_generator(fn: Callable[..., Any]) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "generator" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class _Collate:
    """uint8 batch dict -> ``{"pixel_values": float [0, 1], "labels": long}``, then ``augment``.

    Augmentation randomness: in the main process a generator seeded with ``seed``; in a DataLoader
    worker a generator seeded with the worker's torch seed (``base_seed + worker_id``, where
    ``base_seed`` comes from the loader's seeded generator and changes every epoch), so workers
    never repeat each other and a run is reproducible for its seed.
    """

    def __init__(self, augment: Callable[..., Any] | None, seed: int) -> None:
        self.augment = augment
        self._pass_generator = augment is not None and _accepts_generator(augment)
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._generator_key: int | None = None

    def _get_generator(self) -> torch.Generator:
        info = torch.utils.data.get_worker_info()
        key = self.seed if info is None else int(info.seed)
        if self._generator is None or self._generator_key != key:
            self._generator = torch.Generator().manual_seed(key % (2**63))
            self._generator_key = key
        return self._generator

    def __call__(self, batch: dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        if isinstance(batch, list):  # a Dataset without __getitems__ (e.g. a torch Subset)
            batch = {k: torch.stack([row[k] for row in batch]) for k in batch[0]}
        out: dict[str, Any] = {"pixel_values": _to_float01(batch["image"])}
        if "labels" in batch:
            out["labels"] = batch["labels"]
        if self.augment is not None:
            if self._pass_generator:
                result = self.augment(out["pixel_values"], generator=self._get_generator())
            else:  # a plain callable: it owns its randomness
                result = self.augment(out["pixel_values"])
            if isinstance(result, tuple):
                out["views"] = list(result)
            else:
                out["pixel_values"] = result
        return out


def make_dataloader(
    split: Dataset | MedicalImageDataset,
    batch_size: int = 128,
    shuffle: bool = False,
    sampler: torch.utils.data.Sampler | None = None,
    num_workers: int = 0,
    augment: Callable[..., Any] | None = None,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    image_column: str = "image",
    label_column: str | None = "label",
    persistent_workers: bool = False,
) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` yielding ``{"pixel_values": float32 [0, 1] (B, C, ...), "labels": long (B,)}``.

    ``augment`` is a batched transform from ``hfssl.data.augment`` (``get_augmentation("S3", ...)``)
    applied to the whole batch in the collate step; a view maker (``ContrastiveViews``) returns a
    tuple, which lands in ``batch["views"]`` while ``pixel_values`` stays un-augmented. For GPU
    training it is usually faster to pass ``augment=None`` here and call the transform on the device
    batch. ``shuffle`` uses a generator seeded with ``seed`` (a new order each epoch, the same orders
    for the same seed); ``sampler`` (e.g. ``ClassBalancedSampler``) excludes ``shuffle``.
    """
    if sampler is not None and shuffle:
        raise ConfigError("shuffle=True and a sampler were both given", "pass shuffle=False with a sampler")
    if batch_size < 1:
        raise ConfigError(f"batch_size {batch_size} is below 1", "pass batch_size >= 1")
    dataset = (
        split
        if isinstance(split, torch.utils.data.Dataset)
        else MedicalImageDataset(split, image_column=image_column, label_column=label_column)
    )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=_Collate(augment, seed),
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=persistent_workers and num_workers > 0,
    )
