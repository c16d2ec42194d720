"""One entry point for every data source, and a description of what a ``DatasetDict`` holds.

``load_source(spec)`` accepts:

* a MedMNIST subset name, ``breastmnist`` or ``medmnist:breastmnist`` (any of the 18);
* ``drive`` (DRIVE vessel segmentation);
* ``imagefolder:PATH`` (a local folder of images, class sub-folders as labels);
* ``hub:ORG/NAME`` (a dataset on the Hugging Face Hub, or in its cache when offline);
* ``graded:<subset>`` (a MedMNIST subset with a synthetic lesion whose size is an ordinal grade,
  ``hfssl.data.graded``: the graded test bed).

``describe(dsd)`` reports name, image size, dimensions, channels, task, class names, split sizes,
class counts and the train imbalance ratio from the ``Features`` and ``DatasetInfo`` alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hfssl.data.medmnist_info import MEDMNIST, get_info
from hfssl.errors import DataError

SPEC_FORMS: tuple[str, ...] = (
    "<medmnist subset>",
    "medmnist:<subset>",
    "drive",
    "imagefolder:PATH",
    "hub:ORG/NAME",
    "graded:<subset>",
)


def _valid_choices() -> str:
    return f"one of: {', '.join(SPEC_FORMS)}; MedMNIST subsets: {', '.join(MEDMNIST)}"


def parse_spec(spec: str) -> tuple[str, str]:
    """``(kind, argument)`` with kind ``medmnist``/``graded``/``drive``/``imagefolder``/``hub``; ``DataError`` if unknown."""
    text = spec.strip()
    kind, sep, arg = text.partition(":")
    kind_l = kind.lower()
    if sep:
        if kind_l == "medmnist":
            return "medmnist", get_info(arg).name
        if kind_l == "graded":
            return "graded", get_info(arg or "breastmnist").name
        if kind_l in ("imagefolder", "hub"):
            if not arg:
                raise DataError(
                    f"data source {spec!r} names no {'folder' if kind_l == 'imagefolder' else 'dataset'}",
                    _valid_choices(),
                )
            return kind_l, arg
        raise DataError(f"unknown data source {spec!r}", f"use {_valid_choices()}")
    if text.lower() == "drive":
        return "drive", ""
    if text.lower() in MEDMNIST:
        return "medmnist", text.lower()
    raise DataError(f"unknown data source {spec!r}", f"use {_valid_choices()}")


def load_source(
    spec: str,
    image_size: int | None = None,
    data_dir: str | os.PathLike | None = None,
    **kwargs: Any,
):
    """Load any source as a ``DatasetDict`` in hfssl's schema.

    ``image_size``: for MedMNIST the file's size (default 28); for image folders and Hub datasets
    the size images are resized to (default: keep, all must then match); DRIVE has one size
    (584x565) and refuses another. Extra keyword arguments go to the source's loader
    (``load_medmnist``, ``load_drive``, ``load_imagefolder``, ``load_hub``).
    """
    kind, arg = parse_spec(spec)
    if kind == "medmnist":
        from hfssl.data.medmnist import load_medmnist

        return load_medmnist(arg, 28 if image_size is None else int(image_size), data_dir, **kwargs)
    if kind == "graded":
        from hfssl.data.graded import load_graded

        return load_graded(arg, 28 if image_size is None else int(image_size), data_dir, **kwargs)
    if kind == "drive":
        from hfssl.data.drive import DRIVE_HEIGHT, DRIVE_WIDTH, load_drive

        if image_size is not None:
            raise DataError(
                f"DRIVE comes at its native {DRIVE_WIDTH}x{DRIVE_HEIGHT} only (image_size={image_size} asked)",
                "leave image_size unset and crop/resize in the augmentation pipeline",
            )
        return load_drive(data_dir, **kwargs)
    if kind == "imagefolder":
        from hfssl.data.generic import load_imagefolder

        return load_imagefolder(arg, image_size, **kwargs)
    from hfssl.data.generic import load_hub

    return load_hub(arg, image_size, **kwargs)


@dataclass
class DatasetDescription:
    """What a ``DatasetDict`` holds, derived from its features and metadata."""

    name: str
    image_size: int | tuple[int, ...]
    """Side length when all spatial sides are equal, else the spatial shape (DRIVE: (584, 565))."""
    spatial_dims: int
    in_chans: int
    task: str
    class_names: list[str]
    split_sizes: dict[str, int]
    class_counts: dict[str, list[int]] = field(default_factory=dict)
    """Per split, one count per class: samples (single-label), positives (multi-label) or pixels (segmentation)."""
    imbalance_ratio: float = float("nan")
    """max / min class count in ``train`` (inf if a class is absent, nan if there are no labels)."""
    image_feature: str = ""

    def lines(self) -> list[str]:
        """A human-readable report (used by ``hfssl data info``)."""
        size = self.image_size if isinstance(self.image_size, int) else "x".join(map(str, self.image_size))
        out = [
            f"dataset:      {self.name}",
            f"task:         {self.task}",
            f"image:        {self.spatial_dims}D, {self.in_chans} channel(s), size {size}  ({self.image_feature})",
            "splits:       " + ", ".join(f"{s} {n}" for s, n in self.split_sizes.items()),
        ]
        if self.class_names:
            unit = {"segmentation": " (pixels)", "multi-label, binary-class": " (positives)"}.get(
                self.task, ""
            )
            splits = list(self.class_counts)
            width = max(len(f"{i}: {n}") for i, n in enumerate(self.class_names))
            col = max([12, *(len(s) + 1 for s in splits)])
            out.append(f"class counts{unit}:")
            out.append("  " + " " * width + "".join(f"{s:>{col}}" for s in splits))
            for i, cname in enumerate(self.class_names):
                label = f"{i}: {cname}"
                out.append(
                    f"  {label:<{width}}" + "".join(f"{self.class_counts[s][i]:>{col}}" for s in splits)
                )
            out.append(f"imbalance ratio (train, max/min): {self.imbalance_ratio:.3f}")
        return out


def _image_geometry(feature: Any) -> tuple[int, int, tuple[int, ...]]:
    """(spatial_dims, in_chans, spatial shape) of an image feature of hfssl's schema."""
    from datasets import Array2D, Array3D, Image

    if isinstance(feature, Array2D):
        return 2, 1, tuple(feature.shape)
    if isinstance(feature, Array3D):
        shape = tuple(feature.shape)
        # (H, W, 3) RGB 2D vs (D, H, W) volume: volumes here are never 3 voxels deep on their last axis.
        if shape[-1] in (3, 4) and len(set(shape)) > 1:
            return 2, shape[-1], shape[:-1]
        return 3, 1, shape
    if isinstance(feature, Image):
        raise DataError(
            "this dataset still has undecoded Image() images", "load it through hfssl.data.load_source"
        )
    raise DataError(
        f"unsupported image feature {feature!r}", "use a dataset loaded with hfssl.data.load_source"
    )


def _dataset_name(info: Any) -> str:
    name, config = info.dataset_name, info.config_name
    if name and config and config not in ("default", name):
        return f"{name}:{config}"
    return name or config or "unknown"


def describe(dsd) -> DatasetDescription:
    """Describe a ``DatasetDict`` (MedMNIST, DRIVE, image folder or Hub) from its features alone.

    Only the label or mask columns are read (to count classes); images are not touched.
    """
    from datasets import ClassLabel, List

    if not len(dsd):
        raise DataError("the dataset has no splits", "load it with hfssl.data.load_source")
    first = next(iter(dsd.values()))
    features = first.features
    if "image" not in features:
        raise DataError(
            f"dataset has no 'image' column (columns: {', '.join(features)})",
            "load it with hfssl.data.load_source",
        )
    dims, chans, shape = _image_geometry(features["image"])
    info = first.info
    name = _dataset_name(info)
    label = features.get("label")
    counts: dict[str, list[int]] = {}
    if "mask" in features:
        task, class_names = (
            "segmentation",
            ["background", "vessel" if info.dataset_name == "drive" else "foreground"],
        )
        for split, ds in dsd.items():
            fg = sum(
                int(np.count_nonzero(batch["mask"])) for batch in ds.with_format("numpy").iter(batch_size=8)
            )
            total = len(ds) * int(np.prod(features["mask"].shape))
            counts[split] = [total - fg, fg]
    elif isinstance(label, ClassLabel):
        class_names = list(label.names)
        task = "binary-class" if label.num_classes == 2 else "multi-class"
        if info.dataset_name == "medmnist" and info.config_name in MEDMNIST:  # e.g. RetinaMNIST: ordinal
            task = MEDMNIST[info.config_name].task
        elif info.dataset_name == "graded":  # hfssl.data.graded: the graded test bed
            task = "ordinal-regression"
        for split, ds in dsd.items():
            values = np.asarray(ds.with_format("numpy")["label"], dtype=np.int64)
            counts[split] = np.bincount(values, minlength=label.num_classes).tolist()
    elif isinstance(label, List) and label.length > 0:
        task = "multi-label, binary-class"
        if info.dataset_name == "medmnist" and info.config_name in MEDMNIST:
            class_names = list(MEDMNIST[info.config_name].labels)
        else:
            class_names = [f"label_{i}" for i in range(label.length)]
        for split, ds in dsd.items():
            values = np.asarray(ds.with_format("numpy")["label"]).reshape(len(ds), label.length)
            counts[split] = values.sum(axis=0).astype(np.int64).tolist()
    elif label is None:
        task, class_names = "unlabelled", []
    else:
        raise DataError(f"unsupported label feature {label!r}", "use a ClassLabel column named 'label'")
    ratio = float("nan")
    train_counts = counts.get("train")
    if train_counts:
        lo, hi = min(train_counts), max(train_counts)
        ratio = float("inf") if lo == 0 else hi / lo
    size: int | tuple[int, ...] = shape[0] if len(set(shape)) == 1 else shape
    return DatasetDescription(
        name=name,
        image_size=size,
        spatial_dims=dims,
        in_chans=chans,
        task=task,
        class_names=class_names,
        split_sizes={str(s): len(ds) for s, ds in dsd.items()},
        class_counts=counts,
        imbalance_ratio=ratio,
        image_feature=repr(features["image"]),
    )
