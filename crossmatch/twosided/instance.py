"""A two-sided matching instance: validated preferences of both sides (ALGORITHMS.md §3.1, §3.3).

Conventions used throughout ``crossmatch.twosided``:

* side A has ``N`` agents ``a_i``, side B has ``M`` agents ``b_j``; the algorithms of §3.8 need ``N = M``
  (complete preference lists). Unequal sides are padded by the caller (``crossmatch.twosided.market``).
* ``rank_a[i, j]`` is the **0-based** position of ``b_j`` in ``a_i``'s list (0 = best), ``rank_b[j, i]``
  likewise. Costs are reported with **1-based** ranks (§3.7, Ambiguity 3.7-A: 1-based everywhere).
* a matching is an int array ``match`` of length ``N``: ``match[i]`` is the B-partner of ``a_i`` or ``-1``.
* satisfaction ``s`` (the network input, larger = better) and ranks convert through §3.3: the reference
  code's linspace mapping ``s = 0.1 + 0.9 (N - p)/(N - 1)`` by default, the paper's
  ``s = 0.1 + 0.9 (N - p)/N`` as ``scaling="paper"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from crossmatch.errors import InputError

Scaling = Literal["code", "paper"]
Ties = Literal["error", "break"]
C_MIN = 0.1  # §3.3: the satisfaction of the least preferred candidate


def satisfaction_from_ranks(ranks: np.ndarray, *, scaling: Scaling = "code") -> np.ndarray:
    """Map 1-based ranks (last axis = one agent's list of length ``n``) to satisfaction (§3.3).

    ``code``: ``0.1 + 0.9 (n - p)/(n - 1)`` (rank 1 → 1.0; ``n = 1`` gives 0.1 as numpy's
    ``linspace(0.1, 1, 1)`` does); ``paper``: ``0.1 + 0.9 (n - p)/n``.
    """
    p = np.asarray(ranks, dtype=np.float64)
    n = p.shape[-1]
    if scaling == "paper":
        return C_MIN + (1.0 - C_MIN) * (n - p) / n
    if scaling != "code":
        raise ValueError(f"scaling must be 'code' or 'paper', got {scaling!r}")
    if n == 1:
        return np.full_like(p, C_MIN)
    return C_MIN + (1.0 - C_MIN) * (n - p) / (n - 1)


def ranks_from_satisfaction(s: np.ndarray, *, scaling: Scaling = "code") -> np.ndarray:
    """Invert :func:`satisfaction_from_ranks`: 1-based integer ranks (§3.2 step 4, §3.3)."""
    x = np.asarray(s, dtype=np.float64)
    n = x.shape[-1]
    if scaling == "paper":
        return (n - np.rint((x - C_MIN) * n / (1.0 - C_MIN))).astype(np.int64)
    if scaling != "code":
        raise ValueError(f"scaling must be 'code' or 'paper', got {scaling!r}")
    return (np.rint((n - 1) * (1.0 - (x - C_MIN) / (1.0 - C_MIN))) + 1).astype(np.int64)


def ranks_from_scores(scores: np.ndarray, *, ties: Ties = "error", name: str = "scores") -> np.ndarray:
    """0-based ranks of every row of ``scores`` (larger score = more preferred).

    Ties: ``"error"`` raises :class:`InputError` naming the first rows with equal scores; ``"break"``
    ranks equal scores by candidate index, lower index first (a stable sort), which is the documented
    behaviour the ``match`` stage relies on (TF-IDF similarities tie often, e.g. at 0).
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(f"{name} must be a 2-D matrix, got shape {x.shape}", file=name)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {x.shape}); a matching needs at least one agent per side", file=name)
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1)) + 1
        raise InputError(f"{name} has {int(bad.sum())} NaN/inf value(s)", file=name, rows=rows.tolist())
    order = np.argsort(-x, axis=1, kind="stable")
    if ties == "error":
        srt = np.take_along_axis(x, order, axis=1)
        tied = (np.diff(srt, axis=1) == 0).any(axis=1)
        if tied.any():
            rows = np.flatnonzero(tied) + 1
            raise InputError(
                f"{name} has tied preferences (equal scores in one agent's row); strict preferences are "
                "required, or pass ties='break' to rank ties by candidate index",
                file=name,
                rows=rows.tolist(),
            )
    elif ties != "break":
        raise ValueError(f"ties must be 'error' or 'break', got {ties!r}")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(x.shape[1])[None, :].repeat(x.shape[0], 0), axis=1)
    return rank.astype(np.int32)


@dataclass(frozen=True)
class Instance:
    """Strict, complete preferences of both sides (0-based ranks; see the module docstring)."""

    rank_a: np.ndarray  # (N, M) int32
    rank_b: np.ndarray  # (M, N) int32

    @classmethod
    def from_scores(cls, score_a: np.ndarray, score_b: np.ndarray, *, ties: Ties = "error") -> Instance:
        """From score matrices (``score_a``: N×M, ``score_b``: M×N; larger = preferred), e.g. satisfaction."""
        ra = ranks_from_scores(score_a, ties=ties, name="score_a")
        rb = ranks_from_scores(score_b, ties=ties, name="score_b")
        return cls.checked(ra, rb)

    @classmethod
    def from_ranks(cls, rank_a: np.ndarray, rank_b: np.ndarray, *, one_based: bool = True) -> Instance:
        """From rank matrices (1-based by default); every row must be a permutation of the ranks."""
        off = 1 if one_based else 0
        ra = np.asarray(rank_a) - off
        rb = np.asarray(rank_b) - off
        for name, r in (("rank_a", ra), ("rank_b", rb)):
            if r.ndim != 2 or r.size == 0:
                raise InputError(f"{name} must be a non-empty 2-D matrix, got shape {r.shape}", file=name)
            ok = (np.sort(r, axis=1) == np.arange(r.shape[1])[None, :]).all(axis=1)
            if not ok.all():
                rows = np.flatnonzero(~ok) + 1
                raise InputError(f"{name} rows are not permutations of the ranks {off}..{r.shape[1] - 1 + off} "
                                 "(ties or gaps)", file=name, rows=rows.tolist())
        return cls.checked(ra.astype(np.int32), rb.astype(np.int32))

    @classmethod
    def checked(cls, rank_a: np.ndarray, rank_b: np.ndarray) -> Instance:
        """Shape checks shared by the constructors; the algorithms need ``N = M``."""
        if rank_a.shape != rank_b.shape[::-1]:
            raise InputError(f"side A is {rank_a.shape} (N×M) but side B is {rank_b.shape}; B must be M×N")
        if rank_a.shape[0] != rank_a.shape[1]:
            raise InputError(
                f"the instance is not square (N={rank_a.shape[0]}, M={rank_a.shape[1]}); the stable-matching "
                "algorithms need N = M — pad the smaller side with dummy agents (crossmatch.twosided.market)"
            )
        return cls(rank_a, rank_b)

    @property
    def n(self) -> int:
        return int(self.rank_a.shape[0])

    @cached_property
    def pref_a(self) -> np.ndarray:
        """``pref_a[i, k]`` = index of the B-agent at 0-based position ``k`` of ``a_i``'s list."""
        return np.argsort(self.rank_a, axis=1).astype(np.int32)

    @cached_property
    def pref_b(self) -> np.ndarray:
        return np.argsort(self.rank_b, axis=1).astype(np.int32)

    @cached_property
    def lists(self) -> tuple[list[list[int]], list[list[int]], list[list[int]], list[list[int]]]:
        """``(pref_a, pref_b, rank_a, rank_b)`` as nested Python lists: the sequential algorithms index
        single cells, which is ~10× faster on lists than on numpy scalars."""
        return self.pref_a.tolist(), self.pref_b.tolist(), self.rank_a.tolist(), self.rank_b.tolist()

    def satisfaction(self, *, scaling: Scaling = "code") -> tuple[np.ndarray, np.ndarray]:
        """The WeaveNet inputs ``(S_A, S_B)`` of this instance (§3.3)."""
        return (satisfaction_from_ranks(self.rank_a + 1, scaling=scaling),
                satisfaction_from_ranks(self.rank_b + 1, scaling=scaling))

    def swapped(self) -> Instance:
        """The same market with the roles of A and B exchanged."""
        return Instance(self.rank_b, self.rank_a)


def inverse_matching(match: np.ndarray, m: int) -> np.ndarray:
    """Partner of every B-agent (``-1`` if none) for a one-to-one ``match``."""
    inv = np.full(m, -1, dtype=np.int64)
    ok = match >= 0
    inv[match[ok]] = np.flatnonzero(ok)
    return inv


def matching_matrix(match: np.ndarray, m: int) -> np.ndarray:
    """The 0/1 ``N × M`` matrix of a matching given as a partner array."""
    x = np.zeros((len(match), m), dtype=np.int8)
    ok = match >= 0
    x[np.flatnonzero(ok), match[ok]] = 1
    return x
