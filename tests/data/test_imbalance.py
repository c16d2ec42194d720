"""make_imbalanced / label_fraction on real BreastMNIST and on small synthetic label sets."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from hfssl.data.imbalance import imbalanced_counts, label_fraction, make_imbalanced, read_labels
from hfssl.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def breast(data_dir) -> DatasetDict:
    from hfssl.data import load_source

    return load_source("breastmnist", data_dir=data_dir)


def _labels_dataset(counts: list[int], seed: int = 0) -> Dataset:
    """A tiny dataset with ``counts[c]`` rows of class ``c`` (shuffled) and a row id column."""
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(labels)
    features = Features(
        {"id": Value("int64"), "label": ClassLabel(names=[f"c{i}" for i in range(len(counts))])}
    )
    return Dataset.from_dict({"id": np.arange(len(labels)), "label": labels}, features=features)


def _counts(ds: Dataset) -> dict[int, int]:
    labels = read_labels(ds)
    return {int(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True))}


# ------------------------------------------------------------------------------ make_imbalanced


@pytest.mark.parametrize(
    ("ratio", "expected"), [(1, {0: 147, 1: 147}), (10, {0: 39, 1: 390}), (50, {0: 7, 1: 350})]
)
def test_breastmnist_ratio_is_exact(breast, ratio, expected):
    assert _counts(breast["train"]) == {0: 147, 1: 399}  # natural: malignant / benign
    result = make_imbalanced(breast, ratio, seed=0)
    counts = _counts(result.dataset["train"])
    assert counts == expected == result.class_counts
    assert Fraction(max(counts.values()), min(counts.values())) == ratio
    assert result.natural_counts == {0: 147, 1: 399}
    # the rows kept are the rows of the original split named by `indices`
    assert len(result.indices) == sum(expected.values())
    np.testing.assert_array_equal(
        read_labels(result.dataset["train"]), read_labels(breast["train"])[result.indices]
    )
    # validation/test untouched: the same objects, same fingerprints
    assert result.dataset["validation"] is breast["validation"]
    assert result.dataset["test"] is breast["test"]
    assert result.dataset["test"]._fingerprint == breast["test"]._fingerprint


def test_images_follow_the_rows(breast):
    result = make_imbalanced(breast["train"], 10, seed=3)
    assert isinstance(result.dataset, Dataset)
    sub = result.dataset.with_format("numpy")[:5]["image"]
    full = breast["train"].with_format("numpy")[result.indices[:5].tolist()]["image"]
    np.testing.assert_array_equal(sub, full)


def test_deterministic_and_nested(breast):
    a = make_imbalanced(breast, 10, seed=1)
    b = make_imbalanced(breast, 10, seed=1)
    c = make_imbalanced(breast, 10, seed=2)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)
    assert a.dataset["train"]._fingerprint == b.dataset["train"]._fingerprint
    # same seed: the ratio-50 set is inside the ratio-10 set
    d = make_imbalanced(breast, 50, seed=1)
    assert set(d.indices) <= set(a.indices)


def test_ratio_below_natural_subsamples_majority_only(breast):
    result = make_imbalanced(breast, 2, seed=0)
    assert result.class_counts == {0: 147, 1: 294}


def test_fractional_ratio_is_exact():
    counts = imbalanced_counts({0: 399, 1: 147}, 2.5)  # 5/2: counts 5k and 2k, k = min(399 // 5, 147 // 2)
    assert counts == {0: 365, 1: 146}
    assert Fraction(counts[0], counts[1]) == Fraction(5, 2)
    assert imbalanced_counts({0: 399, 1: 147}, "2.5") == counts


def test_ratio_errors(breast):
    with pytest.raises(ConfigError, match="below 1"):
        make_imbalanced(breast, 0.5)
    with pytest.raises(ConfigError) as err:
        make_imbalanced(breast, 400)
    assert "at most 399" in str(err.value)
    with pytest.raises(ConfigError):
        make_imbalanced(breast, float("nan"))
    with pytest.raises(ConfigError, match="no training rows"):
        imbalanced_counts({0: 10, 1: 0}, 2)


def test_multiclass_long_tail_profile():
    ds = _labels_dataset([100, 300, 60, 200])  # natural order by frequency: 1, 3, 0, 2
    result = make_imbalanced(ds, 10, seed=0)
    counts = _counts(result.dataset)
    assert counts == result.class_counts
    assert Fraction(max(counts.values()), min(counts.values())) == 10
    order = [1, 3, 0, 2]
    head = counts[1]
    for i, c in enumerate(order):  # n_i = head * 10 ** (-i / 3), rounded
        assert counts[c] == round(head * 10 ** (-i / 3))
    assert [counts[c] for c in order] == sorted(counts.values(), reverse=True)
    assert counts == {0: 65, 1: 300, 2: 30, 3: 139}


def test_multiclass_middle_class_limits_the_head():
    # class 3 (120 rows) cannot give round(300 * 10 ** (-1 / 3)) = 139, so the head shrinks to 250
    counts = imbalanced_counts({0: 100, 1: 300, 2: 60, 3: 120}, 10)
    assert counts == {0: 54, 1: 250, 2: 25, 3: 116}


def test_multiclass_balanced():
    result = make_imbalanced(_labels_dataset([20, 7, 11]), 1, seed=5)
    assert result.class_counts == {0: 7, 1: 7, 2: 7}


def test_multilabel_and_missing_column_rejected():
    features = Features({"label": Sequence(Value("uint8"), length=3)})
    ds = Dataset.from_dict({"label": [[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]]}, features=features)
    with pytest.raises(ConfigError, match="multi-label"):
        make_imbalanced(ds, 2)
    with pytest.raises(DataError, match="no label column"):
        make_imbalanced(ds, 2, label_column="target")
    with pytest.raises(DataError, match="no 'train' split"):
        make_imbalanced(DatasetDict({"test": ds}), 2)


# ------------------------------------------------------------------------------- label_fraction


@pytest.mark.parametrize(("fraction", "expected"), [(0.01, {0: 1, 1: 4}), (0.1, {0: 15, 1: 40})])
def test_label_fraction_stratified(breast, fraction, expected):
    result = label_fraction(breast, fraction, seed=0)
    assert _counts(result.dataset["train"]) == expected == result.class_counts
    assert result.dataset["validation"] is breast["validation"]


def test_label_fraction_nested_deterministic_and_full(breast):
    one = label_fraction(breast, 0.01, seed=4)
    ten = label_fraction(breast, 0.1, seed=4)
    assert set(one.indices) <= set(ten.indices)
    np.testing.assert_array_equal(ten.indices, label_fraction(breast, 0.1, seed=4).indices)
    assert not np.array_equal(ten.indices, label_fraction(breast, 0.1, seed=5).indices)
    full = label_fraction(breast, 1.0)
    assert full.dataset is breast
    assert len(full.indices) == 546


def test_label_fraction_keeps_every_class():
    result = label_fraction(_labels_dataset([500, 3, 1]), 0.01, seed=0)
    assert result.class_counts == {0: 5, 1: 1, 2: 1}


def test_label_fraction_bounds():
    ds = _labels_dataset([5, 5])
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ConfigError, match=r"outside \(0, 1\]"):
            label_fraction(ds, bad)


def test_label_fraction_multilabel_keeps_a_positive_per_label():
    rng = np.random.default_rng(0)
    labels = (rng.random((400, 5)) < [0.5, 0.3, 0.2, 0.1, 0.0025]).astype(np.uint8)
    labels[rng.integers(400), 4] = 1  # label 4 has one or two positives
    features = Features({"label": Sequence(Value("uint8"), length=5)})
    ds = Dataset.from_dict({"label": labels.tolist()}, features=features)
    result = label_fraction(ds, 0.01, seed=0)
    kept = labels[result.indices]
    assert (kept.sum(axis=0) >= 1).all()
    assert 4 <= len(result.indices) <= 4 + 5
