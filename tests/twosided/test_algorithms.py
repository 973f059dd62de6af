"""GS, PolyMin, DACC, PowerBalance, exact enumeration (§3.8): stability and the orderings theory guarantees."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmatch.twosided.costs import costs, is_stable
from crossmatch.twosided.dacc import dacc
from crossmatch.twosided.exact import all_stable_matchings, brute_force_stable, exact_min
from crossmatch.twosided.gale_shapley import (
    _deferred_acceptance_numpy,
    deferred_acceptance_lists,
    gale_shapley,
    gs_best,
)
from crossmatch.twosided.generators import DISTRIBUTIONS
from crossmatch.twosided.instance import Instance
from crossmatch.twosided.polymin import max_weight_closure, min_egalitarian, min_regret, polymin
from crossmatch.twosided.power_balance import power_balance, rounds_limit
from crossmatch.twosided.solvers import ALGORITHMS, solve
from tests.twosided.helpers import random_instance

instances = st.builds(
    random_instance,
    dist=st.sampled_from(list(DISTRIBUTIONS)),
    n=st.integers(1, 14),
    seed=st.integers(0, 2**31 - 1),
)


@settings(max_examples=60, deadline=None)
@given(inst=instances, target=st.sampled_from(["seq", "bal"]))
def test_every_algorithm_returns_a_stable_perfect_matching(inst: Instance, target: str) -> None:
    for alg in ALGORITHMS:
        m = solve(inst, alg, target)
        assert sorted(m.tolist()) == list(range(inst.n)), alg
        assert is_stable(inst, m), alg
    assert is_stable(inst, min_egalitarian(inst)) and is_stable(inst, min_regret(inst))


@settings(max_examples=40, deadline=None)
@given(inst=instances)
def test_cost_orderings(inst: Instance) -> None:
    """Lattice facts: M_A is best for every A-agent, M_B for every B-agent; min-egal / min-regret are
    minima over all stable matchings; exact minima bound every algorithm."""
    m_a, m_b = gale_shapley(inst, "a"), gale_shapley(inst, "b")
    c_a, c_b = costs(inst, m_a), costs(inst, m_b)
    egal = costs(inst, min_egalitarian(inst)).egal
    assert egal <= min(c_a.egal, c_b.egal)
    assert costs(inst, min_regret(inst)).regret <= min(c_a.regret, c_b.regret)
    if inst.n <= 9:
        stable = all_stable_matchings(inst)
        assert egal == min(costs(inst, m).egal for m in stable)
        for m in stable:
            assert (inst.rank_a[np.arange(inst.n), m_a] <= inst.rank_a[np.arange(inst.n), m]).all()
            assert costs(inst, m).p_b >= c_b.p_b
        for target in ("seq", "bal"):
            best = costs(inst, exact_min(inst, target)).get(target)
            for alg in ALGORITHMS:
                assert best <= costs(inst, solve(inst, alg, target)).get(target)


@pytest.mark.parametrize("n", [2, 3, 5, 7])
@pytest.mark.parametrize("dist", ["UU", "DD", "UD", "Lib"])
def test_min_egalitarian_equals_brute_force(n: int, dist: str) -> None:
    for seed in range(6):
        inst = random_instance(dist, n, 1000 * n + seed)
        brute = brute_force_stable(inst)
        assert sorted(map(tuple, brute)) == sorted(map(tuple, all_stable_matchings(inst)))
        assert costs(inst, min_egalitarian(inst)).egal == min(costs(inst, m).egal for m in brute)


def test_gs_engines_agree_on_large_and_rectangular_markets() -> None:
    rng = np.random.default_rng(5)
    for n_p, m in [(300, 300), (200, 260), (260, 200)]:
        pref = np.argsort(rng.random((n_p, m)), axis=1)
        rank_q = np.argsort(np.argsort(rng.random((m, n_p)), axis=1), axis=1)
        fast = _deferred_acceptance_numpy(pref, rank_q)
        slow = np.asarray(deferred_acceptance_lists(pref.tolist(), rank_q.tolist()))
        assert np.array_equal(fast, slow)
        assert (fast >= 0).sum() == min(n_p, m)


def test_gs_best_keeps_the_cheaper_side() -> None:
    inst = random_instance("UU", 30, 11)
    c_a, c_b = costs(inst, gale_shapley(inst, "a")), costs(inst, gale_shapley(inst, "b"))
    assert costs(inst, gs_best(inst, "seq")).seq == min(c_a.seq, c_b.seq)


def _power_balance_reference(inst: Instance, cost: str) -> np.ndarray:
    """ALGORITHMS.md §3.8.5 transcribed line by line (O(n) per round), to check the optimised version."""
    n = inst.n
    pref = (inst.pref_a.tolist(), inst.pref_b.tolist())
    rank = (inst.rank_a.tolist(), inst.rank_b.tolist())

    def fresh() -> dict:
        return {"k": [[0] * n, [0] * n], "e": [[False] * n, [False] * n]}

    def propose(s: dict, side: int, x: int) -> bool:
        if s["e"][side][x] or s["k"][side][x] == n:
            return False
        y = pref[side][x][s["k"][side][x]]
        o = 1 - side
        r = rank[o][y][x]
        if s["k"][o][y] >= r:
            if s["e"][o][y]:
                s["e"][side][pref[o][y][s["k"][o][y]]] = False
            s["e"][o][y] = True
            s["k"][o][y] = min(s["k"][o][y], r)
            s["e"][side][x] = True
        else:
            s["k"][side][x] += 1
        return True

    def can(s: dict, side: int) -> bool:
        return any(not s["e"][side][x] and s["k"][side][x] < n for x in range(n))

    def idle(s: dict, side: int) -> None:
        issued = True
        while issued:
            issued = False
            for x in range(n):
                while propose(s, side, x):
                    issued = True

    def matching(s: dict) -> np.ndarray:
        return np.array([pref[0][i][s["k"][0][i]] if s["e"][0][i] else -1 for i in range(n)])

    s = fresh()
    limit = n * max(1, math.ceil(math.log2(n) ** 2 / 10)) if n >= 2 else 1
    rnd = 0
    while not all(s["e"][0]):
        rnd += 1
        if rnd >= limit:
            s1 = {"k": [v[:] for v in s["k"]], "e": [v[:] for v in s["e"]]}
            s2 = {"k": [v[:] for v in s["k"]], "e": [v[:] for v in s["e"]]}
            idle(s1, 0)
            idle(s1, 1)
            idle(s2, 1)
            idle(s2, 0)
            m1, m2 = matching(s1), matching(s2)
            return m1 if costs(inst, m1).get(cost) < costs(inst, m2).get(cost) else m2
        side = 1 if not can(s, 0) else 0 if not can(s, 1) else (1 if sum(s["k"][0]) >= sum(s["k"][1]) else 0)
        for x in range(n):
            propose(s, side, x)
    return matching(s)


@settings(max_examples=60, deadline=None)
@given(inst=instances, target=st.sampled_from(["seq", "bal"]))
def test_power_balance_matches_the_spec_transcription(inst: Instance, target: str) -> None:
    assert np.array_equal(power_balance(inst, target), _power_balance_reference(inst, target))


def test_power_balance_round_limit() -> None:
    assert (rounds_limit(20), rounds_limit(30), rounds_limit(100)) == (40, 90, 500)


def test_polymin_picks_the_cheaper_candidate() -> None:
    for seed in range(10):
        inst = random_instance("UU", 12, seed)
        me, mr = costs(inst, min_egalitarian(inst)), costs(inst, min_regret(inst))
        assert costs(inst, polymin(inst, "seq")).seq == min(me.seq, mr.seq)


def test_max_weight_closure_respects_predecessors() -> None:
    # 0 (+5) needs 1 (−3); 2 (+1) needs 3 (−4): only {0, 1} pays off.
    assert max_weight_closure([5, -3, 1, -4], [{1}, set(), {3}, set()]) == [0, 1]
    assert max_weight_closure([-1, -2], [set(), set()]) == []
    assert max_weight_closure([], []) == []


def test_dacc_is_deterministic() -> None:
    inst = random_instance("Lib", 20, 3)
    assert np.array_equal(dacc(inst), dacc(inst))
