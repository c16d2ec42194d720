"""MedMNIST: the official table, loading real files, checks on bad files, the MD5 cache, downloads."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from datasets import Array2D, Array3D, ClassLabel, List, Value

from hfssl.data import download as dl
from hfssl.data.medmnist import load_medmnist, medmnist_features, read_medmnist_npz
from hfssl.data.medmnist_info import MEDMNIST, MEDMNIST_2D, MEDMNIST_3D, MedMNISTInfo, _file, get_info
from hfssl.data.sources import describe
from hfssl.errors import DataError


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test gets its own checksum cache (never the user's, never the data dir)."""
    monkeypatch.setenv("HFSSL_CACHE_DIR", str(tmp_path / "hfssl-cache"))


# ------------------------------------------------------------------------------------------ the table


def test_table_has_all_18_subsets_with_their_sizes():
    assert len(MEDMNIST) == 18 and len(MEDMNIST_2D) == 12 and len(MEDMNIST_3D) == 6
    for name, info in MEDMNIST.items():
        assert info.name == name and info.python_class.lower() == name
        assert info.sizes == ((28, 64, 128, 224) if info.spatial_dims == 2 else (28, 64))
        assert info.n_classes == len(info.labels) >= 2
        for f in info.files:
            assert re.fullmatch(r"[0-9a-f]{32}", f.md5)
            suffix = "" if f.size == 28 else f"_{f.size}"
            assert f.file_name == f"{name}{suffix}.npz"
            assert f.url == f"https://zenodo.org/records/10519652/files/{f.file_name}?download=1"
    assert len({f.md5 for i in MEDMNIST.values() for f in i.files}) == 12 * 4 + 6 * 2


def test_table_facts_match_the_data_readme():
    b = get_info("BreastMNIST")
    assert b.labels == ("malignant", "normal, benign") and b.task == "binary-class"
    assert b.n_samples == {"train": 546, "val": 78, "test": 156}
    assert b.file(28).md5 == "750601b1f35ba3300ea97c75c52ff8f6"
    assert b.file(64).md5 == "742edef2a1fd1524b2efff4bd7ba9364"
    a = get_info("adrenalmnist3d")
    assert a.labels == ("normal", "hyperplasia") and (a.n_train, a.n_val, a.n_test) == (1188, 98, 298)
    assert a.file(64).md5 == "17721accfe9fb005146a47d33bc54b2f"
    assert get_info("chestmnist").is_multilabel and get_info("retinamnist").task == "ordinal-regression"
    assert get_info("dermamnist").license == "CC BY-NC 4.0"


def test_unknown_subset_and_size_list_the_choices():
    with pytest.raises(DataError, match="pathmnist.*synapsemnist3d"):
        get_info("nosuchmnist")
    with pytest.raises(DataError, match="28, 64$|28, 64\\)"):
        get_info("adrenalmnist3d").file(128)


def test_features_follow_the_fixed_schema():
    assert medmnist_features(get_info("breastmnist"), 64)["image"] == Array2D((64, 64), "uint8")
    assert medmnist_features(get_info("pathmnist"), 28)["image"] == Array3D((28, 28, 3), "uint8")
    f3 = medmnist_features(get_info("organmnist3d"), 64)
    assert f3["image"] == Array3D((64, 64, 64), "uint8")
    assert f3["label"] == ClassLabel(names=list(get_info("organmnist3d").labels))
    assert medmnist_features(get_info("chestmnist"), 28)["label"] == List(Value("uint8"), length=14)


# ------------------------------------------------------------------------------------------ real files


def _stored_dtype(ds) -> str:
    t = ds.data.column("image").type.storage_type
    while hasattr(t, "value_type"):
        t = t.value_type
    return str(t)


def _counts(ds) -> list[int]:
    return np.bincount(np.asarray(ds["label"]), minlength=2).tolist()


def test_breastmnist_28_and_64_load_checked(data_dir):
    dsd28 = load_medmnist("breastmnist", 28, data_dir)
    dsd64 = load_medmnist("breastmnist", 64, data_dir)
    for size, dsd in ((28, dsd28), (64, dsd64)):
        assert list(dsd) == ["train", "validation", "test"]
        assert {s: len(d) for s, d in dsd.items()} == {"train": 546, "validation": 78, "test": 156}
        assert _counts(dsd["train"]) == [147, 399]
        assert _counts(dsd["validation"]) == [21, 57]
        assert _counts(dsd["test"]) == [42, 114]
        feats = dsd["train"].features
        assert feats["image"] == Array2D((size, size), "uint8")
        assert feats["label"] == ClassLabel(names=["malignant", "normal, benign"])
        # stored as uint8 (datasets' numpy/torch formatters widen integers to int64 unless given a dtype)
        assert _stored_dtype(dsd["test"]) == "uint8"
        row = dsd["test"].with_format("numpy", dtype=np.uint8)[0]
        assert row["image"].shape == (size, size) and row["image"].dtype == np.uint8
        info = dsd["train"].info
        assert (info.dataset_name, info.config_name, info.license) == ("medmnist", "breastmnist", "CC BY 4.0")
        assert "BreastMNIST" in info.description and "Yang" in info.citation
        assert (
            next(iter(info.download_checksums.values()))["checksum"] == get_info("breastmnist").file(size).md5
        )
    for split in dsd28:  # the two sizes hold the same samples, in the same order
        assert dsd28[split]["label"] == dsd64[split]["label"]
    # the arrays are the file's own, bit for bit
    raw = np.load(data_dir / "medmnist" / "breastmnist.npz")
    assert np.array_equal(dsd28["validation"].with_format("numpy")["image"], raw["val_images"])
    assert np.array_equal(np.asarray(dsd28["train"]["label"]), raw["train_labels"][:, 0])


def test_adrenalmnist3d_28_loads_as_volumes(data_dir):
    dsd = load_medmnist("adrenalmnist3d", 28, data_dir)
    assert {s: len(d) for s, d in dsd.items()} == {"train": 1188, "validation": 98, "test": 298}
    assert _counts(dsd["train"]) == [929, 259]
    assert _counts(dsd["validation"]) == [76, 22]
    assert _counts(dsd["test"]) == [229, 69]
    assert dsd["train"].features["image"] == Array3D((28, 28, 28), "uint8")
    assert _stored_dtype(dsd["train"]) == "uint8"
    vol = dsd["train"].with_format("numpy", dtype=np.uint8)[:4]["image"]
    assert vol.shape == (4, 28, 28, 28) and vol.dtype == np.uint8
    d = describe(dsd)
    assert (d.name, d.spatial_dims, d.in_chans, d.image_size) == ("medmnist:adrenalmnist3d", 3, 1, 28)
    assert d.imbalance_ratio == pytest.approx(929 / 259)


def test_second_load_is_fast_and_md5_is_cached_outside_the_data_dir(data_dir, monkeypatch, tmp_path):
    calls = []
    real = dl._hash_file
    monkeypatch.setattr(dl, "_hash_file", lambda p, a: calls.append(p) or real(p, a))
    load_medmnist("breastmnist", 28, data_dir)
    t0 = time.perf_counter()
    load_medmnist("breastmnist", 28, data_dir)
    elapsed = time.perf_counter() - t0
    assert len(calls) == 1, "the MD5 must be computed once and then read from the cache"
    assert elapsed < 1.0, f"cached BreastMNIST 28 load took {elapsed:.2f}s"
    cache = json.loads((tmp_path / "hfssl-cache" / "checksums.json").read_text())
    key = f"md5:{(data_dir / 'medmnist' / 'breastmnist.npz').resolve()}"
    assert cache[key]["digest"] == get_info("breastmnist").file(28).md5


def test_md5_cache_notices_a_changed_file(data_dir, tmp_path):
    copy = tmp_path / "data" / "medmnist" / "breastmnist.npz"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(data_dir / "medmnist" / "breastmnist.npz", copy)
    assert len(load_medmnist("breastmnist", 28, tmp_path / "data")["train"]) == 546
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, new content and mtime
    copy.write_bytes(bytes(raw))
    os.utime(copy, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(DataError, match="MD5 mismatch") as err:
        load_medmnist("breastmnist", 28, tmp_path / "data")
    assert "fix:" in str(err.value) and "zenodo" in str(err.value)


# ------------------------------------------------------------------------------------------ bad files

_FAKE = MedMNISTInfo(
    name="fakemnist",
    python_class="FakeMNIST",
    task="multi-class",
    n_channels=1,
    spatial_dims=2,
    labels=("a", "b", "c"),
    n_train=6,
    n_val=2,
    n_test=3,
    files=(_file(28, "fakemnist.npz", "0" * 32),),
    license="CC BY 4.0",
    description="a fake subset for tests",
)


def _fake_arrays(info: MedMNISTInfo = _FAKE, size: int = 28, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in info.n_samples.items():
        out[f"{split}_images"] = rng.integers(0, 256, (n, *info.image_shape(size)), dtype=np.uint8)
        width = info.n_classes if info.is_multilabel else 1
        hi = 2 if info.is_multilabel else info.n_classes
        out[f"{split}_labels"] = rng.integers(0, hi, (n, width), dtype=np.uint8)
    return out


def _register(monkeypatch, info: MedMNISTInfo, path: Path | None = None) -> MedMNISTInfo:
    if path is not None:  # give the entry the MD5 of the file we wrote
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        info = replace(info, files=tuple(replace(f, md5=md5) for f in info.files))
    monkeypatch.setitem(MEDMNIST, info.name, info)
    return info


def _write(root: Path, arrays: dict, name: str = "fakemnist.npz") -> Path:
    path = root / "medmnist" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def test_fake_subset_round_trips_bit_exact(tmp_path, monkeypatch):
    arrays = _fake_arrays()
    _register(monkeypatch, _FAKE, _write(tmp_path, arrays))
    dsd = load_medmnist("fakemnist", 28, tmp_path)
    for split, name in (("train", "train"), ("val", "validation"), ("test", "test")):
        got = dsd[name].with_format("numpy")[:]
        assert np.array_equal(got["image"], arrays[f"{split}_images"])
        assert np.array_equal(got["label"], arrays[f"{split}_labels"][:, 0])


def test_multilabel_subset_gets_a_fixed_length_list(tmp_path, monkeypatch):
    info = replace(
        _FAKE,
        name="fakechest",
        task="multi-label, binary-class",
        files=(_file(28, "fakechest.npz", "0" * 32),),
    )
    arrays = _fake_arrays(info)
    _register(monkeypatch, info, _write(tmp_path, arrays, "fakechest.npz"))
    dsd = load_medmnist("fakechest", 28, tmp_path)
    assert dsd["train"].features["label"] == List(Value("uint8"), length=3)
    assert np.array_equal(np.asarray(dsd["train"]["label"]), arrays["train_labels"])
    d = describe(dsd)
    assert d.task == "multi-label, binary-class" and d.class_names == ["a", "b", "c"]
    assert d.class_counts["train"] == arrays["train_labels"].sum(0).tolist()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.pop("val_labels"), "lacks the key"),
        (lambda a: a.__setitem__("train_labels", np.full((6, 1), 3, np.uint8)), "outside 0..2"),
        (lambda a: a.__setitem__("test_images", a["test_images"].astype(np.float32)), "expected uint8"),
        (lambda a: a.__setitem__("train_images", a["train_images"][:5]), r"expected uint8 \(6, 28, 28\)"),
        (lambda a: a.__setitem__("val_labels", np.zeros((2, 1), np.float32)), "expected integers"),
    ],
)
def test_bad_arrays_are_refused(tmp_path, monkeypatch, mutate, message):
    arrays = _fake_arrays()
    mutate(arrays)
    _register(monkeypatch, _FAKE, _write(tmp_path, arrays))
    with pytest.raises(DataError, match=message) as err:
        load_medmnist("fakemnist", 28, tmp_path)
    assert err.value.hint


def test_npz_with_a_flipped_byte_inside_an_array_is_refused(tmp_path, monkeypatch):
    path = _write(tmp_path, _fake_arrays())  # random pixels: the zip members are stored ~uncompressed
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    path.write_bytes(bytes(raw))
    _register(monkeypatch, _FAKE, path)
    with pytest.raises(DataError, match="is corrupt: reading .* arrays failed"):
        load_medmnist("fakemnist", 28, tmp_path)


def test_truncated_npz_is_refused(tmp_path, monkeypatch):
    path = _write(tmp_path, _fake_arrays())
    path.write_bytes(path.read_bytes()[:300])
    _register(monkeypatch, _FAKE, path)  # MD5 of the truncated file: the npz check must catch it
    with pytest.raises(DataError, match="not a readable .npz|corrupt"):
        load_medmnist("fakemnist", 28, tmp_path)
    with pytest.raises(DataError, match="not a readable .npz|corrupt"):
        read_medmnist_npz(path, _FAKE, 28)


def test_missing_file_offline_says_what_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        load_medmnist("breastmnist", 64, tmp_path / "nowhere")
    text = str(err.value)
    assert "breastmnist_64.npz" in text and str(tmp_path / "nowhere" / "medmnist") in text
    assert "https://zenodo.org/records/10519652/files/breastmnist_64.npz" in text and "HFSSL_DATA_DIR" in text
    assert not (tmp_path / "nowhere").exists()


def test_data_dir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(DataError, match="not a directory"):
        load_medmnist("breastmnist", 28, f)


# ------------------------------------------------------------------------------------------ downloads


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path/www``."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)


def _served_entry(monkeypatch, www: Path, url: str, md5: str | None = None) -> MedMNISTInfo:
    arrays = _fake_arrays(seed=3)
    np.savez_compressed(www / "fakemnist.npz", **arrays)
    real_md5 = hashlib.md5((www / "fakemnist.npz").read_bytes()).hexdigest()
    entry = replace(_FAKE.files[0], md5=md5 or real_md5, url=f"{url}/fakemnist.npz")
    return _register(monkeypatch, replace(_FAKE, files=(entry,)))


def test_download_success_verifies_and_caches(tmp_path, monkeypatch, server):
    www, url = server
    _online(monkeypatch)
    info = _served_entry(monkeypatch, www, url)
    root = tmp_path / "root"
    dsd = load_medmnist("fakemnist", 28, root)
    target = root / "medmnist" / "fakemnist.npz"
    assert target.read_bytes() == (www / "fakemnist.npz").read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["fakemnist.npz"]
    assert len(dsd["train"]) == 6
    cache = json.loads((tmp_path / "hfssl-cache" / "checksums.json").read_text())
    assert cache[f"md5:{target.resolve()}"]["digest"] == info.files[0].md5


def test_download_with_wrong_md5_leaves_nothing(tmp_path, monkeypatch, server):
    www, url = server
    _online(monkeypatch)
    _served_entry(monkeypatch, www, url, md5="f" * 32)
    root = tmp_path / "root"
    with pytest.raises(DataError, match="expected f{32}.*nothing was saved"):
        load_medmnist("fakemnist", 28, root)
    assert not root.exists(), "a failed download must not leave files or folders behind"
    (root / "medmnist").mkdir(parents=True)  # an existing folder stays, empty
    with pytest.raises(DataError):
        load_medmnist("fakemnist", 28, root)
    assert list((root / "medmnist").iterdir()) == []


def test_download_from_a_server_that_is_down(tmp_path, monkeypatch, server):
    www, url = server
    _online(monkeypatch)
    _served_entry(monkeypatch, www, url.rsplit(":", 1)[0] + ":9")  # port 9 (discard): connection refused
    root = tmp_path / "root"
    with pytest.raises(DataError, match="downloading it from .* failed") as err:
        load_medmnist("fakemnist", 28, root)
    assert "fix:" in str(err.value)
    assert not root.exists()


def test_offline_never_touches_the_network(tmp_path, monkeypatch, server):
    www, url = server
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    _served_entry(monkeypatch, www, url)
    with pytest.raises(DataError, match="downloads are off"):
        load_medmnist("fakemnist", 28, tmp_path / "root")
    assert not (tmp_path / "root").exists()
