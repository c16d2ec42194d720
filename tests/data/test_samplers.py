"""ClassBalancedSampler and MajorityResampler: exact per-epoch counts, determinism, sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hfssl.data.samplers import ClassBalancedSampler, MajorityResampler
from hfssl.errors import ConfigError, DataError

# BreastMNIST-28 train counts: 147 malignant (0), 399 benign (1), shuffled
_BREAST = np.random.default_rng(0).permutation(np.repeat([0, 1], [147, 399]))


def _epoch_counts(labels: np.ndarray, indices) -> dict[int, int]:
    return {int(c): int(n) for c, n in zip(*np.unique(labels[np.asarray(list(indices))], return_counts=True))}


# --------------------------------------------------------------------------------- resampler


def test_mean_resampler_counts_each_epoch():
    sampler = MajorityResampler(_BREAST, ratio=1.0, seed=0)
    assert len(sampler) == 294
    minority = set(np.flatnonzero(_BREAST == 0).tolist())
    majorities = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        idx = list(sampler)
        assert len(idx) == len(set(idx)) == 294  # no repeats inside an epoch
        assert _epoch_counts(_BREAST, idx) == {0: 147, 1: 147}
        assert minority <= set(idx)  # every minority row, every epoch
        majorities.append(frozenset(i for i in idx if _BREAST[i] == 1))
    assert len(set(majorities)) == 3  # a new majority subset each epoch


def test_resampler_is_reproducible_per_seed_and_epoch():
    a, b = MajorityResampler(_BREAST, 1.0, seed=7), MajorityResampler(_BREAST, 1.0, seed=7)
    a.set_epoch(4)
    b.set_epoch(4)
    assert list(a) == list(b)
    b.set_epoch(5)
    assert list(a) != list(b)
    c = MajorityResampler(_BREAST, 1.0, seed=8)
    c.set_epoch(4)
    assert list(a) != list(c)
    assert list(a) == list(a)  # iterating twice in one epoch gives the same draw


@pytest.mark.parametrize(("ratio", "majority"), [(2, 294), (2.5, 367), (10, 399)])
def test_resampler_ratio(ratio, majority):
    sampler = MajorityResampler(_BREAST, ratio=ratio, seed=0)
    assert sampler.class_counts == {0: 147, 1: majority}
    assert _epoch_counts(_BREAST, sampler) == {0: 147, 1: majority}


def test_resampler_multiclass_caps_every_class():
    labels = np.repeat([0, 1, 2, 3], [50, 8, 30, 12])
    sampler = MajorityResampler(labels, ratio=1.5, seed=1, shuffle=False)
    expected = {0: 12, 1: 8, 2: 12, 3: 12}  # cap = floor(1.5 * 8)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        assert _epoch_counts(labels, sampler) == expected
    idx = sampler.epoch_indices()
    assert (np.diff(labels[idx]) >= 0).all()  # shuffle=False: grouped by class


def test_resampler_rejects_bad_input():
    with pytest.raises(ConfigError, match="below 1"):
        MajorityResampler(_BREAST, ratio=0.5)
    with pytest.raises(DataError):
        MajorityResampler(np.zeros((4, 3), dtype=int))
    with pytest.raises(DataError):
        MajorityResampler([])


def test_resampler_from_dataset_and_dataloader():
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"x": Value("int64"), "label": ClassLabel(names=["a", "b"])})
    ds = Dataset.from_dict({"x": np.arange(len(_BREAST)), "label": _BREAST}, features=features)
    sampler = MajorityResampler(ds, ratio=1.0, seed=0)
    loader = torch.utils.data.DataLoader(np.arange(len(_BREAST)), batch_size=64, sampler=sampler)
    seen = torch.cat(list(loader)).numpy()
    assert _epoch_counts(_BREAST, seen) == {0: 147, 1: 147}


# ------------------------------------------------------------------------------ class-balanced


def test_class_balanced_frequencies():
    labels = np.repeat([0, 1, 2], [900, 90, 10])
    sampler = ClassBalancedSampler(labels, num_samples=30_000, seed=0)
    assert len(sampler) == 30_000
    counts = _epoch_counts(labels, sampler)
    for c in (0, 1, 2):
        assert abs(counts[c] / 30_000 - 1 / 3) < 0.015
    # natural sampling would give class 2 one percent of the draws
    default = ClassBalancedSampler(labels, seed=0)
    assert len(default) == 1000


def test_class_balanced_determinism_and_epochs():
    a, b = ClassBalancedSampler(_BREAST, seed=3), ClassBalancedSampler(_BREAST, seed=3)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(ClassBalancedSampler(_BREAST, seed=4)) != list(ClassBalancedSampler(_BREAST, seed=3))


def test_sharding_splits_one_epoch_sequence():
    full = MajorityResampler(_BREAST, ratio=1.0, seed=2)
    full.set_epoch(3)
    sequence = list(full)
    shards = []
    for rank in range(4):
        s = MajorityResampler(_BREAST, ratio=1.0, seed=2, num_replicas=4, rank=rank)
        s.set_epoch(3)
        shards.append(list(s))
        assert len(s) == len(shards[-1]) == 74  # ceil(294 / 4)
    padded = sequence + sequence[: 4 * 74 - len(sequence)]
    assert [i for group in zip(*shards) for i in group] == padded
    with pytest.raises(ConfigError):
        ClassBalancedSampler(_BREAST, num_replicas=2, rank=2)


def test_with_accelerate_single_process():
    from accelerate.data_loader import prepare_data_loader

    sampler = MajorityResampler(_BREAST, ratio=1.0, seed=0)
    loader = torch.utils.data.DataLoader(np.arange(len(_BREAST)), batch_size=50, sampler=sampler)
    prepared = prepare_data_loader(loader, device=torch.device("cpu"), num_processes=1, process_index=0)
    epochs = []
    for epoch in range(2):
        prepared.set_epoch(epoch)
        seen = torch.cat(list(prepared)).numpy()
        assert _epoch_counts(_BREAST, seen) == {0: 147, 1: 147}
        epochs.append(seen.tolist())
    assert epochs[0] != epochs[1]
