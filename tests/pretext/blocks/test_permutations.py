"""Greedy maximal-Hamming permutation sets (Noroozi & Favaro 2016)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import hamming_permutation_set, min_hamming_distance


def _brute_min_distance(perms: np.ndarray) -> int:
    return min(int((a != b).sum()) for a, b in itertools.combinations(perms, 2))


def test_nine_tiles_hundred_perms() -> None:
    perms = hamming_permutation_set(9, 100, seed=0).numpy()
    assert perms.shape == (100, 9)
    assert all(sorted(row) == list(range(9)) for row in perms.tolist())
    assert len({tuple(r) for r in perms.tolist()}) == 100
    reported = min_hamming_distance(perms)
    assert reported == _brute_min_distance(perms)
    assert reported >= 6  # measured: 6 (Noroozi's mean-greedy set reaches only 3)
    noroozi = hamming_permutation_set(9, 100, seed=0, method="maxmean")
    assert min_hamming_distance(noroozi) < reported


def test_eight_cubes_hundred_perms() -> None:
    perms = hamming_permutation_set(8, 100, seed=0).numpy()
    assert len({tuple(r) for r in perms.tolist()}) == 100
    assert min_hamming_distance(perms) == _brute_min_distance(perms) >= 5  # measured: 5


def test_reproducible_for_a_seed_and_different_across_seeds() -> None:
    a = hamming_permutation_set(8, 30, seed=3)
    b = hamming_permutation_set(8, 30, seed=3)
    assert a.equal(b)
    a[0, 0] = 99  # callers get their own copy; the cache is not mutated
    assert hamming_permutation_set(8, 30, seed=3)[0, 0] != 99
    assert not hamming_permutation_set(8, 30, seed=4).equal(b)


def test_maxmin_is_greedy_farthest_point() -> None:
    perms = hamming_permutation_set(5, 20, seed=1).numpy()
    cands = np.array(list(itertools.permutations(range(5))))
    for k in range(1, len(perms)):
        chosen = perms[:k]
        dist_to_set = (cands[:, None, :] != chosen[None]).sum(-1).min(1)
        own = int((perms[k][None] != chosen).sum(-1).min())
        assert own == dist_to_set.max()


def test_impossible_requests_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        hamming_permutation_set(3, math.factorial(3) + 1)
    with pytest.raises(ConfigError):
        hamming_permutation_set(9, 10, method="random")
    assert len(hamming_permutation_set(3, 6)) == 6  # all of them
