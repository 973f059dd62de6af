"""Greedy set-cover BiPoly.S and its one-sided relatives Poly and UFLP (ALGORITHMS.md §1.4, §1.5, §1.7).

The set-cover view (§1.4): a star with host ``u`` and clients ``K`` costs
``w = (1 − η_u) + Σ_{c∈K} d(u, c)`` with ``d = 1 − ĥ``, a lone host costs ``1 − ω_u``; each round
takes the star of smallest price per node ``w / (|K| + 1)`` among still-uncovered nodes.

Implementation: a lazy priority queue instead of re-evaluating every node each round. It is
exact, not an approximation of the loop of §1.5, because (i) a node's key can only grow as
availability shrinks (a star over fewer nodes is never cheaper, and a lone host's price
``1 − ω_u`` is the largest a node can have), and (ii) a cached evaluation whose clients are all
still available equals a fresh ``Eval(u)`` (the first non-improving candidate of §1.5 step 2
can only be replaced by a farther one). So popping the smallest key and re-evaluating it when
one of its clients has gone picks exactly the host the full loop would pick.

Tie-breaking (ALGORITHMS.md §1.5 "Recommendation", deterministic): smallest price; on equal
price a lone host before a star; then right-side hosts before left-side hosts; then smaller
index. Candidate lists are stably sorted by distance, ties by opposite-side index.
The authors' Python tuple comparison is not replicated (it only matters for bit-exact runs).
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.matching import Matching, objective
from crossmatch.errors import ConfigError


def candidate_lists(inst: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate list ``C[u]`` of every node (§1.5 step 1) in CSR form over global node ids.

    Node ids: left ``l`` is ``l``, right ``r`` is ``m + r``. ``C[u]`` holds opposite nodes with
    ``ĥ > 0`` sorted by distance ``1 − ĥ`` ascending, ties by opposite index ascending.

    Returns:
        ``(ptr, cand, dist)`` with ``C[u] = cand[ptr[u]:ptr[u+1]]``.
    """
    m, n = inst.n_left, inst.n_right
    pos = inst.weight > 0
    lft, rgt = inst.left[pos], inst.right[pos]
    d = 1.0 - inst.weight[pos]
    # pairs arrive sorted by (left, right); a stable integer sort groups them by right, ties by left
    by_r = np.argsort(rgt, kind="stable")
    o_l = _order_within_groups(lft, d, m)
    o_r = by_r[_order_within_groups(rgt[by_r], d[by_r], n)]
    cand = np.concatenate([rgt[o_l] + m, lft[o_r]]).astype(np.int64)
    dist = np.concatenate([d[o_l], d[o_r]])
    counts = np.concatenate([np.bincount(lft, minlength=m), np.bincount(rgt, minlength=n)])
    ptr = np.zeros(m + n + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, cand, dist


def _order_within_groups(group: np.ndarray, d: np.ndarray, n_groups: int) -> np.ndarray:
    """Permutation sorting entries by (group, d), ties kept in input order; ``group`` is non-decreasing.

    Row-wise sorts of a padded 2-d array are several times faster than one global multi-key sort;
    padding is used only while it stays within 4x the number of entries.
    """
    counts = np.bincount(group, minlength=n_groups)
    width = int(counts.max()) if counts.size else 0
    if group.size == 0 or n_groups * width > 4 * group.size + 1024:
        return np.lexsort((d, group))
    start = np.r_[0, np.cumsum(counts)[:-1]]
    pos = np.arange(group.size) - start[group]
    pad = np.full((n_groups, width), np.inf)
    pad[group, pos] = d
    order = np.argsort(pad, axis=1, kind="stable")
    keep = order < counts[:, None]
    return (start[:, None] + order)[keep]


@njit(cache=True)
def _heap_less(p1: float, r1: int, p2: float, r2: int) -> bool:
    return p1 < p2 or (p1 == p2 and r1 < r2)


@njit(cache=True)
def _heap_push(hp, hr, hu, size, price, rank, u):
    i = size
    hp[i], hr[i], hu[i] = price, rank, u
    while i > 0:
        parent = (i - 1) // 2
        if _heap_less(hp[i], hr[i], hp[parent], hr[parent]):
            hp[i], hp[parent] = hp[parent], hp[i]
            hr[i], hr[parent] = hr[parent], hr[i]
            hu[i], hu[parent] = hu[parent], hu[i]
            i = parent
        else:
            break
    return size + 1


@njit(cache=True)
def _heap_pop(hp, hr, hu, size):
    u = hu[0]
    size -= 1
    hp[0], hr[0], hu[0] = hp[size], hr[size], hu[size]
    i = 0
    while True:
        a = 2 * i + 1
        b = a + 1
        best = i
        if a < size and _heap_less(hp[a], hr[a], hp[best], hr[best]):
            best = a
        if b < size and _heap_less(hp[b], hr[b], hp[best], hr[best]):
            best = b
        if best == i:
            break
        hp[i], hp[best] = hp[best], hp[i]
        hr[i], hr[best] = hr[best], hr[i]
        hu[i], hu[best] = hu[best], hu[i]
        i = best
    return u, size


@njit(cache=True)
def _evaluate(u, ptr, cand, dist, avail, start, omega, eta, quota, exact):
    """``Eval(u)`` of §1.5: (price, number of clients, end position of the client prefix)."""
    p = start[u]
    end = ptr[u + 1]
    while p < end and not avail[cand[p]]:
        p += 1
    start[u] = p  # leading unavailable candidates never come back
    best = 1.0 - omega[u]
    a = 1.0 - eta[u]
    k = 0
    kend = p
    total = 0.0  # Σ d over the available prefix scanned so far
    j = 0  # its length
    for i in range(p, end):
        if not avail[cand[i]]:
            continue
        total += dist[i]
        j += 1
        price = (a + total) / (j + 1)
        if price < best:
            best = price
            k = j
            kend = i + 1
            if quota > 0 and k >= quota:
                break
        elif not exact:
            # code rule (§1.5 step 2): the first non-improvement ends the scan
            break
        elif quota > 0 and j >= quota:
            break
    return best, k, kend


@njit(cache=True, nogil=True)
def _set_cover_greedy(ptr, cand, dist, omega, eta, can_host, n_left, quota, exact):
    n_nodes = omega.size
    avail = np.ones(n_nodes, dtype=np.bool_)
    start = ptr[:-1].copy()
    kend = np.zeros(n_nodes, dtype=np.int64)
    kcnt = np.zeros(n_nodes, dtype=np.int64)
    hp = np.empty(n_nodes, dtype=np.float64)
    hr = np.empty(n_nodes, dtype=np.int64)
    hu = np.empty(n_nodes, dtype=np.int64)
    size = 0
    for u in range(n_nodes):
        if can_host[u]:
            price, k, e = _evaluate(u, ptr, cand, dist, avail, start, omega, eta, quota, exact)
            kcnt[u], kend[u] = k, e
            size = _heap_push(hp, hr, hu, size, price, _rank(u, k, n_left, n_nodes), u)
    out_host = np.empty(n_nodes, dtype=np.int64)
    out_client = np.empty(n_nodes, dtype=np.int64)
    n_out = 0
    hosts = np.empty(n_nodes, dtype=np.int64)
    n_hosts = 0
    left_avail = n_left
    right_avail = n_nodes - n_left
    while size > 0 and left_avail > 0 and right_avail > 0:
        u, size = _heap_pop(hp, hr, hu, size)
        if not avail[u]:
            continue
        alive = 0
        for i in range(start[u], kend[u]):
            if avail[cand[i]]:
                alive += 1
        if alive != kcnt[u]:
            price, k, e = _evaluate(u, ptr, cand, dist, avail, start, omega, eta, quota, exact)
            kcnt[u], kend[u] = k, e
            size = _heap_push(hp, hr, hu, size, price, _rank(u, k, n_left, n_nodes), u)
            continue
        avail[u] = False
        if u < n_left:
            left_avail -= 1
        else:
            right_avail -= 1
        hosts[n_hosts] = u
        n_hosts += 1
        for i in range(start[u], kend[u]):
            c = cand[i]
            if avail[c]:
                avail[c] = False
                if c < n_left:
                    left_avail -= 1
                else:
                    right_avail -= 1
                out_host[n_out] = u
                out_client[n_out] = c
                n_out += 1
    return out_host[:n_out], out_client[:n_out], hosts[:n_hosts]


@njit(cache=True)
def _rank(u, k, n_left, n_nodes):
    # (lone host before star, right side before left side, index ascending)
    star = 1 if k > 0 else 0
    if u >= n_left:
        return star * 2 * n_nodes + (u - n_left)
    return star * 2 * n_nodes + n_nodes + u


def _node_params(inst: Instance, rewards: Rewards) -> tuple[np.ndarray, np.ndarray]:
    m, n = inst.n_left, inst.n_right
    omega = np.concatenate([np.full(m, rewards.omega_l), np.full(n, rewards.omega_r)])
    eta = np.concatenate([np.full(m, rewards.eta_l), np.full(n, rewards.eta_r)])
    return omega, eta


def _check_quota(quota: int | None) -> int:
    if quota is None:
        return 0
    if not isinstance(quota, int) or quota < 1:
        raise ConfigError(f"quota must be a positive integer or None, got {quota!r}")
    return quota


def _run(
    inst: Instance, rewards: Rewards, can_host: np.ndarray, quota: int | None, exact: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ptr, cand, dist = inst.memo("candidate_lists", lambda: candidate_lists(inst))
    omega, eta = _node_params(inst, rewards)
    host, client, hosts = _set_cover_greedy(
        ptr, cand, dist, omega, eta, can_host, inst.n_left, _check_quota(quota), bool(exact)
    )
    m = inst.n_left
    host_left = host < m
    left = np.where(host_left, host, client)
    right = np.where(host_left, client, host) - m
    return left, right, hosts


def bipoly_s(
    inst: Instance, rewards: Rewards, *, quota: int | None = None, exact_prefix_scan: bool = False
) -> Matching:
    """BiPoly.S, the set-cover greedy of paper Alg. 1 (ALGORITHMS.md §1.5).

    Args:
        inst: candidate pairs with ĥ; pairs with ĥ = 0 are ignored.
        rewards: ω and η per side; ``omega_l``/``eta_l`` govern left hosts (explicit per-side
            API, Ambiguity 1.5-B).
        quota: at most this many clients per host (Sec. V-G), ``None`` for no limit.
        exact_prefix_scan: evaluate every prefix of a host's candidate list instead of the
            code's first-non-improvement stop (Ambiguity 1.5-A).

    Returns:
        The matching; ``info["hosts"]`` lists hosts in pick order (left ``l`` as ``l``,
        right ``r`` as ``m + r``). Nodes left over when one side is exhausted are reclusive.
    """
    t0 = time.perf_counter()
    can_host = np.ones(inst.n_nodes, dtype=np.bool_)
    left, right, hosts = _run(inst, rewards, can_host, quota, exact_prefix_scan)
    secs = time.perf_counter() - t0
    return Matching.from_pairs(
        left, right, method="bipoly_s", objective=objective(inst, left, right, rewards), seconds=secs,
        info={"hosts": hosts},
    )


def poly_greedy(
    inst: Instance, rewards: Rewards, *, host_side: Side = "left", quota: int | None = None, method: str = "poly"
) -> Matching:
    """Greedy Poly (ALGORITHMS.md §1.7.3): BiPoly.S with hosts drawn from ``host_side`` only.

    Default host side is the left (smaller) source, Ambiguity 1.3-A. The evaluation of a host
    uses that side's ω and η only.
    """
    if host_side not in ("left", "right"):
        raise ConfigError(f"host_side must be 'left' or 'right', got {host_side!r}")
    t0 = time.perf_counter()
    can_host = np.zeros(inst.n_nodes, dtype=np.bool_)
    if host_side == "left":
        can_host[: inst.n_left] = True
    else:
        can_host[inst.n_left :] = True
    left, right, hosts = _run(inst, rewards, can_host, quota, False)
    secs = time.perf_counter() - t0
    return Matching.from_pairs(
        left, right, method=method, seconds=secs,
        objective=objective(inst, left, right, rewards, host_side=host_side),
        info={"hosts": hosts, "host_side": host_side},
    )


def uflp_greedy(inst: Instance, opening_cost: float, *, host_side: Side = "left") -> Matching:
    """Greedy UFLP (ALGORITHMS.md §1.7.4 recommendation): greedy Poly with ``ω = 0``, ``η_host = −f``.

    This is the classical greedy set-cover heuristic for facility location with facilities on
    ``host_side``, opening cost ``f = opening_cost ≥ 0`` and service cost ``1 − ĥ``.
    """
    if opening_cost < 0:
        raise ConfigError(f"UFLP opening cost must be >= 0, got {opening_cost}")
    rewards = Rewards(0.0, 0.0, -opening_cost, -opening_cost)
    return poly_greedy(inst, rewards, host_side=host_side, method="uflp")
