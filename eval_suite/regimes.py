"""Data regimes and training policies stacked on any evaluation protocol.

Regimes change *which* training rows a run sees (never validation or test):

* ``label_fraction`` (1 %, 10 %, 100 %) through ``hfssl.data.label_fraction`` (stratified);
* ``imbalance_ratio`` (``natural`` = as shipped, a number = exact majority:minority ratio, ``balanced``
  = 1:1 by undersampling) through ``hfssl.data.make_imbalanced``.

Policies change *how* a run trains on them: ``sampler`` (``none``, ``balanced`` = class-balanced
sampling, ``resample:R`` = the paper's per-epoch majority resampler), ``loss`` (``ce``, ``weighted``
CE with inverse-frequency weights, ``focal``), ``augment`` (``none``, ``S1``..``S6``, ``corrupt:P``) and ``mixup`` (alpha).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hfssl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from datasets import Dataset

SAMPLERS_HELP = "none, balanced or resample:R (R >= 1, e.g. resample:1)"
LOSSES = ("ce", "weighted", "focal")
AUGMENTS = ("none", "S1", "S2", "S3", "S4", "S5", "S6")


# ------------------------------------------------------------------------------------------- parsing
def parse_imbalance_ratio(value: str | float | int | None) -> str | float:
    """``"natural"`` | ``"balanced"`` | a ratio >= 1 (float); ``ConfigError`` otherwise."""
    if value is None:
        return "natural"
    text = str(value).strip().lower()
    if text in ("natural", "balanced"):
        return text
    try:
        ratio = float(text)
    except ValueError:
        ratio = float("nan")
    if not math.isfinite(ratio) or ratio < 1:
        raise ConfigError(
            f"imbalance ratio {value!r} is not 'natural', 'balanced' or a number >= 1",
            "pass e.g. --imbalance-ratio natural, 10, 50 or balanced",
        )
    return ratio


def parse_sampler(value: str | None) -> tuple[str, float | None]:
    """``("none"|"balanced"|"resample", ratio)``; ``ConfigError`` for anything else."""
    text = (value or "none").strip().lower()
    if text in ("none", "balanced"):
        return text, None
    if text.startswith("resample"):
        _, _, arg = text.partition(":")
        try:
            ratio = float(arg or 1.0)
        except ValueError:
            ratio = float("nan")
        if math.isfinite(ratio) and ratio >= 1:
            return "resample", ratio
    raise ConfigError(f"unknown sampler {value!r}", f"use {SAMPLERS_HELP}")


def parse_augment(augment: str | None) -> str:
    """Canonical augmentation name: ``none``, ``S1``..``S6``, or ``corrupt:P`` (with probability P in
    (0, 1] an image gets a random corruption of its dataset's modality at a random severity 1-5,
    ``hfssl.data.corruptions.RandomCorruption``)."""
    text = "none" if augment in (None, "", "none") else str(augment).strip()
    if text.lower().startswith("corrupt"):
        _, _, arg = text.partition(":")
        try:
            p = float(arg or 0.5)
        except ValueError:
            p = float("nan")
        if not (0.0 < p <= 1.0):
            raise ConfigError(
                f"corruption augmentation probability {arg!r} is not in (0, 1]",
                "pass e.g. --augment corrupt:0.5",
            )
        return f"corrupt:{p:g}"
    aug = text if text == "none" else text.upper()
    if aug not in AUGMENTS:
        raise ConfigError(
            f"unknown augmentation {augment!r}", f"use one of: {', '.join(AUGMENTS)}, corrupt:P (0 < P <= 1)"
        )
    return aug


def normalise_policy(sampler: str, loss: str, augment: str, mixup: float) -> dict[str, Any]:
    """The policy part of a result record, validated and in canonical spelling."""
    kind, ratio = parse_sampler(sampler)
    sampler_name = kind if ratio is None else f"resample:{ratio:g}"
    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r}", f"use one of: {', '.join(LOSSES)}")
    aug = parse_augment(augment)
    if not (mixup >= 0 and math.isfinite(mixup)):
        raise ConfigError(f"mixup alpha {mixup} is negative", "pass --mixup 0 (off) or e.g. 0.2")
    return {"sampler": sampler_name, "loss": loss, "augment": aug, "mixup": float(mixup)}


# ------------------------------------------------------------------------------------------- regimes
@dataclass
class TrainSubset:
    """Rows of the original train split a run trains on, and their class counts."""

    indices: np.ndarray
    class_counts: list[int]


def select_train_rows(
    train: Dataset,
    *,
    label_fraction: float = 1.0,
    imbalance_ratio: str | float = "natural",
    seed: int = 0,
    max_train_samples: int | None = None,
    class_names: list[str] | None = None,
) -> TrainSubset:
    """Indices into ``train`` for a regime: imbalance first, then the label fraction, then the cap.

    ``max_train_samples`` (tests, demos) keeps a stratified subset of at most that many rows.
    Raises ``ConfigError`` when the fraction would leave a class without a single labelled row
    (``hfssl.data.label_fraction`` would silently keep one, which changes the regime).
    """
    from hfssl.data import class_counts, make_imbalanced, read_labels
    from hfssl.data import label_fraction as take_fraction

    labels = read_labels(train)
    if labels.ndim != 1:
        raise ConfigError(
            "multi-label datasets are not supported by the evaluation regimes yet",
            "use a single-label (binary, multi-class or ordinal) dataset",
        )
    num_classes = int(labels.max()) + 1 if labels.size else 0
    feature = train.features.get("label")
    if class_names is None and hasattr(feature, "names"):
        class_names = list(feature.names)
        num_classes = max(num_classes, len(class_names))
    indices = np.arange(len(train))
    current = train
    ratio = parse_imbalance_ratio(imbalance_ratio)
    if ratio != "natural":
        result = make_imbalanced(current, 1 if ratio == "balanced" else ratio, seed=seed)
        indices, current = indices[result.indices], result.dataset
    if not 0 < label_fraction <= 1:
        raise ConfigError(f"label fraction {label_fraction} is outside (0, 1]", "pass e.g. 0.01, 0.1 or 1.0")
    if label_fraction < 1:
        counts = class_counts(labels[indices], num_classes)
        empty = [c for c, n in counts.items() if n > 0 and math.floor(label_fraction * n + 0.5) == 0]
        if empty:
            names = [class_names[c] if class_names and c < len(class_names) else str(c) for c in empty]
            smallest = min(counts[c] for c in empty)
            raise ConfigError(
                f"label fraction {label_fraction} leaves class(es) {', '.join(names)} without a training "
                f"sample ({smallest} rows x {label_fraction} rounds to 0)",
                f"pass a label fraction of at least {0.5 / smallest:.3g} or a milder imbalance ratio",
            )
        result = take_fraction(current, label_fraction, seed=seed)
        indices, current = indices[result.indices], result.dataset
    if max_train_samples is not None and len(indices) > max_train_samples:
        if max_train_samples < num_classes:
            raise ConfigError(
                f"max_train_samples {max_train_samples} is below the number of classes ({num_classes})",
                "raise max_train_samples",
            )
        result = take_fraction(current, max_train_samples / len(indices), seed=seed)
        indices = indices[result.indices][:max_train_samples]
    counts = class_counts(labels[indices], num_classes)
    return TrainSubset(np.sort(indices), [counts[c] for c in range(num_classes)])


# ------------------------------------------------------------------------------------------ policies
def make_sampler(sampler: str, labels: np.ndarray, seed: int) -> torch.utils.data.Sampler | None:
    """``None`` (shuffle), a ``ClassBalancedSampler`` or the per-epoch ``MajorityResampler``."""
    from hfssl.data import ClassBalancedSampler, MajorityResampler

    kind, ratio = parse_sampler(sampler)
    if kind == "none":
        return None
    if kind == "balanced":
        return ClassBalancedSampler(labels, seed=seed)
    return MajorityResampler(labels, ratio=ratio, seed=seed)


def class_weights(class_counts: list[int]) -> np.ndarray:
    """Inverse-frequency weights ``N / (C * n_c)`` (scikit-learn's ``class_weight="balanced"``)."""
    from sklearn.utils.class_weight import compute_class_weight

    counts = np.asarray(class_counts)
    y = np.repeat(np.arange(len(counts)), counts)
    return compute_class_weight("balanced", classes=np.arange(len(counts)), y=y)


class SoftTargetLoss:
    """Cross-entropy or focal loss on (possibly mixed-up) soft targets, optionally class-weighted.

    Hand-written focal loss: torch/torchvision only ship the sigmoid (binary) focal loss, and mixup
    needs the soft-target form ``-sum_c w_c t_c (1 - p_c)^gamma log p_c``.
    """

    def __init__(self, kind: str, weights: np.ndarray | None = None, gamma: float = 2.0) -> None:
        import torch

        self.kind = kind
        self.gamma = gamma
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = logits.float().log_softmax(dim=1)
        per_class = -target * log_p
        if self.kind == "focal":
            per_class = per_class * (1.0 - log_p.exp()).pow(self.gamma)
        if self.weights is not None:
            w = self.weights.to(logits.device)
            per_class = per_class * w
            # normalise like torch's weighted CE: divide by the targets' total weight
            return per_class.sum() / (target * w).sum().clamp_min(1e-12)
        return per_class.sum(dim=1).mean()


def make_loss(
    loss: str, class_counts: list[int], task: str, gamma: float = 2.0, ordinal_head: str | None = None
):
    """The training loss for a classification task, called as ``loss(outputs, target)``.

    ``target`` is one-hot (possibly mixed) ``(B, K)``, or the grade ``(B,)`` for the regression
    ordinal head. Ordinal heads: ``regression`` -> MSE on the grade (loss policies do not apply);
    ``classification`` -> the same soft-target CE / weighted / focal loss as any class;
    ``cumulative`` -> binary cross-entropy over the K-1 ``[y > j]`` tasks, ``weighted`` weighting
    each sample by its grade's class weight, ``focal`` using the focal form of each binary term."""
    import torch

    weights = class_weights(class_counts) if loss == "weighted" else None
    if task == "ordinal":
        head = ordinal_head or "regression"
        if head == "regression":
            if loss != "ce":
                raise ConfigError(
                    f"loss {loss!r} does not apply to the regression ordinal head (trained with MSE)",
                    "use --loss ce, or --ordinal-head classification|cumulative for per-grade losses",
                )
            mse = torch.nn.MSELoss()
            return lambda out, grade: mse(out.view(-1), grade.view(-1).float())
        if head == "cumulative":
            return CumulativeLoss(len(class_counts), weights, gamma if loss == "focal" else 0.0)
    return SoftTargetLoss("focal" if loss == "focal" else "ce", weights, gamma)


class CumulativeLoss:
    """``hfssl.models.cumulative_loss`` on (soft) one-hot targets, with per-grade sample weights."""

    def __init__(self, num_grades: int, weights: np.ndarray | None = None, gamma: float = 0.0) -> None:
        import torch

        self.num_grades = num_grades
        self.gamma = gamma
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from hfssl.models import cumulative_loss

        sample_weight = None if self.weights is None else target.float() @ self.weights.to(target.device)
        return cumulative_loss(logits, target, self.num_grades, sample_weight=sample_weight, gamma=self.gamma)


def make_augment(augment: str, spatial_dims: int, seed: int, dataset: str | None = None):
    """A batched ``hfssl.data`` augmentation (S1..S6, or ``corrupt:P`` with the corruptions of
    ``dataset``'s modality) or ``None``."""
    if augment in (None, "", "none"):
        return None
    if str(augment).startswith("corrupt:"):
        from hfssl.data.corruptions import RandomCorruption

        if dataset is None:
            raise ConfigError(
                "--augment corrupt:P needs the dataset's modality", "pass dataset= to make_augment"
            )
        return RandomCorruption(dataset, p=float(augment.partition(":")[2]), seed=seed)
    from hfssl.data import get_augmentation

    return get_augmentation(augment.upper(), spatial_dims=spatial_dims, seed=seed)


def mixup(
    images: torch.Tensor, targets: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix a batch with a shuffled copy of itself (Zhang et al. 2018), one lambda per batch.

    Hand-written (5 lines) rather than ``timm.data.Mixup``: timm's version needs even batch sizes
    and draws from numpy's global RNG, which breaks per-seed reproducibility here.
    """
    import torch

    if alpha <= 0:
        return images, targets
    # Beta draw seeded from the run's torch generator (torch.distributions takes no generator).
    lam = float(
        np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=generator))).beta(alpha, alpha)
    )
    perm = torch.randperm(images.shape[0], generator=generator).to(images.device)
    return lam * images + (1 - lam) * images[perm], lam * targets + (1 - lam) * targets[perm]
