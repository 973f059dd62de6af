"""Greedy Bipartite and k-core baselines (ALGORITHMS.md §1.7.1 and §1.7.6).

Greedy Poly and UFLP share BiPoly.S's machinery and live in :mod:`crossmatch.bipoly.greedy`;
the exact Bipartite/Poly/UFLP are settings of :func:`crossmatch.bipoly.ilp.solve_ilp`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import numpy as np
from numba import njit

from crossmatch.bipoly.center import sorted_pairs
from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.matching import Matching, objective
from crossmatch.errors import ConfigError


@njit(cache=True, nogil=True)
def _greedy_one_to_one(lft, rgt, w, tau, n_left, n_right):
    used_l = np.zeros(n_left, dtype=np.bool_)
    used_r = np.zeros(n_right, dtype=np.bool_)
    keep = np.zeros(lft.size, dtype=np.bool_)
    for e in range(lft.size):
        if w[e] <= tau:
            break  # pairs are sorted by ĥ descending
        if not used_l[lft[e]] and not used_r[rgt[e]]:
            used_l[lft[e]] = True
            used_r[rgt[e]] = True
            keep[e] = True
    return keep


def bipartite_threshold(rewards: Rewards, rule: Literal["omega", "objective"] = "omega",
                        host_side: Side | None = None) -> float:
    """Threshold τ of greedy Bipartite (Ambiguity 1.7-A).

    ``"omega"``: τ = ω_L, the code's single threshold used for Table IV.
    ``"objective"``: τ = ω_L + ω_R − η_host, the pair gain under eq. 3 (two reclusive nodes become
    one receptive single-edge star); ``η_host`` is ``host_side``'s η, or max(η_L, η_R) when the
    host side is free (the orientation the BiPoly ILP would choose).
    """
    if rule == "omega":
        return rewards.omega_l
    if rule == "objective":
        eta = max(rewards.eta_l, rewards.eta_r) if host_side is None else rewards.eta(host_side)
        return rewards.omega_l + rewards.omega_r - eta
    raise ConfigError(f"bipartite threshold rule must be 'omega' or 'objective', got {rule!r}")


def bipartite_rewards(rewards: Rewards, rule: Literal["omega", "objective"] = "omega",
                      host_side: Side | None = None) -> Rewards:
    """The rewards under which eq. 3 is the objective greedy Bipartite approximates (issue 12, 9a).

    Greedy Bipartite accepts a pair when ``ĥ > τ``: it is the greedy max-weight matching on the
    gains ``ĥ − τ``. Under eq. 3 with Bipartite constraints a matched pair gains
    ``ĥ − ω_L − ω_R + η_host``, so ``Rewards(ω_L = τ, 0, 0, 0)`` makes the two objectives equal
    (up to the constant ``τ·|L|``) on either host side. With the paper's Table IV rule (τ = ω_L)
    the original rewards mean something else to the ILP: at ω = 0.2, η = −1 the ILP needs
    ``ĥ > 1.4`` and its optimum is the empty matching, while the greedy takes every ``ĥ > 0.2``.
    """
    return Rewards(bipartite_threshold(rewards, rule, host_side), 0.0, 0.0, 0.0)


def bipartite_greedy(inst: Instance, rewards: Rewards, *, rule: Literal["omega", "objective"] = "omega",
                     host_side: Side | None = None) -> Matching:
    """Greedy one-to-one matching (paper Table IV, ALGORITHMS.md §1.7.1).

    Pairs sorted by ĥ descending (ties by ``(l, r)``) are accepted while both ends are free
    and ``ĥ > τ`` (see :func:`bipartite_threshold`). ``O(E log E)``.

    ``objective`` is eq. 3 under :func:`bipartite_rewards` — the objective this greedy
    approximates — so it is comparable with the Bipartite ILP solved at those rewards;
    ``info["rewards"]`` holds them.
    """
    t0 = time.perf_counter()
    tau = bipartite_threshold(rewards, rule, host_side)
    lft, rgt, w = inst.memo("sorted_pairs", lambda: sorted_pairs(inst))
    keep = _greedy_one_to_one(lft, rgt, w, float(tau), inst.n_left, inst.n_right)
    left, right = lft[keep], rgt[keep]
    secs = time.perf_counter() - t0
    eff = Rewards(tau, 0.0, 0.0, 0.0)
    return Matching.from_pairs(
        left, right, method="bipartite", seconds=secs,
        objective=objective(inst, left, right, eff, host_side="left"), info={"threshold": tau, "rewards": eff},
    )


def kcore(inst: Instance, tau: float, k: int = 2) -> Matching:
    """Edges of the k-core of ``G_τ = {(l, r): ĥ(l, r) ≥ τ}`` (Ambiguity 1.7-B recommendation).

    Iterative peeling: nodes of degree < k are removed until none is left. The result is
    many-to-many, so its robust objective is undefined (NaN).
    """
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"k-core needs an integer k >= 1, got {k!r}")
    t0 = time.perf_counter()
    sel = (inst.weight >= tau) & (inst.weight > 0)
    lft, rgt = inst.left[sel], inst.right[sel]
    while lft.size:
        dl = np.bincount(lft, minlength=inst.n_left)
        dr = np.bincount(rgt, minlength=inst.n_right)
        ok = (dl[lft] >= k) & (dr[rgt] >= k)
        if ok.all():
            break
        lft, rgt = lft[ok], rgt[ok]
    secs = time.perf_counter() - t0
    return Matching.from_pairs(lft, rgt, method="kcore", seconds=secs, info={"tau": float(tau), "k": k})


def kcore_at_reduction(
    inst: Instance, target: float, reduction: Callable[[Matching], float], k: int = 2
) -> Matching:
    """k-core whose threshold τ is chosen by bisection to reach ``reduction ≥ target`` (§1.7.6).

    A larger τ gives a sub-graph, hence a smaller core and a reduction at least as large, so
    the smallest τ among the distinct similarity values that reaches ``target`` is found by
    binary search. When no τ reaches it, the largest τ is used.
    """
    t0 = time.perf_counter()
    values = np.unique(inst.weight[inst.weight > 0])
    if values.size == 0:
        return Matching.from_pairs(np.empty(0), np.empty(0), method="kcore", info={"tau": 1.0, "k": k})
    lo, hi = 0, values.size - 1
    best = kcore(inst, float(values[hi]), k)
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = kcore(inst, float(values[mid]), k)
        if reduction(cand) >= target:
            best = cand
            hi = mid - 1
        else:
            lo = mid + 1
    secs = time.perf_counter() - t0
    return Matching(best.left, best.right, method="kcore", seconds=secs, info={**best.info, "target_reduction": target})
