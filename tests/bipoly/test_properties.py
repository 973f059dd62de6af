"""Property tests (hypothesis): constraint families, ILP ≥ greedy, nested ILP order (ALGORITHMS.md §1.1, §1.3)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

from crossmatch.bipoly import (
    IlpConfig,
    Matching,
    Rewards,
    bipartite_greedy,
    bipoly_c,
    bipoly_s,
    is_bipartite,
    is_bipoly,
    is_poly,
    kcore,
    poly_greedy,
    solve_ilp,
    uflp_greedy,
)
from crossmatch.bipoly.baselines import bipartite_rewards
from crossmatch.bipoly.ilp import start_objective
from crossmatch.bipoly.instance import Instance
from crossmatch.bipoly.reference import bipoly_s_reference
from tests.bipoly.strategies import instances, rewards

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ILP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXACT = IlpConfig(mip_gap=0.0, time_limit=30)


@FAST
@given(instances(), rewards)
def test_greedy_outputs_meet_their_constraint_family(inst: Instance, rw: Rewards) -> None:
    m, n = inst.n_left, inst.n_right
    for res in (bipoly_s(inst, rw), bipoly_s(inst, rw, exact_prefix_scan=True), bipoly_c(inst, rw)):
        assert is_bipoly(res.left, res.right, m, n)
        assert np.isfinite(res.objective)
    for side in ("left", "right"):
        p = poly_greedy(inst, rw, host_side=side)
        assert is_poly(p.left, p.right, m, n, side)
        u = uflp_greedy(inst, 0.3, host_side=side)
        assert is_poly(u.left, u.right, m, n, side)
    b = bipartite_greedy(inst, rw)
    assert is_bipartite(b.left, b.right, m, n)
    q = bipoly_s(inst, rw, quota=2)
    assert is_bipoly(q.left, q.right, m, n)
    assert np.all(np.bincount(q.left, minlength=m) <= 2) and np.all(np.bincount(q.right, minlength=n) <= 2)
    # matched pairs are candidates with positive similarity
    for res in (bipoly_s(inst, rw), bipoly_c(inst, rw), b):
        assert np.all(inst.lookup(res.left, res.right) > 0)


@FAST
@given(instances(), rewards)
def test_bipoly_s_kernel_equals_the_literal_transcription(inst: Instance, rw: Rewards) -> None:
    dense = inst.dense()
    for exact in (False, True):
        fast = bipoly_s(inst, rw, exact_prefix_scan=exact).pairs()
        assert fast == bipoly_s_reference(dense, rw, exact_prefix_scan=exact)


@FAST
@given(instances())
def test_kcore_nodes_have_degree_at_least_k(inst: Instance) -> None:
    for k in (1, 2, 3):
        res = kcore(inst, tau=0.3, k=k)
        if res.n_pairs:
            assert np.bincount(res.left)[res.left].min() >= k
            assert np.bincount(res.right)[res.right].min() >= k
            assert np.all(inst.lookup(res.left, res.right) >= 0.3)


@ILP
@given(instances(max_side=5), rewards)
def test_ilp_objective_is_at_least_every_greedy_objective(inst: Instance, rw: Rewards) -> None:
    ilp = solve_ilp(inst, rw, EXACT)
    assert ilp.status == "Optimal"
    assert is_bipoly(ilp.left, ilp.right, inst.n_left, inst.n_right)
    assert abs(ilp.objective - ilp.info["highs_objective"]) < 1e-6
    for g in (bipoly_s(inst, rw), bipoly_s(inst, rw, exact_prefix_scan=True), bipoly_c(inst, rw),
              poly_greedy(inst, rw), bipartite_greedy(inst, rw, rule="objective")):
        # F of each greedy under the ILP's own model (a Poly/Bipartite result is a BiPoly matching too)
        assert ilp.objective >= start_objective(inst, g, rw, EXACT) - 1e-9, g.method
        if g.method.startswith("bipoly"):
            assert np.isclose(start_objective(inst, g, rw, EXACT), g.objective)
    poly = solve_ilp(inst, rw, IlpConfig(family="poly", mip_gap=0.0))
    assert poly.objective >= poly_greedy(inst, rw).objective - 1e-9
    f = Rewards(0.0, 0.0, -0.4, -0.4)
    assert solve_ilp(inst, f, IlpConfig(family="poly", mip_gap=0.0)).objective >= uflp_greedy(inst, 0.4).objective - 1e-9


@ILP
@given(instances(max_side=5), rewards)
def test_nested_ilps_order_bipoly_poly_bipartite(inst: Instance, rw: Rewards) -> None:
    m, n = inst.n_left, inst.n_right
    bp = solve_ilp(inst, rw, EXACT)
    for side in ("left", "right"):
        po = solve_ilp(inst, rw, IlpConfig(family="poly", host_side=side, mip_gap=0.0))
        bi = solve_ilp(inst, rw, IlpConfig(family="bipartite", host_side=side, mip_gap=0.0))
        assert is_poly(po.left, po.right, m, n, side)
        assert is_bipartite(bi.left, bi.right, m, n)
        assert bp.objective >= po.objective - 1e-9 >= bi.objective - 2e-9
    q = solve_ilp(inst, rw, IlpConfig(quota=1, mip_gap=0.0))
    assert q.objective <= bp.objective + 1e-9


@ILP
@given(instances(max_side=5))
def test_uflp_serves_every_reachable_client(inst: Instance) -> None:
    res = solve_ilp(inst, Rewards(0.0, 0.0, -0.3, -0.3), IlpConfig(family="uflp", mip_gap=0.0))
    assert is_poly(res.left, res.right, inst.n_left, inst.n_right, "left")
    reachable = np.unique(inst.right)
    assert set(res.right.tolist()) == set(reachable.tolist())


def test_warm_started_ilp_returns_the_solution_it_reports():
    """HiGHS 1.16 reported the optimum (3.35) of this Poly ILP while returning the warm start's
    columns (objective 2.2); the solver must return a matching whose objective is the one reported."""
    inst = Instance(n_left=3, n_right=4, left=np.array([0, 0, 0, 1, 1, 2, 2]), right=np.array([0, 2, 3, 1, 2, 2, 3]),
                    weight=np.array([1.0, 0.35, 0.6, 0.25, 0.8, 0.75, 0.7]))
    rw = Rewards(0.0, 0.4, 0.0, 0.0)
    po = solve_ilp(inst, rw, IlpConfig(family="poly", host_side="right", mip_gap=0.0, warm_start=True))
    assert abs(po.objective - po.info["highs_objective"]) < 1e-6
    assert abs(po.objective - 3.35) < 1e-6


@ILP
@given(instances(max_side=5), rewards)
def test_bipartite_ilp_at_the_greedy_semantics_is_at_least_the_greedy(inst: Instance, rw: Rewards) -> None:
    """Issue 12, 9a: greedy Bipartite (τ = ω_L, paper Table IV) optimises Σ(ĥ − τ), not eq. 3 at the
    same rewards; at :func:`bipartite_rewards` the two objectives agree and the ILP is never below."""
    for rule in ("omega", "objective"):
        g = bipartite_greedy(inst, rw, rule=rule)  # type: ignore[arg-type]
        eff = bipartite_rewards(rw, rule)  # type: ignore[arg-type]
        assert g.info["rewards"] == eff
        for side in ("left", "right"):
            ilp = solve_ilp(inst, eff, IlpConfig(family="bipartite", host_side=side, mip_gap=0.0))  # type: ignore[arg-type]
            assert ilp.status == "Optimal"
            assert ilp.objective >= g.objective - 1e-9


@ILP
@given(instances(max_side=5), rewards)
def test_warm_started_ilp_is_never_below_the_best_greedy(inst: Instance, rw: Rewards) -> None:
    """Issue 12, 9b: whatever the family and however short the budget, a warm-started ILP returns a
    feasible matching whose F (under the ILP's own model) is at least every feasible greedy's."""
    for cfg in (IlpConfig(mip_gap=0.0), IlpConfig(family="poly", mip_gap=0.0), IlpConfig(family="bipartite", mip_gap=0.0),
                IlpConfig(family="uflp", mip_gap=0.0), IlpConfig(time_limit=1e-6), IlpConfig(family="poly", time_limit=1e-6)):
        res = solve_ilp(inst, rw, cfg)
        assert np.isfinite(start_objective(inst, res, rw, cfg))
        assert np.isclose(start_objective(inst, res, rw, cfg), res.objective)
        for g in (bipoly_s(inst, rw), bipoly_c(inst, rw), poly_greedy(inst, rw), poly_greedy(inst, rw, host_side="right"),
                  bipartite_greedy(inst, rw, rule="objective", host_side=cfg.hosts_fixed), bipartite_greedy(inst, rw)):
            f = start_objective(inst, g, rw, cfg)
            if np.isfinite(f):
                assert res.objective >= f - 1e-9, (cfg, g.method)


def test_bipartite_ilp_at_the_tuned_rewards_is_empty_but_not_at_the_greedy_semantics() -> None:
    """The Walmart–Amazon observation (issue 12, 9a) in miniature: tuned ω = 0.2, η = −1. Eq. 3 gives a
    pair ĥ − 2ω + η = ĥ − 1.4 < 0, so the empty matching is the true optimum there; the greedy took
    every ĥ > 0.2. Solved at the greedy's semantics the ILP finds the greedy's pairs (here optimal)."""
    inst = Instance.from_dense(np.array([[0.9, 0.5], [0.3, 0.8]]))
    rw = Rewards.tied(0.2, -1.0)
    g = bipartite_greedy(inst, rw)
    assert g.pairs() == {(0, 0), (1, 1)}
    assert solve_ilp(inst, rw, IlpConfig(family="bipartite", mip_gap=0.0)).n_pairs == 0
    ilp = solve_ilp(inst, bipartite_rewards(rw), IlpConfig(family="bipartite", mip_gap=0.0))
    assert ilp.pairs() == g.pairs() and np.isclose(ilp.objective, g.objective)


def test_extra_starts_are_used_when_feasible_and_skipped_otherwise() -> None:
    inst = Instance.from_dense(np.array([[0.9, 0.8, 0.0], [0.0, 0.7, 0.6]]))
    rw = Rewards.tied(0.0, 0.0)
    star = Matching.from_pairs(np.array([0, 0]), np.array([0, 1]), method="star")
    outside = Matching.from_pairs(np.array([0]), np.array([2]), method="outside")  # ĥ = 0 pair: not a candidate
    assert np.isnan(start_objective(inst, outside, rw, IlpConfig()))
    assert np.isnan(start_objective(inst, star, rw, IlpConfig(family="bipartite")))
    res = solve_ilp(inst, rw, IlpConfig(time_limit=1e-6), starts=[star, outside])
    assert res.info["warm_start_method"] in {"star", "bipoly_s", "bipoly_c", "poly", "bipartite"}
    assert res.objective >= start_objective(inst, star, rw, IlpConfig()) - 1e-12

