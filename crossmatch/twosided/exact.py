"""Exact optima for small markets (ALGORITHMS.md §3.8.3): every stable matching, and the minimum of any cost.

:func:`all_stable_matchings` enumerates the closed subsets of the rotation poset (one stable matching
each, lattice theory), so it is exact for any ``N`` but its output can grow exponentially — use it for
``N ≤ 10`` as the paper does. :func:`brute_force_stable` checks all ``N!`` permutations and exists to
test the rotation machinery (``N ≤ 8``).
"""

from __future__ import annotations

import itertools

import numpy as np

from crossmatch.twosided.costs import blocking_pairs_batch, costs
from crossmatch.twosided.instance import Instance
from crossmatch.twosided.rotations import apply_rotations, rotation_poset

MAX_ENUMERATED = 200_000  # guard against pathological (exponential) instances


def all_stable_matchings(inst: Instance) -> list[np.ndarray]:
    """Every stable matching, as A-partner arrays (from ``M_A`` towards ``M_B``)."""
    poset = rotation_poset(inst)
    k = len(poset.rotations)
    out: list[np.ndarray] = []
    chosen: list[int] = []
    included = [False] * k

    # Decide rotations in elimination order (a linear extension): one may be included only when all
    # its predecessors are, so every leaf of the recursion is a distinct closed set.
    def rec(idx: int) -> None:
        if len(out) > MAX_ENUMERATED:
            raise ValueError(f"more than {MAX_ENUMERATED} stable matchings; exact enumeration is for small N")
        if idx == k:
            out.append(apply_rotations(poset.m_a, poset.rotations, chosen))
            return
        rec(idx + 1)
        if all(included[p] for p in poset.preds[idx]):
            included[idx] = True
            chosen.append(idx)
            rec(idx + 1)
            chosen.pop()
            included[idx] = False

    rec(0)
    return out


def exact_min(inst: Instance, cost: str = "seq") -> np.ndarray:
    """A stable matching of minimum ``cost`` (ties: the first found, nearest ``M_A``)."""
    best, best_c = None, None
    for m in all_stable_matchings(inst):
        c = costs(inst, m).get(cost)
        if best_c is None or c < best_c:
            best, best_c = m, c
    assert best is not None  # M_A is always stable
    return best


def brute_force_stable(inst: Instance, max_n: int = 8) -> list[np.ndarray]:
    """Every stable matching by checking all ``N!`` permutations (tests only)."""
    n = inst.n
    if n > max_n:
        raise ValueError(f"brute force over {n}! permutations is too slow; N must be <= {max_n}")
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int64)
    ra = np.broadcast_to(inst.rank_a, (len(perms), n, n))
    rb = np.broadcast_to(inst.rank_b, (len(perms), n, n))
    nbp = blocking_pairs_batch(ra, rb, perms)
    return [p for p in perms[nbp == 0]]
