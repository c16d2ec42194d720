"""The online kNN monitor of pretraining: weighted kNN accuracy of the current backbone (solo-learn's, centred).

Not to be confused with ``eval_suite``'s kNN *protocol* (scikit-learn, a frozen checkpoint): this
monitor runs inside the training loop, on the training device, and logs ``knn_*`` metrics.

Every evaluation, the backbone that would be exported (``--export-backbone``: the online
encoder, DINO's teacher by default) embeds, in eval mode, the labelled train split (the memory bank)
and the validation split; embeddings are centred on the memory bank's mean and L2-normalised
("CL2N", Wang et al. 2019, SimpleShot), each validation image takes its ``k`` most
cosine-similar train images, and votes ``exp(sim / T)`` for their labels (Wu et al. 2018, the
weighting solo-learn and DINO use). The prediction is the class with the largest vote.

Why centre: pooled ReLU features share a large common component (every image of the data set
has it), which carries no class information - a linear probe absorbs it in its bias - but
dominates the cosine similarity of un-centred features. A backbone trained on rotation
prediction shows it most: all upright images fire its "upright" features alike, and un-centred
cosine kNN can then score below the random-init backbone (``tests/training/test_knn_lift.py``).
``center=False`` (``--knn-center false``) gives the solo-learn / DINO monitor.

The vote is written here with ``topk`` + ``scatter_add`` on torch tensors rather than with
scikit-learn's ``KNeighborsClassifier``: it runs on the training device in chunks, with no copy
to numpy, and its predictions equal scikit-learn's (``metric="cosine"``, weights
``exp((1 - d) / T)``) on the same input - which the tests check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from hfssl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from accelerate import Accelerator
    from datasets import Dataset


@torch.no_grad()
def online_knn_scores(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query_features: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
    center: bool = False,
) -> torch.Tensor:
    """Weighted kNN class scores ``(Q, num_classes)`` of ``query_features`` against a memory bank.

    Features are L2-normalised here, after subtracting the bank's mean when ``center`` is set;
    ``k`` is capped at the bank size. Take ``argmax(-1)`` for predictions.
    """
    if k < 1:
        raise ConfigError(f"knn_k must be >= 1, got {k}", "use e.g. 20")
    if not temperature > 0:
        raise ConfigError(f"knn_temperature must be > 0, got {temperature}", "use e.g. 0.07")
    if train_features.shape[0] == 0:
        raise ConfigError("the kNN memory bank is empty", "monitor with a labelled train split")
    bank = train_features.float()
    mean = bank.mean(dim=0, keepdim=True) if center else torch.zeros_like(bank[:1])
    bank = F.normalize(bank - mean, dim=1)
    labels = train_labels.long().to(bank.device)
    k = min(k, bank.shape[0])
    scores = []
    for start in range(0, query_features.shape[0], chunk_size):
        query = query_features[start : start + chunk_size].float().to(bank.device)
        query = F.normalize(query - mean, dim=1)
        sim, idx = (query @ bank.T).topk(k, dim=1)
        votes = torch.zeros(query.shape[0], num_classes, device=bank.device)
        votes.scatter_add_(1, labels[idx], (sim / temperature).exp())
        scores.append(votes)
    return torch.cat(scores) if scores else torch.zeros(0, num_classes)


def online_knn_metrics(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy and balanced accuracy (mean per-class recall) of kNN predictions."""
    preds = predictions.cpu().long()
    truth = labels.cpu().long()
    accuracy = float((preds == truth).float().mean()) if truth.numel() else float("nan")
    recalls = [
        float((preds[truth == c] == c).float().mean()) for c in range(num_classes) if bool((truth == c).any())
    ]
    balanced = sum(recalls) / len(recalls) if recalls else float("nan")
    return {"knn_accuracy": accuracy, "knn_balanced_accuracy": balanced}


class OnlineKnnMonitor:
    """kNN accuracy of a backbone on a labelled (train, validation) pair, across processes.

    The two splits get their own non-shuffled data loaders prepared by ``accelerator`` (each
    process embeds its shard; ``gather_for_metrics`` collects them without the padding
    duplicates). ``max_train_samples`` caps the memory bank (the first images of the split);
    ``center`` centres the embeddings on the bank's mean (see the module doc).
    """

    def __init__(
        self,
        accelerator: Accelerator,
        train_split: Dataset,
        eval_split: Dataset,
        num_classes: int,
        batch_size: int = 256,
        k: int = 20,
        temperature: float = 0.07,
        max_train_samples: int | None = None,
        channels_last: bool = False,
        center: bool = True,
    ) -> None:
        from hfssl.data.torch_data import make_dataloader

        if max_train_samples is not None and max_train_samples < len(train_split):
            train_split = train_split.select(range(max_train_samples))
        self.accelerator = accelerator
        self.num_classes = num_classes
        self.k = k
        self.temperature = temperature
        self.center = center
        self.channels_last = channels_last
        self.train_loader = accelerator.prepare_data_loader(
            make_dataloader(train_split, batch_size=batch_size)
        )
        self.eval_loader = accelerator.prepare_data_loader(make_dataloader(eval_split, batch_size=batch_size))

    @torch.no_grad()
    def embed(self, backbone: torch.nn.Module, loader: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled embeddings and labels of every image of ``loader``, gathered over processes."""
        feats, labels = [], []
        for batch in loader:
            pixels = batch["pixel_values"]
            if self.channels_last:
                pixels = to_channels_last(pixels)
            with self.accelerator.autocast():
                pooled, _ = backbone.forward_features(pixels)
            pooled, lab = self.accelerator.gather_for_metrics((pooled.float().contiguous(), batch["labels"]))
            feats.append(pooled)
            labels.append(lab)
        return torch.cat(feats), torch.cat(labels)

    def evaluate(self, backbone: torch.nn.Module) -> dict[str, float]:
        """Embed both splits with ``backbone`` (eval mode, restored after) and score the kNN."""
        was_training = backbone.training
        backbone.eval()
        try:
            bank, bank_labels = self.embed(backbone, self.train_loader)
            query, query_labels = self.embed(backbone, self.eval_loader)
        finally:
            backbone.train(was_training)
        scores = online_knn_scores(
            bank, bank_labels, query, self.num_classes, self.k, self.temperature, center=self.center
        )
        return online_knn_metrics(scores.argmax(dim=1), query_labels, self.num_classes)


def to_channels_last(pixels: torch.Tensor) -> torch.Tensor:
    """``pixels`` in channels-last memory format (``channels_last_3d`` for volumes)."""
    fmt = torch.channels_last if pixels.dim() == 4 else torch.channels_last_3d
    return pixels.contiguous(memory_format=fmt)
