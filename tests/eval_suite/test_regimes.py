"""Data regimes (label fraction, imbalance) and policies (sampler, loss, mixup) of eval_suite."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eval_suite import regimes
from hfssl.errors import ConfigError


@pytest.fixture(scope="module")
def breast_train(data_dir):
    from hfssl.data import load_source

    return load_source("breastmnist", data_dir=data_dir)["train"]


def _labels(train, idx):
    from hfssl.data import read_labels

    return read_labels(train)[idx]


@pytest.mark.parametrize(
    "value, expected",
    [("natural", "natural"), ("Balanced", "balanced"), ("10", 10.0), (50, 50.0), (None, "natural")],
)
def test_parse_imbalance_ratio(value, expected):
    assert regimes.parse_imbalance_ratio(value) == expected


@pytest.mark.parametrize("value", ["0.5", "abc", "inf"])
def test_parse_imbalance_ratio_rejects(value):
    with pytest.raises(ConfigError, match="imbalance ratio"):
        regimes.parse_imbalance_ratio(value)


def test_policy_canonical_and_errors():
    assert regimes.normalise_policy("resample:1", "focal", "s3", 0.2) == {
        "sampler": "resample:1",
        "loss": "focal",
        "augment": "S3",
        "mixup": 0.2,
    }
    with pytest.raises(ConfigError, match="sampler"):
        regimes.normalise_policy("oversample", "ce", "none", 0)
    with pytest.raises(ConfigError, match="resample"):
        regimes.parse_sampler("resample:0.5")
    with pytest.raises(ConfigError, match="loss"):
        regimes.normalise_policy("none", "hinge", "none", 0)
    with pytest.raises(ConfigError, match="augmentation"):
        regimes.normalise_policy("none", "ce", "S9", 0)


def test_imbalance_ratio_exact_and_eval_untouched(breast_train):
    subset = regimes.select_train_rows(breast_train, imbalance_ratio="10", seed=0)
    counts = np.bincount(_labels(breast_train, subset.indices), minlength=2)
    assert counts.tolist() == subset.class_counts
    assert max(counts) == 10 * min(counts)
    balanced = regimes.select_train_rows(breast_train, imbalance_ratio="balanced", seed=0)
    assert balanced.class_counts[0] == balanced.class_counts[1] == 147  # majority undersampled to 147


def test_label_fraction_stratified_and_seeded(breast_train):
    natural = np.bincount(_labels(breast_train, np.arange(len(breast_train))))
    a = regimes.select_train_rows(breast_train, label_fraction=0.1, seed=0)
    b = regimes.select_train_rows(breast_train, label_fraction=0.1, seed=0)
    c = regimes.select_train_rows(breast_train, label_fraction=0.1, seed=1)
    assert a.class_counts == [int(np.floor(0.1 * n + 0.5)) for n in natural]
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)


def test_label_fraction_that_empties_a_class_is_refused(breast_train):
    with pytest.raises(ConfigError, match="malignant") as err:
        regimes.select_train_rows(breast_train, label_fraction=0.001, seed=0)
    assert "label fraction" in str(err.value) and "fix:" in str(err.value)
    with pytest.raises(ConfigError, match="outside"):
        regimes.select_train_rows(breast_train, label_fraction=1.5)


def test_max_train_samples_keeps_every_class(breast_train):
    subset = regimes.select_train_rows(breast_train, max_train_samples=40, seed=0)
    assert len(subset.indices) <= 40 and min(subset.class_counts) >= 1


def test_samplers():
    from hfssl.data import ClassBalancedSampler, MajorityResampler

    labels = np.array([0] * 10 + [1] * 40)
    assert regimes.make_sampler("none", labels, 0) is None
    assert isinstance(regimes.make_sampler("balanced", labels, 0), ClassBalancedSampler)
    resampler = regimes.make_sampler("resample:1", labels, 0)
    assert isinstance(resampler, MajorityResampler)
    drawn = labels[resampler.epoch_indices()]
    assert np.bincount(drawn).tolist() == [10, 10]


def _logits_targets(n=16, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    return logits, y, F.one_hot(y, c).float()


def test_ce_and_weighted_ce_match_torch():
    logits, y, onehot = _logits_targets()
    ce = regimes.make_loss("ce", [5, 5, 5], "multiclass")
    torch.testing.assert_close(ce(logits, onehot), F.cross_entropy(logits, y))
    counts = [2, 10, 4]
    weighted = regimes.make_loss("weighted", counts, "multiclass")
    w = torch.tensor(regimes.class_weights(counts), dtype=torch.float32)
    torch.testing.assert_close(weighted(logits, onehot), F.cross_entropy(logits, y, weight=w))
    # sklearn's "balanced": N / (C * n_c)
    np.testing.assert_allclose(regimes.class_weights(counts), 16 / (3 * np.array(counts)))


def test_focal_loss():
    logits, y, onehot = _logits_targets()
    focal0 = regimes.SoftTargetLoss("focal", gamma=0.0)
    torch.testing.assert_close(focal0(logits, onehot), F.cross_entropy(logits, y))
    focal = regimes.make_loss("focal", [5, 5, 5], "multiclass")
    p_t = logits.softmax(1).gather(1, y[:, None])[:, 0]
    expected = (-((1 - p_t) ** 2) * p_t.log()).mean()
    torch.testing.assert_close(focal(logits, onehot), expected)
    with pytest.raises(ConfigError, match="ordinal"):
        regimes.make_loss("focal", [1, 1, 1], "ordinal")


def test_mixup_is_seeded_convex_combination():
    x = torch.rand(8, 1, 4, 4)
    t = F.one_hot(torch.arange(8) % 2, 2).float()
    xa, ta = regimes.mixup(x, t, 0.4, torch.Generator().manual_seed(3))
    xb, tb = regimes.mixup(x, t, 0.4, torch.Generator().manual_seed(3))
    torch.testing.assert_close(xa, xb)
    torch.testing.assert_close(ta.sum(1), torch.ones(8))
    assert not torch.equal(xa, x)
    same_x, same_t = regimes.mixup(x, t, 0.0, torch.Generator())
    assert same_x is x and same_t is t


def test_ordinal_probabilistic_heads_take_weighted_focal_and_mixed_targets():
    import torch

    from hfssl.models import cumulative_loss

    counts = [50, 10, 5]
    logits = torch.tensor([[1.0, -1.0], [0.5, 0.2], [-1.0, -2.0]])
    onehot = torch.eye(3)[torch.tensor([0, 1, 2])]
    ce = regimes.make_loss("ce", counts, "ordinal", ordinal_head="cumulative")
    plain = cumulative_loss(logits, torch.tensor([0, 1, 2]), 3)
    assert torch.allclose(ce(logits, onehot), plain)
    weighted = regimes.make_loss("weighted", counts, "ordinal", ordinal_head="cumulative")(logits, onehot)
    w = torch.as_tensor(regimes.class_weights(counts), dtype=torch.float32)
    per = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.tensor([[0.0, 0], [1, 0], [1, 1]]), reduction="none"
    ).sum(1)
    assert torch.allclose(weighted, (per * w).sum() / w.sum())
    focal = regimes.make_loss("focal", counts, "ordinal", ordinal_head="cumulative")(logits, onehot)
    assert focal < plain  # focal down-weights the easy terms
    # a mixed target mixes the cumulative targets: half grade 0 + half grade 2 -> P(y>j) = 0.5
    mixed = 0.5 * onehot[0:1] + 0.5 * onehot[2:3]
    from hfssl.models.heads import cumulative_targets

    assert cumulative_targets(mixed, 3).tolist() == [[0.5, 0.5]]
    cls = regimes.make_loss("weighted", counts, "ordinal", ordinal_head="classification")
    assert isinstance(cls, regimes.SoftTargetLoss) and cls.weights is not None


def test_corrupt_augmentation_policy():
    from eval_suite.regimes import make_augment, normalise_policy
    from hfssl.data.corruptions import RandomCorruption

    assert normalise_policy("none", "ce", "corrupt:0.50", 0.0)["augment"] == "corrupt:0.5"
    assert normalise_policy("none", "ce", "corrupt", 0.0)["augment"] == "corrupt:0.5"
    for bad in ("corrupt:0", "corrupt:1.5", "corrupt:x"):
        with pytest.raises(ConfigError, match=r"not in \(0, 1\]"):
            normalise_policy("none", "ce", bad, 0.0)
    aug = make_augment("corrupt:0.3", 2, seed=0, dataset="breastmnist")
    assert isinstance(aug, RandomCorruption) and aug.p == 0.3 and aug.modality == "ultrasound"
    with pytest.raises(ConfigError, match="needs the dataset"):
        make_augment("corrupt:0.3", 2, seed=0)
