"""``hfssl data info|list|verify`` on real data, and every bad input as a one-line error with a fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hfssl.cli.main import main


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HFSSL_CACHE_DIR", str(tmp_path / "hfssl-cache"))


def _one_line_error(capsys, rc: int, *needles: str) -> str:
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert "fix:" in line, line
    for needle in needles:
        assert needle in line, line
    return line


def _no_leftovers(*folders: Path) -> None:
    for folder in folders:
        if folder.exists():
            stray = [
                p.name
                for p in folder.rglob("*")
                if p.name.endswith((".tmp", ".part")) or p.name.startswith(".")
            ]
            assert not stray, f"partial files left in {folder}: {stray}"


# ------------------------------------------------------------------------------------------ happy paths


def test_data_alone_prints_help(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "info" in out and "list" in out and "verify" in out and "examples:" in out


def test_info_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["data", "info", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "hfssl data info breastmnist --image-size 64" in out and "--data-dir" in out


def test_info_breastmnist(capsys, data_dir):
    assert main(["data", "info", "breastmnist", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "medmnist:breastmnist" in out and "(MD5 verified)" in out
    assert "train 546, validation 78, test 156" in out
    lines = {
        line.split()[0] + line.split()[1]: line.split()[-3:]
        for line in out.splitlines()
        if line.startswith("  0:")
    }
    assert lines == {"0:malignant": ["147", "21", "42"]}
    assert "imbalance ratio (train, max/min): 2.714" in out
    assert "Array2D(shape=(28, 28), dtype='uint8')" in out


def test_info_3d_64_without_verification(capsys, data_dir):
    assert (
        main(
            [
                "data",
                "info",
                "adrenalmnist3d",
                "--image-size",
                "64",
                "--no-verify",
                "--data-dir",
                str(data_dir),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "adrenalmnist3d_64.npz  (MD5 not checked)" in out and "3D, 1 channel(s), size 64" in out
    assert "929" in out and "259" in out


def test_list_marks_present_files(capsys, data_dir):
    assert main(["data", "list", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line
        for line in out.splitlines()
        if line and not line.startswith(("-", "name", "data"))
    }
    assert len([r for r in rows if r.endswith(("mnist", "mnist3d"))]) == 18
    assert rows["breastmnist"].endswith("28* 64* 128 224")
    assert rows["adrenalmnist3d"].endswith("28* 64*")
    assert rows["pathmnist"].endswith("28 64 128 224") and "multi-class" in rows["pathmnist"]
    assert rows["drive"].endswith("584x565*")


def test_verify_all_present_files(capsys, data_dir):
    assert main(["data", "verify", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("verified  MD5") == 4 and "140/140 files OK" in out and "all 144 file(s) verified" in out


# ------------------------------------------------------------------------------------------ bad input


def test_missing_file(capsys, tmp_path):
    (tmp_path / "medmnist").mkdir()
    rc = main(["data", "info", "breastmnist", "--data-dir", str(tmp_path)])
    _one_line_error(capsys, rc, "breastmnist.npz is missing", str(tmp_path / "medmnist"), "zenodo.org")
    assert list((tmp_path / "medmnist").iterdir()) == []


def test_md5_mismatch(capsys, tmp_path, data_dir):
    (tmp_path / "medmnist").mkdir()
    bad = tmp_path / "medmnist" / "breastmnist.npz"
    shutil.copyfile(data_dir / "medmnist" / "breastmnist.npz", bad)
    raw = bytearray(bad.read_bytes())
    raw[1000] ^= 0x01
    bad.write_bytes(bytes(raw))
    rc = main(["data", "info", "breastmnist", "--data-dir", str(tmp_path)])
    _one_line_error(capsys, rc, "MD5 mismatch", "750601b1f35ba3300ea97c75c52ff8f6")
    rc = main(["data", "verify", "breastmnist", "--data-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert rc == 2 and f"MISMATCH  MD5  {bad}" in captured.out
    assert "1 problem(s)" in captured.err and "MD5 mismatch" in captured.err and "fix:" in captured.err
    _no_leftovers(tmp_path, tmp_path / "hfssl-cache")


def _fake_breast(root: Path, **override) -> Path:
    """A breastmnist.npz with the official shapes (zeros) and optional replaced/removed arrays."""
    arrays = {}
    for split, n in (("train", 546), ("val", 78), ("test", 156)):
        arrays[f"{split}_images"] = np.zeros((n, 28, 28), np.uint8)
        arrays[f"{split}_labels"] = np.zeros((n, 1), np.uint8)
    for key, value in override.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    path = root / "medmnist" / "breastmnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def test_fake_file_passes_the_checks_only_without_md5(capsys, tmp_path):
    _fake_breast(tmp_path)
    assert main(["data", "info", "breastmnist", "--no-verify", "--data-dir", str(tmp_path)]) == 0
    assert "0: malignant" in capsys.readouterr().out
    rc = main(["data", "info", "breastmnist", "--data-dir", str(tmp_path)])
    _one_line_error(capsys, rc, "MD5 mismatch")


def test_truncated_npz(capsys, tmp_path):
    path = _fake_breast(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    rc = main(["data", "info", "breastmnist", "--no-verify", "--data-dir", str(tmp_path)])
    _one_line_error(capsys, rc, "breastmnist.npz is not a readable .npz file")


def test_wrong_keys(capsys, tmp_path):
    _fake_breast(tmp_path, test_labels=None, extra=np.zeros(3))
    rc = main(["data", "info", "breastmnist", "--no-verify", "--data-dir", str(tmp_path)])
    _one_line_error(capsys, rc, "lacks the key(s) test_labels")


def test_labels_out_of_range(capsys, tmp_path):
    labels = np.zeros((78, 1), np.uint8)
    labels[5] = 2
    _fake_breast(tmp_path, val_labels=labels)
    rc = main(["data", "info", "breastmnist", "--no-verify", "--data-dir", str(tmp_path)])
    _one_line_error(capsys, rc, "val_labels range from 0 to 2", "outside 0..1")


def test_unknown_subset(capsys):
    rc = main(["data", "info", "nosuchmnist"])
    _one_line_error(capsys, rc, "unknown data source 'nosuchmnist'", "breastmnist")


def test_unknown_size(capsys, data_dir):
    rc = main(["data", "info", "breastmnist", "--image-size", "100", "--data-dir", str(data_dir)])
    _one_line_error(capsys, rc, "no 100-pixel version", "28, 64, 128, 224")


def test_data_dir_is_a_regular_file(capsys, tmp_path):
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    for argv in (["info", "breastmnist"], ["list"], ["verify"]):
        rc = main(["data", *argv, "--data-dir", str(a_file)])
        _one_line_error(capsys, rc, f"data dir {a_file} is not a directory")


def test_data_dir_that_does_not_exist(capsys, tmp_path):
    missing = tmp_path / "nope"
    rc = main(["data", "info", "adrenalmnist3d", "--data-dir", str(missing)])
    _one_line_error(capsys, rc, "adrenalmnist3d.npz is missing", str(missing / "medmnist"))
    assert not missing.exists()


def test_unknown_data_command(capsys):
    rc = main(["data", "frobnicate"])
    _one_line_error(capsys, rc, "unknown data command 'frobnicate'")
