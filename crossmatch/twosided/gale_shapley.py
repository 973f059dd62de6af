"""Gale–Shapley deferred acceptance, either side proposing (ALGORITHMS.md §3.8.1).

Two engines return the same proposer-optimal matching (it is unique, whatever the proposal order):

* small markets: a plain loop over Python lists (numpy's per-cell overhead would dominate);
* large markets: McVitie–Wilson *parallel rounds* in numpy — every free proposer proposes at once and each
  acceptor keeps the best of her holder and her new proposals — until few proposers are left, then the
  same sequential loop on the remaining chain (the long tail of rounds with one proposer each would cost
  a numpy call apiece).

Both accept rectangular markets (complete lists): proposers that exhaust their list stay unmatched.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from crossmatch.twosided.costs import costs
from crossmatch.twosided.instance import Instance, inverse_matching

Side = Literal["a", "b"]
_VECTOR_MIN_CELLS = 4096  # below this the list engine wins
_TAIL_FREE = 24  # parallel rounds stop when this few proposers are free


def deferred_acceptance_lists(pref_p: list[list[int]], rank_q: list[list[int]]) -> list[int]:
    """Proposer-optimal matching from Python lists: ``pref_p[i]`` = proposer i's list (best first),
    ``rank_q[j][i]`` = rank of proposer i for acceptor j. Returns each proposer's partner or -1."""
    n_p = len(pref_p)
    n_q = len(rank_q)
    m = len(pref_p[0]) if n_p else 0
    nxt = [0] * n_p
    holder = [-1] * n_q
    match = [-1] * n_p
    free = list(range(n_p - 1, -1, -1))
    while free:
        i = free.pop()
        while nxt[i] < m:
            j = pref_p[i][nxt[i]]
            nxt[i] += 1
            h = holder[j]
            if h < 0:
                holder[j] = i
                match[i] = j
                break
            rj = rank_q[j]
            if rj[i] < rj[h]:
                holder[j] = i
                match[i] = j
                match[h] = -1
                i = h  # the rejected holder proposes next (same loop, no push/pop)
    return match


def _deferred_acceptance_numpy(pref_p: np.ndarray, rank_q: np.ndarray) -> np.ndarray:
    n_p, m = pref_p.shape
    nxt = np.zeros(n_p, dtype=np.int64)
    holder = np.full(m, -1, dtype=np.int64)
    holder_rank = np.full(m, n_p, dtype=np.int64)  # rank of the held proposer; n_p = nobody
    free = np.arange(n_p)
    while free.size > _TAIL_FREE:
        active = free[nxt[free] < m]
        if active.size == 0:
            free = active
            break
        targets = pref_p[active, nxt[active]]
        nxt[active] += 1
        ranks = rank_q[targets, active].astype(np.int64)
        # Best proposal per target: sort by (target, rank) and keep the first of each target.
        order = np.lexsort((ranks, targets))
        t_sorted = targets[order]
        first = np.ones(order.size, dtype=bool)
        first[1:] = t_sorted[1:] != t_sorted[:-1]
        best = order[first]
        bt, br, bp = targets[best], ranks[best], active[best]
        win = br < holder_rank[bt]
        losers_held = holder[bt[win]]
        holder[bt[win]] = bp[win]
        holder_rank[bt[win]] = br[win]
        accepted = np.zeros(active.size, dtype=bool)
        accepted[best[win]] = True
        free = np.concatenate([active[~accepted], losers_held[losers_held >= 0]])
    match = np.full(n_p, -1, dtype=np.int64)
    held = holder >= 0
    match[holder[held]] = np.flatnonzero(held)
    if free.size:
        # Sequential tail: same algorithm, one proposer at a time, on numpy rows.
        holder_l = holder.tolist()
        for i0 in free.tolist():
            i = i0
            while nxt[i] < m:
                j = int(pref_p[i, nxt[i]])
                nxt[i] += 1
                h = holder_l[j]
                if h < 0:
                    holder_l[j] = i
                    match[i] = j
                    break
                if rank_q[j, i] < rank_q[j, h]:
                    holder_l[j] = i
                    match[i] = j
                    match[h] = -1
                    i = h
    return match


def deferred_acceptance(pref_p: np.ndarray, rank_q: np.ndarray) -> np.ndarray:
    """Proposer-optimal stable matching. ``pref_p``: proposers × acceptors (lists, best first);
    ``rank_q``: acceptors × proposers (0-based ranks). Returns each proposer's partner or -1."""
    if pref_p.size < _VECTOR_MIN_CELLS:
        return np.asarray(deferred_acceptance_lists(pref_p.tolist(), rank_q.tolist()), dtype=np.int64)
    return _deferred_acceptance_numpy(np.asarray(pref_p), np.asarray(rank_q))


def gale_shapley(inst: Instance, proposer: Side = "a") -> np.ndarray:
    """§3.8.1: the ``proposer``-optimal stable matching, as A's partner array (``M_A`` or ``M_B``)."""
    if proposer == "a":
        if inst.n * inst.n < _VECTOR_MIN_CELLS:
            pa, _, _, rb = inst.lists
            return np.asarray(deferred_acceptance_lists(pa, rb), dtype=np.int64)
        return deferred_acceptance(inst.pref_a, inst.rank_b)
    if proposer == "b":
        if inst.n * inst.n < _VECTOR_MIN_CELLS:
            _, pb, ra, _ = inst.lists
            mb = np.asarray(deferred_acceptance_lists(pb, ra), dtype=np.int64)
        else:
            mb = deferred_acceptance(inst.pref_b, inst.rank_a)
        return inverse_matching(mb, inst.n)
    raise ValueError(f"proposer must be 'a' or 'b', got {proposer!r}")


def gs_best(inst: Instance, cost: str = "seq") -> np.ndarray:
    """"GS" of Tables 2–3: run both sides proposing and keep the lower ``cost``; a tie keeps A-proposing."""
    return gs_best_many(inst, (cost,))[cost]


def gs_best_many(inst: Instance, cost_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """:func:`gs_best` for several target costs from one pair of GS runs."""
    ma, mb = gale_shapley(inst, "a"), gale_shapley(inst, "b")
    ca, cb = costs(inst, ma), costs(inst, mb)
    return {c: (mb if cb.get(c) < ca.get(c) else ma) for c in cost_names}
