"""Imbalanced and label-scarce training sets (the paper's first study, "data imbalance").

Two functions build the training regimes of the study from a data source's train split:

* ``make_imbalanced(dataset, ratio, seed)`` — a train split whose majority:minority count ratio is
  *exactly* ``ratio`` (a long-tailed profile for more than two classes);
* ``label_fraction(dataset, fraction, seed)`` — a stratified 1 % / 10 % / 100 % subset.

Both take a ``datasets.Dataset`` (the train split) or a ``DatasetDict`` (then only ``train`` is
replaced; ``validation``/``test`` are the very same objects, never touched) and return a
``SubsetResult`` named tuple ``(dataset, class_counts, indices, natural_counts)`` so callers can
record what they trained on; the counts are also logged at INFO level.

Row choice is nested for one seed: each class gets one random permutation (drawn in class-id order from
``numpy.random.default_rng(seed)``) and a subset takes its first ``n_c`` rows, so with the same seed
the ratio-50 set is contained in the ratio-10 set and the 1 % set in the 10 % set. Kept rows stay in
their original order (``Dataset.select`` of sorted indices), which keeps Arrow reads contiguous.

Own code rather than ``sklearn.model_selection.train_test_split(stratify=...)``: the study needs exact
per-class counts (an exact rational ratio, at least one sample per class, nested subsets), which the
sklearn splitter neither guarantees nor exposes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from hfssl.errors import ConfigError, DataError
from hfssl.utils.logging import get_logger

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset, DatasetDict

logger = get_logger(__name__)

__all__ = [
    "SubsetResult",
    "class_counts",
    "imbalanced_counts",
    "label_fraction",
    "make_imbalanced",
    "read_labels",
]


class SubsetResult(NamedTuple):
    """What ``make_imbalanced`` / ``label_fraction`` return (unpack it or use the fields).

    ``dataset``: the new train split, or a ``DatasetDict`` with only ``train`` replaced.
    ``class_counts``: class id -> number of kept train rows (multi-label: label index -> positives).
    ``indices``: sorted row indices of the original train split that were kept.
    ``natural_counts``: the same counts before subsampling.
    """

    dataset: Dataset | DatasetDict
    class_counts: dict[int, int]
    indices: np.ndarray
    natural_counts: dict[int, int]


# --------------------------------------------------------------------------------------------- helpers


def _train_split(dataset: Dataset | DatasetDict) -> tuple[Dataset, bool]:
    """The train split and whether ``dataset`` was a ``DatasetDict``."""
    from datasets import DatasetDict

    if isinstance(dataset, DatasetDict):
        if "train" not in dataset:
            raise DataError(
                f"the DatasetDict has no 'train' split (splits: {', '.join(dataset) or 'none'})",
                "pass a DatasetDict with a 'train' split, or the train Dataset itself",
            )
        return dataset["train"], True
    return dataset, False


def _rebuild(original: Dataset | DatasetDict, new_train: Dataset, is_dict: bool) -> Dataset | DatasetDict:
    if not is_dict:
        return new_train
    from datasets import DatasetDict

    # Same split objects for every split but train: validation/test are never touched.
    return DatasetDict({name: (new_train if name == "train" else split) for name, split in original.items()})


def read_labels(dataset: Dataset, label_column: str = "label") -> np.ndarray:
    """The label column as an int64 array: ``(N,)`` for single-label, ``(N, L)`` for multi-label.

    Reads through Arrow with only the label column selected, so no image bytes are decoded (the
    ``numpy`` formatter is much slower on large splits).
    """
    if label_column not in dataset.column_names:
        raise DataError(
            f"the dataset has no label column {label_column!r} (columns: {', '.join(dataset.column_names)})",
            "pass label_column= with the name of the column that holds the class labels",
        )
    table = dataset.with_format("arrow", columns=[label_column])[:]
    column = table.column(label_column).combine_chunks()
    from hfssl.data.torch_data import arrow_to_numpy

    return arrow_to_numpy(column).astype(np.int64, copy=False)


def class_counts(labels: np.ndarray, num_classes: int | None = None) -> dict[int, int]:
    """Class id -> count (``(N,)`` labels) or label index -> positives (``(N, L)`` multi-label)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return {i: int(c) for i, c in enumerate((labels > 0).sum(axis=0))}
    if labels.size and labels.min() < 0:
        raise DataError(
            "labels contain negative values (unlabelled rows?)", "drop unlabelled rows before subsampling"
        )
    n = int(labels.max()) + 1 if labels.size else 0
    counts = np.bincount(labels, minlength=max(n, num_classes or 0))
    return {i: int(c) for i, c in enumerate(counts)}


def _num_classes(dataset: Dataset, label_column: str) -> int | None:
    from datasets import ClassLabel

    feature = dataset.features.get(label_column)
    return feature.num_classes if isinstance(feature, ClassLabel) else None


def _as_fraction(value: float | int | str | Fraction, what: str) -> Fraction:
    """Exact rational value of ``value`` (floats through their shortest decimal repr: 2.5 -> 5/2)."""
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError
            return Fraction(repr(value))
        return Fraction(value)
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise ConfigError(
            f"{what} {value!r} is not a finite number", f"pass a number, e.g. {what}=10"
        ) from exc


def _class_permutations(labels: np.ndarray, classes: Sequence[int], seed: int) -> dict[int, np.ndarray]:
    """One seeded random order of each class's rows (drawn in class-id order, so nested subsets)."""
    rng = np.random.default_rng(seed)
    return {c: rng.permutation(np.flatnonzero(labels == c)) for c in sorted(classes)}


def _names(dataset: Dataset, label_column: str) -> list[str] | None:
    from datasets import ClassLabel

    feature = dataset.features.get(label_column)
    return list(feature.names) if isinstance(feature, ClassLabel) else None


def _fmt_counts(counts: dict[int, int], names: list[str] | None) -> str:
    return ", ".join(f"{names[c] if names and c < len(names) else c}: {n}" for c, n in counts.items())


# ----------------------------------------------------------------------------------------- imbalance


def imbalanced_counts(counts: dict[int, int], ratio: float | int | str | Fraction) -> dict[int, int]:
    """Per-class target counts whose max/min is exactly ``ratio`` (pure arithmetic, no data).

    Classes are ordered by natural frequency (most frequent first; ties by class id). With ``C``
    classes the profile is the long-tailed-CIFAR one, ``n_i = H * ratio ** (-i / (C - 1))`` for the
    ``i``-th most frequent class, where the head count ``H`` and the tail count ``T = H / ratio`` are
    integers: writing ``ratio = p / q`` in lowest terms, ``H = k * p`` and ``T = k * q``. The middle
    classes get ``round(n_i)`` (which lies in ``[T, H]``). ``k`` is the largest integer for which no
    class needs more rows than it has, so the result keeps as many rows as an exact ratio allows.

    Binary case: ``k = min(n_major // p, n_minor // q)``. On BreastMNIST (399 benign / 147 malignant)
    ratio 10 gives 390:39 (the minority is cut to ~399/10 and the majority to the nearest count that
    makes the ratio exact), ratio 50 gives 350:7 and ratio 1 gives 147:147 (every class cut to the
    smallest count). A ratio below the natural one subsamples the majority only (ratio 2 -> 294:147).
    """
    r = _as_fraction(ratio, "ratio")
    if r < 1:
        raise ConfigError(
            f"imbalance ratio {ratio} is below 1",
            "pass ratio >= 1 (majority:minority, e.g. 1, 10, 50); ratio 1 gives a balanced set",
        )
    present = {c: n for c, n in counts.items()}
    empty = [c for c, n in present.items() if n <= 0]
    if empty:
        raise ConfigError(
            f"class(es) {', '.join(map(str, empty))} have no training rows, so no ratio can be met",
            "use a train split where every class has at least one row",
        )
    if len(present) < 2:
        raise ConfigError("an imbalance ratio needs at least two classes", "use a dataset with 2+ classes")
    order = sorted(present, key=lambda c: (-present[c], c))  # most frequent first, ties by id
    num = len(order)
    p, q = r.numerator, r.denominator

    def profile(k: int) -> dict[int, int]:
        head, tail = k * p, k * q
        out = {}
        for i, c in enumerate(order):
            if i == 0:
                out[c] = head
            elif i == num - 1:
                out[c] = tail
            else:
                n_i = head * float(r) ** (-i / (num - 1))
                out[c] = min(head, max(tail, math.floor(n_i + 0.5)))
        return out

    k = min(present[order[0]] // p, present[order[-1]] // q)
    for i, c in enumerate(order[1:-1], start=1):  # analytic bound for the middle classes ...
        k = min(k, math.floor((present[c] + 0.5) / (p * float(r) ** (-i / (num - 1)))))
    # ... then a few steps down where rounding of the middle counts still overshoots.
    while k > 0 and any(n > present[c] for c, n in profile(k).items()):
        k -= 1
    if k == 0:
        # The largest exact ratio keeps one row of the rarest class: most frequent count : 1 for two
        # classes; with more classes the middle ones may limit it further.
        best = _largest_ratio(present, order)
        raise ConfigError(
            f"imbalance ratio {ratio} cannot be met with class counts "
            f"{', '.join(f'{c}: {present[c]}' for c in order)} (a class would be left empty)",
            f"pass a ratio of at most {best}",
        )
    return {c: n for c, n in sorted(profile(k).items())}


def _largest_ratio(present: dict[int, int], order: list[int]) -> int:
    """Largest integer ratio that ``imbalanced_counts`` can meet for these counts."""
    lo, hi = 1, present[order[0]]
    # Feasibility is monotone in practice for integer ratios; binary search with a direct check.
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            imbalanced_counts(present, mid)
            lo = mid
        except ConfigError:
            hi = mid - 1
    return lo


def make_imbalanced(
    dataset: Dataset | DatasetDict,
    ratio: float | int | str | Fraction,
    seed: int = 0,
    label_column: str = "label",
) -> SubsetResult:
    """A training set whose majority:minority count ratio is exactly ``ratio``.

    Per-class target counts come from ``imbalanced_counts`` (binary: subsample the minority, and the
    majority where needed for an exact ratio; multi-class: exponential long-tail profile; ``ratio=1``:
    every class cut to the smallest count). Rows are drawn at random per class, deterministically
    for ``seed``. Returns ``SubsetResult(dataset, class_counts, indices, natural_counts)``; a
    ``DatasetDict`` comes back with only ``train`` replaced.

    Raises ``ConfigError`` for ``ratio < 1``, for multi-label data, or when the ratio would leave a
    class empty (the hint gives the largest achievable ratio).
    """
    train, is_dict = _train_split(dataset)
    labels = read_labels(train, label_column)
    if labels.ndim != 1:
        raise ConfigError(
            f"column {label_column!r} is multi-label; an imbalance ratio needs one class per row",
            "use a single-label dataset (binary or multi-class) for make_imbalanced",
        )
    natural = class_counts(labels, _num_classes(train, label_column))
    targets = imbalanced_counts(natural, ratio)
    perms = _class_permutations(labels, list(targets), seed)
    indices = np.sort(np.concatenate([perms[c][: targets[c]] for c in targets]))
    new_train = train.select(indices)
    names = _names(train, label_column)
    logger.info(
        "make_imbalanced(ratio=%s, seed=%d): %s (natural: %s)",
        ratio,
        seed,
        _fmt_counts(targets, names),
        _fmt_counts(natural, names),
    )
    return SubsetResult(_rebuild(dataset, new_train, is_dict), dict(targets), indices, natural)


# ------------------------------------------------------------------------------------ label fraction


def _round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def label_fraction(
    dataset: Dataset | DatasetDict,
    fraction: float | int | str | Fraction,
    seed: int = 0,
    label_column: str = "label",
) -> SubsetResult:
    """A stratified ``fraction`` of the train split (e.g. 0.01, 0.1, 1.0), at least one row per class.

    Single-label: each class keeps ``max(1, round(fraction * n_c))`` rows (round half up, computed
    exactly). Multi-label (``(N, L)`` 0/1 labels): ``round(fraction * N)`` random rows, plus — for
    every label that has positives in the full split but none in the subset — its first positive row
    in the seeded order, so no label loses all its positives. ``fraction=1`` returns the input
    unchanged. Raises ``ConfigError`` for a fraction outside ``(0, 1]``.
    """
    f = _as_fraction(fraction, "fraction")
    if not 0 < f <= 1:
        raise ConfigError(
            f"label fraction {fraction} is outside (0, 1]",
            "pass a fraction such as 0.01 (1 %), 0.1 (10 %) or 1.0 (all labels)",
        )
    train, is_dict = _train_split(dataset)
    labels = read_labels(train, label_column)
    natural = class_counts(labels, _num_classes(train, label_column) if labels.ndim == 1 else None)
    if f == 1:
        return SubsetResult(dataset, dict(natural), np.arange(len(train)), natural)

    if labels.ndim == 1:
        present = [c for c, n in natural.items() if n > 0]
        perms = _class_permutations(labels, present, seed)
        targets = {c: max(1, _round_half_up(f * natural[c])) for c in present}
        indices = np.sort(np.concatenate([perms[c][: targets[c]] for c in present]))
    else:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(train))
        chosen = set(order[: max(1, _round_half_up(f * len(train)))].tolist())
        positives = labels[order] > 0
        for j in range(labels.shape[1]):
            col = positives[:, j]
            if col.any() and not any(labels[i, j] > 0 for i in chosen):
                chosen.add(int(order[int(np.argmax(col))]))
        indices = np.array(sorted(chosen), dtype=np.int64)
    new_train = train.select(indices)
    kept = class_counts(labels[indices], _num_classes(train, label_column) if labels.ndim == 1 else None)
    names = _names(train, label_column)
    logger.info(
        "label_fraction(fraction=%s, seed=%d): %d of %d rows (%s)",
        fraction,
        seed,
        len(indices),
        len(train),
        _fmt_counts(kept, names),
    )
    return SubsetResult(_rebuild(dataset, new_train, is_dict), kept, indices, natural)
