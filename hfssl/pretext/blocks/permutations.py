"""Permutation sets for Jigsaw and Rubik's cube pretext tasks (Noroozi & Favaro, 2016).

A permutation set is chosen greedily from all ``num_tiles!`` candidates so that its members
are far apart in Hamming distance, making the ordering classes distinguishable.

Two greedy criteria are offered:

* ``"maxmin"`` (default): farthest-point selection, each new permutation maximises its
  *minimum* Hamming distance to those already chosen. This maximises the set's minimum
  distance, the quantity that makes classes hard to confuse.
* ``"maxmean"``: Noroozi & Favaro's released code, maximising the *mean* distance to the set.

Both start from a seeded random permutation and break ties at random (seeded), so a set is
a deterministic function of ``(num_tiles, num_perms, seed, method)``; results are cached in
process. Candidates are enumerated exactly for ``num_tiles <= 10`` (10! rows fit in memory)
and sampled (``_MAX_SAMPLED`` random permutations) above.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch

from hfssl.errors import ConfigError

_METHODS = ("maxmin", "maxmean")
_EXACT_LIMIT = 10
_MAX_SAMPLED = 200_000


def _candidates(num_tiles: int, rng: np.random.Generator) -> np.ndarray:
    if num_tiles <= _EXACT_LIMIT:
        # itertools yields lexicographic order; np.fromiter on a flat chain is the fastest way in numpy
        flat = itertools.chain.from_iterable(itertools.permutations(range(num_tiles)))
        return np.fromiter(flat, dtype=np.int8, count=math.factorial(num_tiles) * num_tiles).reshape(
            -1, num_tiles
        )
    keys = rng.random((_MAX_SAMPLED, num_tiles))
    return np.unique(np.argsort(keys, axis=1).astype(np.int16), axis=0)


@functools.lru_cache(maxsize=32)
def _cached_set(num_tiles: int, num_perms: int, seed: int, method: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cands = _candidates(num_tiles, rng)
    n = cands.shape[0]
    if num_perms > n:
        raise ConfigError(
            f"cannot choose {num_perms} distinct permutations of {num_tiles} tiles ({n} candidates)",
            f"use num_perms <= {n}",
        )
    columns = np.ascontiguousarray(cands.T)  # column-wise compares are ~25x faster than row sums

    def hamming_to(j: int) -> np.ndarray:
        dist = np.zeros(n, dtype=np.int32)
        for i, value in enumerate(cands[j]):
            dist += columns[i] != value
        return dist

    chosen = [int(rng.integers(n))]
    # running min (maxmin) or sum (maxmean) of Hamming distances to the chosen set
    score = hamming_to(chosen[0])
    taken = np.zeros(n, dtype=bool)
    taken[chosen[0]] = True
    for _ in range(num_perms - 1):
        masked = np.where(taken, -1, score)
        best = np.flatnonzero(masked == masked.max())
        j = int(best[rng.integers(best.size)])
        chosen.append(j)
        taken[j] = True
        dist = hamming_to(j)
        score = np.minimum(score, dist) if method == "maxmin" else score + dist
    out = cands[chosen].astype(np.int64)
    out.flags.writeable = False
    return out


def hamming_permutation_set(
    num_tiles: int, num_perms: int = 100, seed: int = 0, method: str = "maxmin"
) -> torch.Tensor:
    """Greedy maximal-Hamming-distance permutation set, ``(num_perms, num_tiles)`` int64.

    Row ``i`` is the permutation of class ``i``; the ordering is deterministic for a seed.
    """
    if num_tiles < 2:
        raise ConfigError(f"need at least 2 tiles, got {num_tiles}", "use e.g. 9 (2D 3x3) or 8 (3D 2x2x2)")
    if num_perms < 1:
        raise ConfigError(f"num_perms must be >= 1, got {num_perms}", "use e.g. 100")
    if method not in _METHODS:
        raise ConfigError(f"unknown permutation selection method {method!r}", f"use one of {_METHODS}")
    return torch.from_numpy(_cached_set(num_tiles, num_perms, seed, method).copy())


def min_hamming_distance(perms: torch.Tensor | np.ndarray) -> int:
    """Minimum pairwise Hamming distance between the rows of ``perms`` (N, T)."""
    p = torch.as_tensor(np.asarray(perms))
    if p.dim() != 2 or p.shape[0] < 2:
        raise ValueError(f"need at least two permutations as an (N, T) array, got shape {tuple(p.shape)}")
    dist = (p[:, None, :] != p[None, :, :]).sum(-1)
    dist.fill_diagonal_(p.shape[1] + 1)
    return int(dist.min())
