"""Classification heads and task losses (classification problem types, ordinal heads, Dice + CE/BCE).

Ordinal (graded) labels ``0..K-1`` take one of three heads (``ORDINAL_HEADS``):

* ``regression`` - one output regressed on the grade with MSE; grades are read by rounding, or by
  cut points tuned on a validation split (``thresholds``), as retinopathy graders do;
* ``classification`` - K logits, softmax cross-entropy: grades as nominal classes;
* ``cumulative`` - K-1 rank-consistent binary logits ``z_j = w.x + b_j`` for ``P(y > j)`` with one
  shared weight vector and K-1 biases (CORAL, Cao et al. 2020), trained with binary cross-entropy on
  the cumulative targets ``[y > j]``.

The two probabilistic heads give per-grade probabilities (``ordinal_probabilities``), so AUC, ECE,
class-weighted/focal losses and mixup apply to them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hfssl.errors import ConfigError, DataError
from hfssl.models.layers import init_module_weights

ORDINAL_HEADS: tuple[str, ...] = ("regression", "classification", "cumulative")
DEFAULT_ORDINAL_HEAD = "classification"
"""Chosen on the graded test bed (``reports/ordinal/README.md``): trained from scratch it had the best
QWK, balanced accuracy, worst-grade recall, AUC and ECE of the three heads over 3 seeds."""


def check_ordinal_head(head: str, num_grades: int) -> str:
    """``head`` if it is a known ordinal head that fits ``num_grades`` grades, else ``ConfigError``."""
    if head not in ORDINAL_HEADS:
        raise ConfigError(f"unknown ordinal head {head!r}", f"use one of: {', '.join(ORDINAL_HEADS)}")
    if head == "cumulative" and num_grades < 3:
        raise ConfigError(
            f"the cumulative ordinal head needs at least 3 grades, got {num_grades}",
            "use --ordinal-head classification (or a binary task) for two grades",
        )
    if num_grades < 2:
        raise ConfigError(f"an ordinal task needs at least 2 grades, got {num_grades}", None)
    return head


def ordinal_num_outputs(head: str, num_grades: int) -> int:
    """Head outputs: 1 (regression), K (classification) or K-1 (cumulative)."""
    return {"regression": 1, "classification": num_grades, "cumulative": num_grades - 1}[head]


class ClassificationHead(nn.Module):
    """Pooled embedding -> logits: ``"linear"`` (one layer) or ``"mlp"`` (FC hidden -> ReLU -> FC).

    The ``"mlp"`` head is the paper's GAP -> FC 1024 -> classes. ``dropout`` acts before the
    last linear layer. ``cumulative=True`` makes the last layer rank-consistent (CORAL): one shared
    weight vector and ``num_outputs`` ordered biases, so the outputs are ``P(y > j)`` logits.
    """

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        kind: str = "linear",
        hidden_dim: int = 1024,
        dropout: float = 0.0,
        cumulative: bool = False,
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
        self.fc = nn.Linear(last_in, 1 if cumulative else num_outputs, bias=not cumulative)
        self.apply(init_module_weights)
        self.cumulative_bias: nn.Parameter | None = None
        if cumulative:
            # decreasing biases: P(y > j) starts ordered (CORAL's rank consistency)
            self.cumulative_bias = nn.Parameter(torch.linspace(1.0, -1.0, num_outputs))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        out = self.fc(self.dropout(self.hidden(pooled)))
        if self.cumulative_bias is not None:
            out = out + self.cumulative_bias
        return out


def cumulative_targets(target: torch.Tensor, num_grades: int) -> torch.Tensor:
    """``[y > j]`` for j = 0..K-2, shape (B, K-1): from grades (B,) or from (soft) one-hot (B, K)
    targets, where it is ``sum_{c > j} t_c`` (so mixup's mixed targets mix the cumulative ones)."""
    if target.ndim == 2 and target.shape[1] == num_grades:
        t = target.float()
        return t.flip(1).cumsum(1).flip(1)[:, 1:]
    grades = target.reshape(-1, 1).float()
    return (grades > torch.arange(num_grades - 1, device=target.device, dtype=grades.dtype)).float()


def cumulative_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    num_grades: int,
    sample_weight: torch.Tensor | None = None,
    gamma: float = 0.0,
) -> torch.Tensor:
    """Binary cross-entropy over the K-1 cumulative tasks (sum over tasks, mean over samples;
    ``sample_weight`` -> weighted mean; ``gamma > 0`` -> focal form of each binary term)."""
    t = cumulative_targets(target, num_grades).to(logits.dtype)
    per = F.binary_cross_entropy_with_logits(logits.float(), t.float(), reduction="none")
    if gamma > 0:
        p = torch.sigmoid(logits.float())
        p_t = t * p + (1 - t) * (1 - p)
        per = per * (1 - p_t).pow(gamma)
    per = per.sum(dim=1)
    if sample_weight is None:
        return per.mean()
    w = sample_weight.to(per.dtype)
    return (per * w).sum() / w.sum().clamp_min(1e-12)


def ordinal_probabilities(logits: torch.Tensor, head: str) -> torch.Tensor:
    """Per-grade probabilities (B, K) of a probabilistic ordinal head's logits.

    ``classification``: softmax. ``cumulative``: ``P(y = k) = P(y > k-1) - P(y > k)`` from the
    sigmoids, made monotone first (a running minimum), so every probability is >= 0 and rows sum to 1.
    """
    if head == "classification":
        return logits.float().softmax(dim=1)
    if head == "cumulative":
        gt = torch.sigmoid(logits.float()).cummin(dim=1).values
        ones = torch.ones_like(gt[:, :1])
        upper = torch.cat([ones, gt], dim=1)
        lower = torch.cat([gt, torch.zeros_like(ones)], dim=1)
        return (upper - lower).clamp_min(0.0)
    raise ConfigError(
        f"the {head!r} ordinal head regresses grades and gives no probabilities",
        "use ordinal head classification or cumulative for per-grade probabilities",
    )


def grades_from_values(
    values: torch.Tensor, num_grades: int, thresholds: list[float] | None = None
) -> torch.Tensor:
    """Regressed grades -> integer grades (B,): cut at ``thresholds`` (K-1 increasing cut points),
    or rounded and clipped to ``0..K-1`` when there are none."""
    v = values.reshape(values.shape[0], -1)[:, 0].float()
    if thresholds:
        cuts = torch.as_tensor(sorted(thresholds), dtype=v.dtype, device=v.device)
        return torch.bucketize(v, cuts, right=True).clamp(0, num_grades - 1).long()
    return v.round().clamp(0, num_grades - 1).long()


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
    logits: torch.Tensor,
    labels: torch.Tensor,
    problem_type: str,
    num_labels: int,
    ordinal_head: str = "regression",
) -> torch.Tensor:
    """Loss for a classification head output, by problem type (ordinal: by ``ordinal_head``:
    MSE on grades, cross-entropy, or cumulative binary cross-entropy)."""
    if problem_type == "ordinal" and ordinal_head == "classification":
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1).long())
    if problem_type == "ordinal" and ordinal_head == "cumulative":
        return cumulative_loss(logits, labels.view(-1).long(), num_labels)
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
