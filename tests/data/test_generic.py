"""Generic sources: image folders, Hub datasets (offline error, column mapping), the Arrow builder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datasets import Array2D, Array3D, ClassLabel, Dataset, DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage

from hfssl.data.generic import (
    column_to_numpy,
    convert_to_schema,
    dataset_from_arrays,
    load_hub,
    load_imagefolder,
)
from hfssl.data.sources import describe, load_source
from hfssl.errors import DataError


def _write_folder(root: Path, mode: str = "L", size: tuple[int, int] = (12, 10), seed: int = 0) -> dict:
    """root/<split>/<class>/*.png with random pixels; returns {(split, class, idx): array}."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("benign", "malignant"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
                arr = rng.integers(0, 256, shape, dtype=np.uint8)
                PILImage.fromarray(arr, mode=mode).save(folder / f"{cls}_{i}.png")
                written[(split, cls, i)] = arr
    return written


def _as_set(arrays) -> set[bytes]:
    return {np.ascontiguousarray(a).tobytes() for a in arrays}


def test_grey_imagefolder_round_trips_pixels_and_labels(tmp_path):
    written = _write_folder(tmp_path / "imgs")
    dsd = load_imagefolder(tmp_path / "imgs", cache_dir=str(tmp_path / "hf-cache"))
    assert sorted(dsd) == ["test", "train"]
    assert dsd["train"].features["image"] == Array2D((10, 12), "uint8")
    assert dsd["train"].features["label"] == ClassLabel(names=["benign", "malignant"])
    for split in dsd:
        cols = dsd[split].with_format("numpy", dtype=np.uint8)[:]
        for label, cls in enumerate(["benign", "malignant"]):
            got = cols["image"][cols["label"] == label]
            want = [a for (s, c, _), a in written.items() if s == split and c == cls]
            assert _as_set(got) == _as_set(want)
    d = describe(dsd)
    assert d.name == f"imagefolder:{tmp_path / 'imgs'}" and (d.spatial_dims, d.in_chans) == (2, 1)
    assert d.class_counts == {"train": [3, 3], "test": [2, 2]} and d.imbalance_ratio == 1.0


def test_rgb_imagefolder_with_resize(tmp_path):
    _write_folder(tmp_path / "rgb", mode="RGB", size=(20, 16))
    dsd = load_source(f"imagefolder:{tmp_path / 'rgb'}", image_size=8, cache_dir=str(tmp_path / "hf-cache"))
    assert dsd["train"].features["image"] == Array3D((8, 8, 3), "uint8")
    d = describe(dsd)
    assert (d.spatial_dims, d.in_chans, d.image_size) == (2, 3, 8)


def test_imagefolder_with_mixed_sizes_needs_image_size(tmp_path):
    root = tmp_path / "mixed"
    for i, size in enumerate([(8, 8), (9, 7)]):
        (root / "a").mkdir(parents=True, exist_ok=True)
        PILImage.fromarray(np.zeros(size[::-1], np.uint8)).save(root / "a" / f"{i}.png")
    (root / "b").mkdir()
    PILImage.fromarray(np.zeros((8, 8), np.uint8)).save(root / "b" / "x.png")
    with pytest.raises(DataError, match="different sizes") as err:
        load_imagefolder(root, cache_dir=str(tmp_path / "hf-cache"))
    assert "image_size" in str(err.value)
    dsd = load_imagefolder(root, 6, cache_dir=str(tmp_path / "hf-cache"))
    assert dsd["train"].features["image"] == Array2D((6, 6), "uint8") and len(dsd["train"]) == 3


def test_missing_imagefolder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_source(f"imagefolder:{tmp_path / 'none'}")


def test_hub_dataset_not_cached_offline_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="'hfssl-test/not-cached'.*offline") as err:
        load_source("hub:hfssl-test/not-cached", cache_dir=str(tmp_path / "hf-cache"))
    assert "fix:" in str(err.value)
    with pytest.raises(DataError):
        load_hub("hfssl-test/not-cached", cache_dir=str(tmp_path / "hf-cache"))


def test_hub_style_columns_are_mapped_and_string_labels_encoded():
    """What ``load_hub`` does after downloading: Image() column + string labels -> schema."""
    rng = np.random.default_rng(1)
    pics = [rng.integers(0, 256, (5, 5, 3), dtype=np.uint8) for _ in range(4)]
    raw = DatasetDict(
        {
            "train": Dataset.from_dict(
                {"img": [PILImage.fromarray(p) for p in pics[:3]], "dx": ["nevus", "melanoma", "nevus"]},
                features=Features({"img": Image(), "dx": Value("string")}),
            ),
            "valid": Dataset.from_dict(
                {"img": [PILImage.fromarray(pics[3])], "dx": ["melanoma"]},
                features=Features({"img": Image(), "dx": Value("string")}),
            ),
        }
    )
    dsd = convert_to_schema(raw, image_column="img", label_column="dx", dataset_name="org/derm")
    assert sorted(dsd) == ["train", "validation"]
    assert dsd["train"].features["label"] == ClassLabel(names=["melanoma", "nevus"])
    assert list(dsd["train"]["label"]) == [1, 0, 1]
    got = dsd["train"].with_format("numpy", dtype=np.uint8)["image"]
    assert np.array_equal(got, np.stack(pics[:3]))
    with pytest.raises(DataError, match="no column 'image'.*img, dx"):
        convert_to_schema(raw, dataset_name="org/derm")
    assert describe(dsd).name == "org/derm"


def test_dataset_from_arrays_equals_from_dict_bit_exact():
    rng = np.random.default_rng(0)
    cols = {
        "image": rng.integers(0, 256, (7, 4, 5, 6), dtype=np.uint8),
        "multi": rng.integers(0, 2, (7, 3), dtype=np.uint8),
        "label": rng.integers(0, 4, 7),
        "id": [f"s{i}" for i in range(7)],
    }
    feats = Features(
        {
            "image": Array3D((4, 5, 6), "uint8"),
            "multi": List(Value("uint8"), length=3),
            "label": ClassLabel(num_classes=4),
            "id": Value("string"),
        }
    )
    fast = dataset_from_arrays(cols, feats, split="train")
    slow = Dataset.from_dict(cols, features=feats)
    assert fast.features == feats and fast.split == "train"
    assert fast.data.table.equals(slow.data.table)
    assert np.array_equal(fast.with_format("numpy", dtype=np.uint8)["image"], cols["image"])
    for name in ("image", "multi"):  # and back, in the stored dtype, also through a shuffle
        assert column_to_numpy(fast, name).dtype == np.uint8
        assert np.array_equal(column_to_numpy(fast, name), cols[name])
        order = [6, 2, 0, 5]
        assert np.array_equal(column_to_numpy(fast.select(order), name), cols[name][order])
    assert np.array_equal(column_to_numpy(fast, "label"), cols["label"])
    assert column_to_numpy(fast, "image", copy=True).flags.writeable
    with pytest.raises(ValueError, match="feature wants"):
        dataset_from_arrays({**cols, "image": cols["image"].astype(np.int16)}, feats)
