"""Costs and stability of a matching, single and batched (ALGORITHMS.md §3.1, §3.7).

All costs use **1-based** ranks (Ambiguity 3.7-A). With 0-based ranks, as in Tziavelis's Java, SEq is the
same, Bal is ``N`` lower and Egal ``2N`` lower for a perfect matching; :func:`costs` takes ``one_based``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossmatch.twosided.instance import Instance

COSTS = ("seq", "egal", "bal", "regret")


@dataclass(frozen=True)
class Costs:
    """SEq, Egal, Bal and Regret of one matching (lower is better), plus the side sums."""

    p_a: int
    p_b: int
    seq: int
    egal: int
    bal: int
    regret: int

    def get(self, name: str) -> int:
        if name not in COSTS:
            raise ValueError(f"unknown cost {name!r}; known: {COSTS}")
        return int(getattr(self, name))


def costs(inst: Instance, match: np.ndarray, *, one_based: bool = True) -> Costs:
    """§3.1: ``P_A = Σ p^A_{i,m(i)}``, ``P_B = Σ p^B_{m(i),i}``, SEq, Egal, Bal = max(P_A, P_B), Regret.

    Unmatched agents (``match = -1``) contribute nothing; a row assignment that is not one-to-one (an
    argmax output) is costed pair by pair, as the paper's tables do.
    """
    match = np.asarray(match)
    rows = np.flatnonzero(match >= 0)
    cols = match[rows]
    off = 1 if one_based else 0
    pa = inst.rank_a[rows, cols].astype(np.int64) + off
    pb = inst.rank_b[cols, rows].astype(np.int64) + off
    sa, sb = int(pa.sum()), int(pb.sum())
    reg = int(max(pa.max(initial=0), pb.max(initial=0)))
    return Costs(p_a=sa, p_b=sb, seq=abs(sa - sb), egal=sa + sb, bal=max(sa, sb), regret=reg)


def blocking_pairs(inst: Instance, match: np.ndarray) -> int:
    """Number of blocking pairs ``(a_v, b_w)`` (§3.1), vectorised over all ``N × M`` pairs.

    Unmatched agents prefer every candidate to being single. If ``match`` is not one-to-one, a B-agent's
    partner is taken to be the best A-agent assigned to her.
    """
    return int(blocking_pairs_batch(inst.rank_a[None], inst.rank_b[None], np.asarray(match)[None])[0])


def is_stable(inst: Instance, match: np.ndarray) -> bool:
    """One-to-one, perfect and free of blocking pairs."""
    match = np.asarray(match)
    return bool(is_one_to_one_batch(match[None], inst.rank_a.shape[1])[0] and (match >= 0).all()
                and blocking_pairs(inst, match) == 0)


def is_one_to_one_batch(match: np.ndarray, m: int) -> np.ndarray:
    """``(B,)`` bool: no B-agent is assigned twice (``-1`` entries are ignored)."""
    b, n = match.shape
    counts = np.zeros((b, m + 1), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(b), n), np.where(match >= 0, match, m).ravel()), 1)
    return np.asarray((counts[:, :m] <= 1).all(axis=1))


def current_ranks_batch(rank_a: np.ndarray, rank_b: np.ndarray, match: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-based rank of every agent's partner (``M``/``N`` = single, i.e. worse than anyone)."""
    bsz, n, m = rank_a.shape
    ok = match >= 0
    safe = np.where(ok, match, 0)
    cur_a = np.where(ok, np.take_along_axis(rank_a, safe[..., None], axis=2)[..., 0], m)
    assigned = np.zeros((bsz, n, m), dtype=bool)
    bi, ii = np.nonzero(ok)
    assigned[bi, ii, match[bi, ii]] = True
    rb_t = rank_b.transpose(0, 2, 1)  # (B, N, M): rank of a_i in b_j's list
    cur_b = np.where(assigned, rb_t, n).min(axis=1)  # (B, M)
    return cur_a, cur_b


def blocking_pairs_batch(rank_a: np.ndarray, rank_b: np.ndarray, match: np.ndarray) -> np.ndarray:
    """``(B,)`` blocking-pair counts for a batch of instances (``rank_a``: B×N×M, ``match``: B×N)."""
    cur_a, cur_b = current_ranks_batch(rank_a, rank_b, match)
    blk = (rank_a < cur_a[:, :, None]) & (rank_b.transpose(0, 2, 1) < cur_b[:, None, :])
    return blk.sum(axis=(1, 2))


def costs_batch(rank_a: np.ndarray, rank_b: np.ndarray, match: np.ndarray, *, one_based: bool = True) -> dict[str, np.ndarray]:
    """Batched :func:`costs`: arrays of shape ``(B,)`` keyed ``p_a, p_b, seq, egal, bal, regret``."""
    ok = match >= 0
    safe = np.where(ok, match, 0)
    off = 1 if one_based else 0
    pa = np.where(ok, np.take_along_axis(rank_a, safe[..., None], axis=2)[..., 0] + off, 0)
    rb_t = rank_b.transpose(0, 2, 1)
    pb = np.where(ok, np.take_along_axis(rb_t, safe[..., None], axis=2)[..., 0] + off, 0)
    sa, sb = pa.sum(axis=1).astype(np.int64), pb.sum(axis=1).astype(np.int64)
    return {
        "p_a": sa,
        "p_b": sb,
        "seq": np.abs(sa - sb),
        "egal": sa + sb,
        "bal": np.maximum(sa, sb),
        "regret": np.maximum(pa.max(axis=1), pb.max(axis=1)).astype(np.int64),
    }
