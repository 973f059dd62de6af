"""PolyMin: the better of the minimum-egalitarian and minimum-regret stable matchings (ALGORITHMS.md §3.8.2).

* minimum egalitarian (Irving–Leather–Gusfield): a maximum-weight closed set of rotations, weight = Egal
  decrease, found as a minimum s–t cut (``scipy.sparse.csgraph.maximum_flow``);
* minimum regret: Gusfield's BreakMarriage walks as implemented by Tziavelis (§3.8.2, reproduced
  step by step because the published PolyMin numbers come from that code).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

from crossmatch.twosided.costs import costs
from crossmatch.twosided.instance import Instance
from crossmatch.twosided.rotations import RotationPoset, apply_rotations, break_marriage, rotation_poset


def max_weight_closure(weights: list[int], preds: list[set[int]]) -> list[int]:
    """Indices of a maximum-weight predecessor-closed set (Picard 1976, via a minimum cut).

    source → k with capacity ``w_k`` (if > 0), k → sink with ``−w_k`` (if < 0), k → every predecessor with
    an "infinite" capacity (larger than the total positive weight). The source side of a minimum cut is the
    closure; we return the smallest optimal one (the nodes reachable in the residual graph).
    """
    k = len(weights)
    if k == 0:
        return []
    src, snk = k, k + 1
    big = sum(w for w in weights if w > 0) + 1
    rows: list[int] = []
    cols: list[int] = []
    caps: list[int] = []
    for i, w in enumerate(weights):
        if w > 0:
            rows.append(src)
            cols.append(i)
            caps.append(w)
        elif w < 0:
            rows.append(i)
            cols.append(snk)
            caps.append(-w)
        for p in preds[i]:
            rows.append(i)
            cols.append(p)
            caps.append(big)
    if not rows or all(r != src for r in rows):
        return []  # no rotation lowers Egal: M_A is min-egalitarian
    cap = csr_matrix((np.asarray(caps, dtype=np.int32), (rows, cols)), shape=(k + 2, k + 2))
    cap.sum_duplicates()
    flow = maximum_flow(cap, src, snk, method="dinic").flow
    residual = (cap - flow).tocsr()
    residual.data[residual.data < 0] = 0  # only positive residual capacities are edges
    residual.eliminate_zeros()
    reach = breadth_first_order(residual, src, directed=True, return_predecessors=False)
    return sorted(int(v) for v in reach if v < k)


def min_egalitarian(inst: Instance, poset: RotationPoset | None = None) -> np.ndarray:
    """The minimum-egalitarian stable matching (Irving–Leather–Gusfield; §3.8.2)."""
    poset = poset or rotation_poset(inst)
    _, _, ra, rb = inst.lists
    w = [rot.egal_decrease(ra, rb) for rot in poset.rotations]
    return apply_rotations(poset.m_a, poset.rotations, max_weight_closure(w, poset.preds))


def _regret(match: list[int], ra: list[list[int]], rb: list[list[int]]) -> int:
    return max(max(ra[x][y], rb[y][x]) for x, y in enumerate(match))


def _regret_walk(start: list[int], end: list[int], pref_p: list[list[int]], rank_p: list[list[int]],
                 rank_q: list[list[int]]) -> list[int] | None:
    """One side of Tziavelis's min-regret search, from the proposer-optimal ``start`` towards ``end``.

    While the regret is attained by an acceptor ``w``: stop at the current matching if ``w`` already has her
    ``end`` partner, else break the marriage of ``w``'s partner. When no acceptor attains it, return the
    previous matching (Tziavelis's rule, §3.8.2 step 2 — kept as published; it can return ``None``).
    """
    cur, prev = start[:], None
    inv_end = {y: x for x, y in enumerate(end)}
    while True:
        r = max(max(rank_p[x][y], rank_q[y][x]) for x, y in enumerate(cur))
        w_partner = next((x for x, y in enumerate(cur) if rank_q[y][x] == r), None)
        if w_partner is None:
            return prev
        w = cur[w_partner]
        if inv_end[w] == w_partner:
            return cur
        nxt = break_marriage(cur, w_partner, pref_p, rank_p, rank_q)
        if nxt is None:  # cannot happen for a stable cur ≠ end on w; kept as a guard
            return cur
        prev, cur = cur, nxt


def min_regret(inst: Instance, poset: RotationPoset | None = None) -> np.ndarray:
    """Minimum-regret stable matching as implemented by Tziavelis (§3.8.2 "Minimum regret")."""
    pa, pb, ra, rb = inst.lists
    m_a = poset.m_a if poset else _gs_list(inst, "a")
    m_b = poset.m_b if poset else _gs_list(inst, "b")
    # B-side candidate: from M_A, A proposing (breaking A-agents' marriages improves B-agents).
    cand_b = _regret_walk(m_a, m_b, pa, ra, rb)
    # A-side candidate: the mirror image, from M_B with B proposing, in B-indexed form.
    inv_a = [0] * inst.n
    for x, y in enumerate(m_a):
        inv_a[y] = x
    inv_b = [0] * inst.n
    for x, y in enumerate(m_b):
        inv_b[y] = x
    cand_a_inv = _regret_walk(inv_b, inv_a, pb, rb, ra)
    cand_a = None
    if cand_a_inv is not None:
        cand_a = [0] * inst.n
        for y, x in enumerate(cand_a_inv):
            cand_a[x] = y
    if cand_a is None and cand_b is None:
        return np.asarray(m_a, dtype=np.int64)  # unreachable in practice; M_A is stable
    if cand_b is None:
        return np.asarray(cand_a, dtype=np.int64)
    if cand_a is None:
        return np.asarray(cand_b, dtype=np.int64)
    # Strictly smaller regret wins; a tie goes to the A-side candidate (the one found from M_B).
    pick = cand_b if _regret(cand_b, ra, rb) < _regret(cand_a, ra, rb) else cand_a
    return np.asarray(pick, dtype=np.int64)


def _gs_list(inst: Instance, side: str) -> list[int]:
    from crossmatch.twosided.gale_shapley import gale_shapley

    return gale_shapley(inst, side).tolist()  # type: ignore[arg-type]


def polymin_many(inst: Instance, cost_names: tuple[str, ...] = ("seq", "bal")) -> dict[str, np.ndarray]:
    """PolyMin per target cost: min-egalitarian only if strictly cheaper than min-regret (Tziavelis's rule)."""
    poset = rotation_poset(inst)
    me, mr = min_egalitarian(inst, poset), min_regret(inst, poset)
    ce, cr = costs(inst, me), costs(inst, mr)
    return {c: (me if ce.get(c) < cr.get(c) else mr) for c in cost_names}


def polymin(inst: Instance, cost: str = "seq") -> np.ndarray:
    """§3.8.2 PolyMin for one target cost."""
    return polymin_many(inst, (cost,))[cost]
