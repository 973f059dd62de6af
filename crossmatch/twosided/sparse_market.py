"""Stable matching with incomplete lists over a blocking's candidate pairs (issue 5 §6).

Blocking says which pairs are even considered: an item finds acceptable exactly the items it shares a
block with. That is the stable-marriage problem with incomplete lists (SMI): a matching is stable when
no *acceptable* pair would both rather be together (being single is worse than any acceptable partner).

* :func:`deferred_acceptance_sparse` — Gale–Shapley on the lists themselves, O(#candidate pairs); works
  for markets of any size.
* :func:`extended_instance` — the complete-list instance the dense algorithms (PowerBalance, WeaveNet)
  need: each side gets one dummy per agent of the other side (size ``nL + nR``). A real agent ranks its
  candidates, then the dummies, then the unacceptable reals; a dummy ranks the real agents above the
  dummies. In any stable matching of that instance no real agent holds an unacceptable partner (if ``a``
  held one, some B-dummy would be left with an A-dummy and block with ``a``), and the real pairs form a
  stable matching of the SMI instance; :func:`solve_component` checks both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from crossmatch.errors import InputError
from crossmatch.twosided.instance import Instance
from crossmatch.twosided.power_balance import power_balance
from crossmatch.twosided.repair import repair


@dataclass(frozen=True)
class SparseMarket:
    """Candidate pairs ``(left[p], right[p])`` with each side's score (larger = preferred)."""

    n_left: int
    n_right: int
    left: np.ndarray
    right: np.ndarray
    score_a: np.ndarray  # left's view of the pair
    score_b: np.ndarray  # right's view

    def lists(self) -> tuple[list[list[int]], list[list[int]]]:
        """Every agent's acceptable partners, best first (ties: lower index first)."""
        la: list[list[int]] = [[] for _ in range(self.n_left)]
        lb: list[list[int]] = [[] for _ in range(self.n_right)]
        for p in np.lexsort((self.right, -self.score_a, self.left)).tolist():
            la[int(self.left[p])].append(int(self.right[p]))
        for p in np.lexsort((self.left, -self.score_b, self.right)).tolist():
            lb[int(self.right[p])].append(int(self.left[p]))
        return la, lb


def component_labels(left: np.ndarray, right: np.ndarray, n_left: int, n_right: int) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the bipartite candidate graph: labels of left nodes and right nodes."""
    g = sparse.coo_matrix((np.ones(left.size), (left, n_left + right)), shape=(n_left + n_right,) * 2)
    _, lab = connected_components(g, directed=False)
    return lab[:n_left], lab[n_left:]


def deferred_acceptance_sparse(pref_p: list[list[int]], pref_q: list[list[int]]) -> list[int]:
    """Proposer-optimal stable matching with incomplete lists; returns each proposer's partner or -1."""
    rank_q = [{p: k for k, p in enumerate(lst)} for lst in pref_q]
    nxt = [0] * len(pref_p)
    holder = [-1] * len(pref_q)
    match = [-1] * len(pref_p)
    for start in range(len(pref_p)):
        i = start
        while i >= 0 and nxt[i] < len(pref_p[i]):
            j = pref_p[i][nxt[i]]
            nxt[i] += 1
            r = rank_q[j].get(i)
            if r is None:
                raise InputError("candidate pairs are not symmetric (an item lists a partner that does not list it)")
            h = holder[j]
            if h < 0 or r < rank_q[j][h]:
                holder[j] = i
                match[i] = j
                if h >= 0:
                    match[h] = -1
                i = h
    return match


def extended_instance(market: SparseMarket) -> Instance:
    """The complete-list instance of size ``nL + nR`` described in the module docstring."""
    nl, nr = market.n_left, market.n_right
    n = nl + nr
    la, lb = market.lists()
    rank_a = np.empty((n, n), dtype=np.int32)
    rank_b = np.empty((n, n), dtype=np.int32)
    for i in range(nl):
        rank_a[i] = _order_to_ranks(la[i], range(nr, n), nr, n)
    for j in range(nr):
        rank_b[j] = _order_to_ranks(lb[j], range(nl, n), nl, n)
    # Dummies: every real agent (by index) above every dummy.
    rank_a[nl:] = np.arange(n, dtype=np.int32)[None, :]
    rank_b[nr:] = np.arange(n, dtype=np.int32)[None, :]
    return Instance.checked(rank_a, rank_b)


def _order_to_ranks(acceptable: list[int], dummies: range, n_real: int, n: int) -> np.ndarray:
    """Ranks over ``n`` candidates: ``acceptable`` first, then ``dummies``, then the other real ones."""
    seen = np.zeros(n, dtype=bool)
    seen[acceptable] = True
    order = list(acceptable) + list(dummies) + [k for k in range(n_real) if not seen[k]]
    ranks = np.empty(n, dtype=np.int32)
    ranks[order] = np.arange(n, dtype=np.int32)
    return ranks


def real_pairs(market: SparseMarket, match: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The real–real pairs of a matching of :func:`extended_instance`."""
    rows = np.flatnonzero((np.arange(match.size) < market.n_left) & (match >= 0) & (match < market.n_right))
    return rows.astype(np.int64), match[rows].astype(np.int64)


def is_stable_incomplete(market: SparseMarket, left: np.ndarray, right: np.ndarray) -> bool:
    """One-to-one, only acceptable pairs, and no acceptable pair that both would rather form."""
    la, lb = market.lists()
    if len(set(left.tolist())) != left.size or len(set(right.tolist())) != right.size:
        return False
    pa = dict(zip(left.tolist(), right.tolist(), strict=True))
    pb = {j: i for i, j in pa.items()}
    rank_a = [{j: k for k, j in enumerate(lst)} for lst in la]
    rank_b = [{i: k for k, i in enumerate(lst)} for lst in lb]
    for i, j in pa.items():
        if j not in rank_a[i]:
            return False
    for i in range(market.n_left):
        cur_a = rank_a[i][pa[i]] if i in pa else len(la[i])
        for j in la[i][:cur_a]:
            cur_b = rank_b[j][pb[j]] if j in pb else len(lb[j])
            if rank_b[j][i] < cur_b:
                return False
    return True


SOLVERS = ("gs", "gs_best", "power_balance", "weavenet")


@dataclass(frozen=True)
class ComponentResult:
    left: np.ndarray
    right: np.ndarray
    dense: bool  # solved on the extended complete-list instance
    repaired: bool  # weavenet: the stability repair changed the binarised output


def solve_component(
    market: SparseMarket,
    solver: str,
    *,
    predictor: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    dense_max: int = 400,
    binarize_method: str = "hungarian",
) -> ComponentResult:
    """A stable matching of one connected market with solver ∈ {gs, gs_best, power_balance, weavenet}.

    ``gs``: A-proposing on the lists. ``gs_best``: both sides proposing, the lower SEq (ranks inside the
    lists; every stable matching matches the same agents, so the sums compare like for like).
    ``power_balance`` / ``weavenet`` run on :func:`extended_instance` when ``nL + nR ≤ dense_max`` —
    their costs then include the dummies' ranks — and fall back to ``gs_best`` above that (memory and
    time grow with ``(nL + nR)²``). ``predictor`` maps ``(S_A, S_B)`` batches to WeaveNet logits.
    """
    if solver not in SOLVERS:
        raise InputError(f"unknown two-sided solver {solver!r}; known: {SOLVERS}")
    la, lb = market.lists()
    if solver in ("power_balance", "weavenet") and market.n_left + market.n_right <= dense_max:
        inst = extended_instance(market)
        repaired = False
        if solver == "power_balance":
            match = power_balance(inst, "seq")
        else:
            if predictor is None:
                raise InputError("solver 'weavenet' needs a trained model (predictor)")
            from crossmatch.twosided.weavenet.binarize import binarize  # lazy: torch only for this solver

            s_a, s_b = inst.satisfaction()
            logits = predictor(s_a[None], s_b[None])[0]
            res = repair(inst, binarize(logits[None], binarize_method)[0], scores=logits)  # type: ignore[arg-type]
            match, repaired = res.match, res.changed
        left, right = real_pairs(market, match)
        return ComponentResult(left, right, True, repaired)
    m_a = deferred_acceptance_sparse(la, lb)
    if solver == "gs":
        return ComponentResult(*_pairs(m_a), False, False)
    m_b = deferred_acceptance_sparse(lb, la)
    pa = _pairs(m_a)
    pb = _pairs(m_b)[::-1]
    seq_a, seq_b = _list_seq(la, lb, *pa), _list_seq(la, lb, *pb)
    return ComponentResult(*(pb if seq_b < seq_a else pa), False, False)


def _pairs(match: list[int]) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(match, dtype=np.int64)
    rows = np.flatnonzero(m >= 0)
    return rows, m[rows]


def _list_seq(la: list[list[int]], lb: list[list[int]], left: np.ndarray, right: np.ndarray) -> int:
    """SEq with 1-based ranks inside the incomplete lists."""
    pa = sum(la[i].index(j) + 1 for i, j in zip(left.tolist(), right.tolist(), strict=True))
    pb = sum(lb[j].index(i) + 1 for i, j in zip(left.tolist(), right.tolist(), strict=True))
    return abs(pa - pb)
