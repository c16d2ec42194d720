"""load_source spec parsing, the data root, describe()."""

from __future__ import annotations

import math

import numpy as np
import pytest
from datasets import Array3D, ClassLabel, DatasetDict, Features

from hfssl.data.generic import dataset_from_arrays
from hfssl.data.paths import cache_dir, data_root, source_dir
from hfssl.data.sources import describe, load_source, parse_spec
from hfssl.errors import DataError


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HFSSL_CACHE_DIR", str(tmp_path / "hfssl-cache"))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("breastmnist", ("medmnist", "breastmnist")),
        ("BreastMNIST", ("medmnist", "breastmnist")),
        ("medmnist:AdrenalMNIST3D", ("medmnist", "adrenalmnist3d")),
        ("drive", ("drive", "")),
        ("imagefolder:/some/where", ("imagefolder", "/some/where")),
        ("hub:org/name", ("hub", "org/name")),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["nosuchmnist", "medmnist:nosuchmnist", "s3:bucket/x", "hub:", ""])
def test_unknown_sources_list_valid_choices(spec):
    with pytest.raises(DataError) as err:
        parse_spec(spec)
    text = str(err.value)
    assert "fix:" in text and "breastmnist" in text


def test_unknown_size_lists_valid_sizes(data_dir):
    with pytest.raises(DataError, match="no 224-pixel version.*28, 64"):
        load_source("adrenalmnist3d", image_size=224, data_dir=data_dir)


def test_spec_forms_give_the_same_dataset(data_dir):
    a = load_source("breastmnist", data_dir=data_dir)
    b = load_source("medmnist:BreastMNIST", image_size=28, data_dir=str(data_dir))
    assert a["test"].data.table.equals(b["test"].data.table)
    assert a["train"].features == b["train"].features


def test_drive_refuses_a_different_size(data_dir):
    with pytest.raises(DataError, match="584"):
        load_source("drive", image_size=64, data_dir=data_dir)


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HFSSL_DATA_DIR", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("HFSSL_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "hfssl" / "data"
    assert cache_dir() == tmp_path / "hfssl-cache"
    monkeypatch.delenv("HFSSL_CACHE_DIR")
    assert cache_dir() == tmp_path / "home" / ".cache" / "hfssl"


def test_unusable_data_dirs_are_refused(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    with pytest.raises(DataError, match="data dir .* is not a directory"):
        source_dir("medmnist", a_file)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "medmnist").write_text("")
    with pytest.raises(DataError, match="medmnist data folder .* is not a directory"):
        load_source("breastmnist", data_dir=tmp_path / "root")
    assert source_dir("drive", tmp_path / "missing") == tmp_path / "missing" / "drive"


def _toy(image_shape, labels_per_split, names) -> DatasetDict:
    feats = Features({"image": Array3D(image_shape, "uint8"), "label": ClassLabel(names=names)})
    return DatasetDict(
        {
            split: dataset_from_arrays(
                {"image": np.zeros((len(lab), *image_shape), np.uint8), "label": np.asarray(lab)}, feats
            )
            for split, lab in labels_per_split.items()
        }
    )


def test_describe_from_features_alone():
    rgb = describe(_toy((6, 6, 3), {"train": [0, 0, 0, 1, 2, 2], "test": [1, 2]}, ["a", "b", "c"]))
    assert (rgb.spatial_dims, rgb.in_chans, rgb.image_size, rgb.task) == (2, 3, 6, "multi-class")
    assert rgb.class_counts == {"train": [3, 1, 2], "test": [0, 1, 1]}
    assert rgb.split_sizes == {"train": 6, "test": 2} and rgb.imbalance_ratio == 3.0
    vol = describe(_toy((4, 4, 4), {"train": [0, 0, 0]}, ["x", "y"]))
    assert (vol.spatial_dims, vol.in_chans, vol.task) == (3, 1, "binary-class")
    assert math.isinf(vol.imbalance_ratio)  # class y absent from train
    assert any("imbalance ratio" in line for line in vol.lines())


def test_describe_knows_ordinal_medmnist_tasks():
    dsd = _toy((5, 5, 3), {"train": [0, 1, 2, 3, 4]}, list("01234"))
    for ds in dsd.values():
        ds.info.dataset_name, ds.info.config_name = "medmnist", "retinamnist"
    d = describe(dsd)
    assert d.task == "ordinal-regression" and d.name == "medmnist:retinamnist"
