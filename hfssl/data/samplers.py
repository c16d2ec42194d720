"""Epoch samplers: a plain per-epoch shuffle (pretraining), class-balanced sampling and the paper's
majority resampler (imbalanced training sets).

Both are ``torch.utils.data.Sampler`` s over row indices, deterministic for ``(seed, epoch)``: the
random draws of epoch ``e`` come from a generator seeded with ``seed`` and ``e`` only, so every
process of a distributed run draws the same sequence. Call ``sampler.set_epoch(epoch)`` before each
epoch (as with ``DistributedSampler``) to get a new draw; without it every epoch repeats epoch 0.

Distributed use:

* with ``accelerate``: pass the sampler to the ``DataLoader`` and ``accelerator.prepare`` it. Every
  process iterates the same sequence and accelerate's ``BatchSamplerShard`` hands each process its
  own batches; accelerate's ``DataLoaderShard`` also calls ``set_epoch`` on the sampler each time
  the loader is iterated. The samplers deliberately have no ``generator`` attribute, so accelerate
  leaves their randomness alone.
* with plain ``torch.distributed``: pass ``num_replicas`` and ``rank`` and each process gets
  ``indices[rank::num_replicas]`` of the epoch's sequence, padded by wrapping around so all ranks
  have the same length (``DistributedSampler``'s rule).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hfssl.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = ["ClassBalancedSampler", "EpochShuffleSampler", "MajorityResampler"]

# Mixes seed and epoch into one generator seed (like DistributedSampler's ``seed + epoch``, but
# seed 0 / epoch 1 and seed 1 / epoch 0 do not collide).
_EPOCH_STRIDE = 1_000_003


def _as_labels(labels: Sequence[int] | np.ndarray | torch.Tensor | Dataset, label_column: str) -> np.ndarray:
    """1D int64 labels from a sequence, array, tensor or a ``datasets.Dataset``'s label column."""
    if hasattr(labels, "column_names") and hasattr(labels, "features"):
        from hfssl.data.imbalance import read_labels

        array = read_labels(labels, label_column)  # type: ignore[arg-type]
    elif isinstance(labels, torch.Tensor):
        array = labels.detach().cpu().numpy()
    else:
        array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"sampler labels must be one class id per row; got shape {tuple(array.shape)}",
            "pass single-label class ids (multi-label data cannot be class-balanced this way)",
        )
    if array.size == 0:
        raise DataError("sampler got no labels (empty dataset)", "pass a non-empty training split")
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise DataError(f"sampler labels have dtype {array.dtype}", "pass integer class ids")
    if array.min() < 0:
        raise DataError("sampler labels contain negative class ids", "drop unlabelled rows first")
    return array.astype(np.int64, copy=False)


class _EpochSampler(torch.utils.data.Sampler[int]):
    """Shared epoch/seed/sharding logic; subclasses implement ``_epoch_indices(generator)``."""

    def __init__(self, seed: int, num_replicas: int, rank: int) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ConfigError(
                f"rank {rank} / num_replicas {num_replicas} is not a valid shard",
                "pass num_replicas >= 1 and 0 <= rank < num_replicas",
            )
        self.seed = int(seed)
        self.epoch = 0
        self.num_replicas = num_replicas
        self.rank = rank

    def set_epoch(self, epoch: int) -> None:
        """Use the draw of ``epoch`` on the next iteration (deterministic for ``(seed, epoch)``)."""
        self.epoch = int(epoch)

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * _EPOCH_STRIDE + self.epoch)

    def _epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _total(self) -> int:
        raise NotImplementedError

    def epoch_indices(self) -> np.ndarray:
        """The whole epoch's index sequence (all replicas), for inspection and tests."""
        return self._epoch_indices(self._generator()).numpy()

    def _shard(self, indices: torch.Tensor) -> torch.Tensor:
        if self.num_replicas == 1:
            return indices
        per_rank = math.ceil(len(indices) / self.num_replicas)
        total = per_rank * self.num_replicas
        if total > len(indices):  # pad by wrapping around, as DistributedSampler does
            reps = math.ceil(total / len(indices))
            indices = indices.repeat(reps)[:total]
        return indices[self.rank : total : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        yield from self._shard(self._epoch_indices(self._generator())).tolist()

    def __len__(self) -> int:
        return math.ceil(self._total() / self.num_replicas)


class EpochShuffleSampler(_EpochSampler):
    """A fresh permutation of ``num_samples`` rows each epoch, truncated to ``length``.

    Stateless across epochs (unlike ``RandomSampler`` with a running generator), so the position
    in a run is fully described by the epoch and the batches consumed in it: pretraining resumes
    bit-exactly by skipping the batches already consumed in the epoch.
    """

    def __init__(
        self, num_samples: int, length: int, seed: int, num_replicas: int = 1, rank: int = 0
    ) -> None:
        super().__init__(seed, num_replicas, rank)
        self.num_samples = int(num_samples)
        self.length = int(length)

    def _generator(self) -> torch.Generator:
        # reduced modulo 2**63 so that any integer seed (negative, huge) gives a valid generator seed
        return torch.Generator().manual_seed((self.seed * _EPOCH_STRIDE + self.epoch) % (2**63))

    def _total(self) -> int:
        return self.length

    def _epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randperm(self.num_samples, generator=generator)[: self.length]


class ClassBalancedSampler(_EpochSampler):
    """Draw ``num_samples`` rows with replacement so that every class is equally likely.

    Each row's weight is ``1 / count(its class)`` (the weights ``WeightedRandomSampler`` would take);
    the draw is ``torch.multinomial`` with a per-epoch generator. ``num_samples`` defaults to the
    number of rows. ``labels``: class ids (sequence, array, tensor) or a ``datasets.Dataset``.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | torch.Tensor | Dataset,
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        label_column: str = "label",
    ) -> None:
        super().__init__(seed, num_replicas, rank)
        self.labels = _as_labels(labels, label_column)
        self.num_samples = len(self.labels) if num_samples is None else int(num_samples)
        if self.num_samples < 1:
            raise ConfigError(f"num_samples {num_samples} is below 1", "pass num_samples >= 1 or None")
        counts = np.bincount(self.labels)
        self.class_counts = {int(c): int(n) for c, n in enumerate(counts) if n > 0}
        self.weights = torch.as_tensor(1.0 / counts[self.labels], dtype=torch.float64)

    def _total(self) -> int:
        return self.num_samples

    def _epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        return torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator)


class MajorityResampler(_EpochSampler):
    """The paper's per-epoch resampler: keep every minority row, redraw a majority subset each epoch.

    Every class is capped at ``floor(ratio * n_min)`` rows, ``n_min`` being the smallest class count;
    classes at or below the cap keep all their rows, larger ones get a fresh random subset of ``cap``
    rows every epoch (without replacement). Binary data: majority:minority = ``ratio`` (up to the
    floor); ``ratio=1`` is the paper's "mean resampler" (balanced epochs). The epoch's indices are
    shuffled when ``shuffle`` (default). ``labels``: class ids or a ``datasets.Dataset``.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | torch.Tensor | Dataset,
        ratio: float = 1.0,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        label_column: str = "label",
    ) -> None:
        super().__init__(seed, num_replicas, rank)
        try:
            r = Fraction(repr(ratio)) if isinstance(ratio, float) else Fraction(ratio)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"resampler ratio {ratio!r} is not a number", "pass e.g. ratio=1.0") from exc
        if r < 1:
            raise ConfigError(
                f"resampler ratio {ratio} is below 1",
                "pass ratio >= 1 (1 = balanced epochs, the mean resampler)",
            )
        self.ratio = ratio
        self.shuffle = shuffle
        self.labels = _as_labels(labels, label_column)
        present = np.unique(self.labels)
        self._rows = {int(c): torch.from_numpy(np.flatnonzero(self.labels == c)) for c in present}
        smallest = min(len(rows) for rows in self._rows.values())
        self.cap = math.floor(r * smallest)
        self.class_counts = {c: min(len(rows), self.cap) for c, rows in self._rows.items()}
        """Rows per class in every epoch."""

    def _total(self) -> int:
        return sum(self.class_counts.values())

    def _epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        parts = []
        for c in sorted(self._rows):
            rows = self._rows[c]
            if len(rows) > self.cap:
                rows = rows[torch.randperm(len(rows), generator=generator)[: self.cap]]
            parts.append(rows)
        indices = torch.cat(parts)
        if self.shuffle:
            indices = indices[torch.randperm(len(indices), generator=generator)]
        return indices

    def __repr__(self) -> str:
        return f"MajorityResampler(ratio={self.ratio}, per_class={self.class_counts}, seed={self.seed})"

    def state(self) -> dict[str, Any]:
        """What to record with a run: ratio, per-class counts per epoch, seed."""
        return {"ratio": self.ratio, "class_counts": dict(self.class_counts), "seed": self.seed}
