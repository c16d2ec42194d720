"""Classification heads and task losses (classification problem types, Dice + CE/BCE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hfssl.errors import ConfigError, DataError
from hfssl.models.layers import init_module_weights


class ClassificationHead(nn.Module):
    """Pooled embedding -> logits: ``"linear"`` (one layer) or ``"mlp"`` (FC hidden -> ReLU -> FC).

    The ``"mlp"`` head is the paper's GAP -> FC 1024 -> classes. ``dropout`` acts before the
    last linear layer.
    """

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        kind: str = "linear",
        hidden_dim: int = 1024,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kind == "linear":
            self.hidden: nn.Module = nn.Identity()
            last_in = in_features
        elif kind == "mlp":
            self.hidden = nn.Sequential(nn.Linear(in_features, hidden_dim), nn.ReLU(inplace=True))
            last_in = hidden_dim
        else:
            raise ConfigError(f"classifier_head must be 'linear' or 'mlp', got {kind!r}", "use linear or mlp")
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(last_in, num_outputs)
        self.apply(init_module_weights)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.hidden(pooled)))


def resolve_problem_type(problem_type: str | None, num_labels: int, labels: torch.Tensor) -> str:
    """transformers' rule: 1 label -> regression, integer labels -> single-label, else multi-label."""
    if problem_type is not None:
        return problem_type
    if num_labels == 1:
        return "regression"
    if labels.dtype in (torch.long, torch.int, torch.int16, torch.int8, torch.uint8):
        return "single_label_classification"
    return "multi_label_classification"


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, problem_type: str, num_labels: int
) -> torch.Tensor:
    """Loss for a classification head output, by problem type (ordinal: MSE on grades)."""
    if problem_type == "single_label_classification":
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1).long())
    if problem_type == "multi_label_classification":
        if labels.shape != logits.shape:
            raise DataError(
                f"multi-label targets have shape {tuple(labels.shape)} but logits {tuple(logits.shape)}",
                "give one 0/1 column per label",
            )
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    if problem_type in ("regression", "ordinal"):
        target = labels.to(logits.dtype)
        if logits.shape[-1] == 1:
            return F.mse_loss(logits.view(-1), target.view(-1))
        return F.mse_loss(logits, target.view_as(logits))
    raise ConfigError(
        f"unknown problem_type {problem_type!r}",
        "use single_label_classification, multi_label_classification, regression or ordinal",
    )


def dice_loss(probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Soft Dice loss, mean over the channels of ``probs``/``target`` (B, K, ...); 0 is perfect."""
    dims = tuple(range(2, probs.ndim))
    inter = (probs * target).sum(dims)
    denom = probs.sum(dims) + target.sum(dims)
    return 1.0 - ((2.0 * inter + eps) / (denom + eps)).mean()


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Dice + cross-entropy, weighted 1:1.

    One output channel: binary masks, sigmoid Dice + BCE; labels (B, ...) or (B, 1, ...) in {0, 1}.
    K >= 2 channels: class-index masks (B, ...) with values 0..K-1, softmax Dice over the
    foreground classes 1..K-1 + CE.
    """
    spatial = logits.shape[2:]
    if labels.ndim == logits.ndim and labels.shape[1] == 1:
        labels = labels[:, 0]
    if tuple(labels.shape[1:]) != tuple(spatial) or labels.shape[0] != logits.shape[0]:
        raise DataError(
            f"segmentation labels have shape {tuple(labels.shape)}, expected ({logits.shape[0]}, {', '.join(map(str, spatial))})",
            "give one mask per image at the input's size",
        )
    k = logits.shape[1]
    if k == 1:
        target = labels.to(logits.dtype).unsqueeze(1)
        return F.binary_cross_entropy_with_logits(logits, target) + dice_loss(torch.sigmoid(logits), target)
    labels = labels.long()
    onehot = F.one_hot(labels, k).movedim(-1, 1).to(logits.dtype)
    probs = logits.softmax(dim=1)
    return F.cross_entropy(logits, labels) + dice_loss(probs[:, 1:], onehot[:, 1:])
