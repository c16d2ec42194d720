"""DRIVE: 20/20 images with binary vessel and FOV masks, validation carving, SHA256SUMS checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from datasets import Array2D, Array3D, Value
from PIL import Image

from hfssl.data.drive import load_drive, verify_drive
from hfssl.data.sources import describe
from hfssl.errors import DataError


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HFSSL_CACHE_DIR", str(tmp_path / "hfssl-cache"))


@pytest.fixture(scope="module")
def drive(data_dir):
    if not (data_dir / "drive").is_dir():
        pytest.skip("DRIVE not found in the data root")
    return load_drive(data_dir)


def test_drive_has_20_train_and_20_test_with_binary_masks(drive, data_dir):
    assert list(drive) == ["train", "test"]
    assert [len(drive[s]) for s in drive] == [20, 20]
    feats = drive["train"].features
    assert feats["image"] == Array3D((584, 565, 3), "uint8")
    assert feats["mask"] == Array2D((584, 565), "uint8") and feats["fov"] == Array2D((584, 565), "uint8")
    assert feats["id"] == Value("string")
    assert drive["train"]["id"] == [f"{i:02d}" for i in range(21, 41)]
    assert drive["test"]["id"] == [f"{i:02d}" for i in range(1, 21)]
    stats = {}
    for split in drive:
        cols = drive[split].with_format("numpy", dtype=np.uint8)[:]
        assert set(np.unique(cols["mask"])) == {0, 1} and set(np.unique(cols["fov"])) == {0, 1}
        stats[split] = (cols["mask"].mean(), cols["fov"].mean())
        # unchanged pixels: first image equals the TIFF read directly
        first = drive[split]["id"][0]
        name = f"{first}_training.tif" if split == "train" else f"{first}_test.tif"
        folder = "training" if split == "train" else "test"
        raw = np.asarray(Image.open(data_dir / "drive" / folder / "images" / name))
        assert np.array_equal(cols["image"][0], raw)
    # README: vessels 8.6 % (train) / 8.8 % (test) of the image, FOV about 68.8 %
    assert stats["train"][0] == pytest.approx(0.086, abs=0.001)
    assert stats["test"][0] == pytest.approx(0.088, abs=0.001)
    for split in drive:
        assert stats[split][1] == pytest.approx(0.688, abs=0.005)
    d = describe(drive)
    assert (d.name, d.task, d.spatial_dims, d.in_chans, d.image_size) == (
        "drive",
        "segmentation",
        2,
        3,
        (584, 565),
    )
    assert d.class_names == ["background", "vessel"]
    assert d.imbalance_ratio == pytest.approx((1 - stats["train"][0]) / stats["train"][0], rel=1e-6)


def test_validation_split_is_carved_with_a_fixed_seed(drive, data_dir):
    a = load_drive(data_dir, validation_size=4, seed=7, verify=True)
    assert [len(a[s]) for s in ("train", "validation", "test")] == [16, 4, 20]
    same_seed = drive["train"].train_test_split(test_size=4, seed=7)["test"]["id"]
    assert list(a["validation"]["id"]) == sorted(same_seed)
    other_seed = drive["train"].train_test_split(test_size=4, seed=8)["test"]["id"]
    assert sorted(other_seed) != list(a["validation"]["id"])
    assert not set(a["validation"]["id"]) & set(a["train"]["id"])
    assert sorted([*a["train"]["id"], *a["validation"]["id"]]) == [f"{i:02d}" for i in range(21, 41)]
    with pytest.raises(DataError, match="validation_size"):
        load_drive(data_dir, validation_size=1.5)


def _linked_copy(src: Path, dst: Path) -> None:
    """A DRIVE tree of symlinks (cheap), so single files can be replaced."""
    for path in src.rglob("*"):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)


def test_sha256sums_catch_a_changed_file_and_missing_files(data_dir, tmp_path):
    root = tmp_path / "root"
    _linked_copy(data_dir / "drive", root / "drive")
    assert set(verify_drive(root / "drive").values()) == {"verified"}
    victim = root / "drive" / "training" / "1st_manual" / "21_manual1.gif"
    data = bytearray(victim.read_bytes())
    victim.unlink()
    data[-2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(DataError, match="fail SHA256SUMS.*21_manual1.gif"):
        load_drive(root, verify=True)
    assert verify_drive(root / "drive")["training/1st_manual/21_manual1.gif"] == "mismatch"
    (root / "drive" / "test" / "mask" / "05_test_mask.gif").unlink()
    with pytest.raises(DataError, match="05_test_mask.gif is missing") as err:
        load_drive(root)
    assert "fix:" in str(err.value)


def test_missing_drive_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="DRIVE folder .* does not exist"):
        load_drive(tmp_path)
    shutil.rmtree(tmp_path)
