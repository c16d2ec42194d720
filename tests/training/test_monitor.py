"""The online kNN monitor: predictions equal scikit-learn's weighted cosine kNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier

from hfssl.errors import ConfigError
from hfssl.training.monitor import online_knn_metrics, online_knn_scores


@pytest.mark.parametrize("k", [1, 5, 20])
def test_weighted_knn_equals_sklearn(k: int) -> None:
    gen = torch.Generator().manual_seed(k)
    bank = torch.randn(300, 16, generator=gen)
    labels = torch.randint(0, 3, (300,), generator=gen)
    query = torch.randn(120, 16, generator=gen)
    temperature = 0.07
    scores = online_knn_scores(
        bank * 5.0, labels, query, num_classes=3, k=k, temperature=temperature, chunk_size=50
    )
    ref = KNeighborsClassifier(
        n_neighbors=k, metric="cosine", algorithm="brute", weights=lambda d: np.exp((1.0 - d) / temperature)
    ).fit(bank.double().numpy(), labels.numpy())
    assert scores.argmax(1).tolist() == ref.predict(query.double().numpy()).tolist()


def test_knn_metrics_and_errors() -> None:
    preds = torch.tensor([0, 1, 1, 1, 0, 2])
    truth = torch.tensor([0, 1, 0, 1, 1, 2])
    metrics = online_knn_metrics(preds, truth, 3)
    assert metrics["knn_accuracy"] == pytest.approx(4 / 6)
    assert metrics["knn_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, preds))
    # a perfectly separated bank gives perfect predictions; k larger than the bank is capped
    bank = torch.eye(2).repeat(5, 1)
    lab = torch.tensor([0, 1] * 5)
    assert online_knn_scores(bank, lab, torch.eye(2), 2, k=50).argmax(1).tolist() == [0, 1]
    with pytest.raises(ConfigError):
        online_knn_scores(bank, lab, bank, 2, k=0)


def test_centred_knn_equals_sklearn_on_centred_features_and_ignores_a_shared_offset() -> None:
    gen = torch.Generator().manual_seed(7)
    bank = torch.randn(200, 8, generator=gen)
    labels = torch.randint(0, 2, (200,), generator=gen)
    query = torch.randn(60, 8, generator=gen)
    temperature = 0.07
    scores = online_knn_scores(
        bank, labels, query, 2, k=10, temperature=temperature, chunk_size=25, center=True
    )
    mean = bank.mean(0, keepdim=True)
    ref = KNeighborsClassifier(
        n_neighbors=10, metric="cosine", algorithm="brute", weights=lambda d: np.exp((1.0 - d) / temperature)
    ).fit((bank - mean).double().numpy(), labels.numpy())
    assert scores.argmax(1).tolist() == ref.predict((query - mean).double().numpy()).tolist()
    # a large offset shared by every embedding (what a rotation-trained backbone adds) changes nothing
    offset = 50.0 * torch.ones(1, 8)
    shifted = online_knn_scores(
        bank + offset, labels, query + offset, 2, k=10, temperature=temperature, center=True
    )
    assert shifted.argmax(1).tolist() == scores.argmax(1).tolist()
    # while the plain cosine kNN then sees almost identical directions and votes differently
    plain = online_knn_scores(bank + offset, labels, query + offset, 2, k=10, temperature=temperature)
    assert plain.argmax(1).tolist() != scores.argmax(1).tolist()
