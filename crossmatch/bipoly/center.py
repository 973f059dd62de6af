"""BiPoly.C, the CENTER-style single pass of paper Alg. 2 with ResolvePending (ALGORITHMS.md §1.6).

Resolutions of the spec's ambiguities, all as recommended there:

* 1.6-A: line 23 of the paper uses ``P[b]`` (the paper's ``P[a]`` is a typo).
* 1.6-B: ``ResolvePending`` walks the sorted pairs again and settles each mutually pending pair
  by the cheapest of the three set-cover costs (eq. 15): ``a`` hosts ``b``
  (``2 − η_a − ĥ``), ``b`` hosts ``a`` (``2 − η_b − ĥ``), both reclusive
  (``(1 − ω_a) + (1 − ω_b)``); ties in that order.
* 1.6-C: ``a ∈ L``, ``b ∈ R``; pairs with ``ĥ = 0`` are not scanned.

Pairs are scanned by ``ĥ`` descending, ties by ``(a, b)`` ascending (deterministic).
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from crossmatch.bipoly.instance import Instance, Rewards
from crossmatch.bipoly.matching import Matching, objective

UNKNOWN, PENDING, HOST, CLIENT = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def _center(a_arr, b_arr, h_arr, omega, eta, n_nodes):
    state = np.zeros(n_nodes, dtype=np.int8)
    partner = np.full(n_nodes, -1, dtype=np.int64)
    out_host = np.empty(a_arr.size, dtype=np.int64)
    out_client = np.empty(a_arr.size, dtype=np.int64)
    n_out = 0
    for e in range(a_arr.size):
        a, b, h = a_arr[e], b_arr[e], h_arr[e]
        ta, tb = state[a], state[b]
        if ta == UNKNOWN and tb == UNKNOWN:
            # θ_u = ω_u − η_u: hosting this pair beats staying reclusive
            ok_a = h > omega[a] - eta[a]
            ok_b = h > omega[b] - eta[b]
            if ok_a and ok_b:
                state[a] = PENDING
                state[b] = PENDING
                partner[a] = b
                partner[b] = a
            elif ok_a:
                state[a], state[b] = HOST, CLIENT
                out_host[n_out], out_client[n_out] = a, b
                n_out += 1
            elif ok_b:
                state[b], state[a] = HOST, CLIENT
                out_host[n_out], out_client[n_out] = b, a
                n_out += 1
        elif ta == CLIENT or tb == CLIENT:
            continue
        elif tb == UNKNOWN and h > omega[b]:
            # b prefers being a client of a to staying reclusive
            if ta == PENDING:
                p = partner[a]
                state[a], state[p] = HOST, CLIENT
                out_host[n_out], out_client[n_out] = a, p
                n_out += 1
            state[a], state[b] = HOST, CLIENT
            out_host[n_out], out_client[n_out] = a, b
            n_out += 1
        elif ta == UNKNOWN and h > omega[a]:
            if tb == PENDING:
                p = partner[b]  # Ambiguity 1.6-A: P[b], not the paper's P[a]
                state[b], state[p] = HOST, CLIENT
                out_host[n_out], out_client[n_out] = b, p
                n_out += 1
            state[b], state[a] = HOST, CLIENT
            out_host[n_out], out_client[n_out] = b, a
            n_out += 1
    # ResolvePending (Ambiguity 1.6-B): cheapest of the three set-cover costs, in scan order
    n_resolved = 0
    for e in range(a_arr.size):
        a, b, h = a_arr[e], b_arr[e], h_arr[e]
        if state[a] != PENDING or state[b] != PENDING or partner[a] != b:
            continue
        n_resolved += 1
        cost_a = 2.0 - eta[a] - h
        cost_b = 2.0 - eta[b] - h
        cost_none = (1.0 - omega[a]) + (1.0 - omega[b])
        if cost_a <= cost_b and cost_a <= cost_none:
            state[a], state[b] = HOST, CLIENT
            out_host[n_out], out_client[n_out] = a, b
            n_out += 1
        elif cost_b <= cost_none:
            state[b], state[a] = HOST, CLIENT
            out_host[n_out], out_client[n_out] = b, a
            n_out += 1
        else:
            state[a] = UNKNOWN
            state[b] = UNKNOWN
    return out_host[:n_out], out_client[:n_out], n_resolved


def sorted_pairs(inst: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs with ``ĥ > 0`` by ``ĥ`` descending, ties by ``(left, right)`` ascending."""
    pos = inst.weight > 0
    lft, rgt, w = inst.left[pos], inst.right[pos], inst.weight[pos]
    order = np.lexsort((rgt, lft, -w))
    return lft[order], rgt[order], w[order]


def bipoly_c(inst: Instance, rewards: Rewards) -> Matching:
    """BiPoly.C (paper Alg. 2; ALGORITHMS.md §1.6). ``O(E log E)`` for the sort, then one pass.

    Returns:
        The matching; ``info["resolved_pending"]`` counts pairs settled by ResolvePending.
        Nodes never assigned are reclusive singletons.
    """
    t0 = time.perf_counter()
    m, n = inst.n_left, inst.n_right
    lft, rgt, w = inst.memo("sorted_pairs", lambda: sorted_pairs(inst))
    omega = np.concatenate([np.full(m, rewards.omega_l), np.full(n, rewards.omega_r)])
    eta = np.concatenate([np.full(m, rewards.eta_l), np.full(n, rewards.eta_r)])
    host, client, n_resolved = _center(lft, rgt + m, w, omega, eta, m + n)
    host_left = host < m
    left = np.where(host_left, host, client)
    right = np.where(host_left, client, host) - m
    secs = time.perf_counter() - t0
    return Matching.from_pairs(
        left, right, method="bipoly_c", objective=objective(inst, left, right, rewards), seconds=secs,
        info={"resolved_pending": int(n_resolved)},
    )
