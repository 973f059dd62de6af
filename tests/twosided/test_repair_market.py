"""Stability repair, markets with incomplete lists (blocking candidates), preferences, candidate pairs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmatch.errors import InputError
from crossmatch.twosided.costs import blocking_pairs, is_stable
from crossmatch.twosided.entity import expand_blocks, score_pairs
from crossmatch.twosided.exact import all_stable_matchings
from crossmatch.twosided.gale_shapley import gale_shapley
from crossmatch.twosided.instance import Instance
from crossmatch.twosided.preferences import pair_similarity, tfidf_vectors, two_sided_scores
from crossmatch.twosided.repair import make_one_to_one, repair
from crossmatch.twosided.sparse_market import (
    SOLVERS,
    SparseMarket,
    extended_instance,
    is_stable_incomplete,
    real_pairs,
    solve_component,
)
from tests.twosided.helpers import random_instance


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 15), seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(["any", "perm", "scores"]))
def test_repair_always_returns_a_stable_matching(n: int, seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    inst = random_instance("UU", n, seed)
    match = rng.permutation(n) if kind == "perm" else rng.integers(0, n, size=n)
    res = repair(inst, match, scores=rng.random((n, n)) if kind == "scores" else None)
    assert is_stable(inst, res.match)
    assert res.changed == (not np.array_equal(res.match, match))


def test_repair_keeps_stable_input_and_unblocked_pairs() -> None:
    inst = random_instance("Lib", 12, 2)
    m = gale_shapley(inst, "b")
    res = repair(inst, m)
    assert not res.changed and np.array_equal(res.match, m) and res.blocking_before == 0
    # Swap two partners: pairs untouched by blocking pairs survive the repair.
    bad = m.copy()
    bad[[0, 1]] = bad[[1, 0]]
    fixed = repair(inst, bad)
    assert is_stable(inst, fixed.match) and fixed.changed == (blocking_pairs(inst, bad) > 0)


def test_make_one_to_one_prefers_higher_score() -> None:
    inst = Instance.from_ranks(np.array([[1, 2], [1, 2]]), np.array([[1, 2], [1, 2]]))
    assert make_one_to_one(inst, np.array([0, 0]), np.array([[0.1, 0.0], [0.9, 0.0]])).tolist() == [-1, 0]
    assert make_one_to_one(inst, np.array([0, 0])).tolist() == [0, -1]  # b0 prefers a0


def _random_market(seed: int, n_l: int, n_r: int, density: float) -> SparseMarket:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_l, n_r)) < density
    left, right = np.nonzero(mask)
    return SparseMarket(n_l, n_r, left, right, rng.random(left.size), rng.random(left.size))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_l=st.integers(1, 9), n_r=st.integers(1, 9),
       density=st.floats(0.1, 1.0), solver=st.sampled_from(list(SOLVERS)))
def test_every_solver_is_stable_with_incomplete_lists(seed: int, n_l: int, n_r: int, density: float, solver: str) -> None:
    market = _random_market(seed, n_l, n_r, density)
    res = solve_component(market, solver, predictor=lambda a, b: np.random.default_rng(0).random((1,) + a.shape[1:]))
    assert is_stable_incomplete(market, res.left, res.right)
    assert res.dense == (solver in ("power_balance", "weavenet"))


def test_large_markets_fall_back_to_sparse_gs() -> None:
    market = _random_market(1, 30, 40, 0.2)
    res = solve_component(market, "power_balance", dense_max=50)
    assert not res.dense and is_stable_incomplete(market, res.left, res.right)
    gs = solve_component(market, "gs")
    # every stable matching matches the same agents (rural hospitals)
    assert sorted(res.left.tolist()) == sorted(gs.left.tolist())


def test_extended_instance_never_matches_unacceptable_pairs() -> None:
    market = _random_market(3, 5, 4, 0.4)
    inst = extended_instance(market)
    assert inst.n == 9
    acceptable = set(zip(market.left.tolist(), market.right.tolist(), strict=True))
    for m in all_stable_matchings(inst):
        left, right = real_pairs(market, m)
        assert set(zip(left.tolist(), right.tolist(), strict=True)) <= acceptable


def test_weavenet_component_needs_a_predictor_and_reports_repairs() -> None:
    market = _random_market(4, 4, 6, 1.0)
    res = solve_component(market, "weavenet", predictor=lambda a, b: np.zeros((1,) + a.shape[1:]), binarize_method="argmax")
    assert res.repaired and is_stable_incomplete(market, res.left, res.right)
    with pytest.raises(InputError, match="predictor"):
        solve_component(market, "weavenet")
    with pytest.raises(InputError, match="unknown"):
        solve_component(market, "hungarian")


def test_shared_preferences_give_the_greedy_matching() -> None:
    rng = np.random.default_rng(1)
    left, right = np.nonzero(rng.random((6, 7)) < 0.6)
    sim = rng.random(left.size)
    a, b = two_sided_scores(left, right, sim, "shared")
    market = SparseMarket(6, 7, left, right, a, b)
    res_gs, res_pb = solve_component(market, "gs"), solve_component(market, "power_balance")
    assert np.array_equal(res_gs.left, res_pb.left) and np.array_equal(res_gs.right, res_pb.right)
    greedy, used_l, used_r = {}, set(), set()
    for p in np.argsort(-sim):
        if left[p] not in used_l and right[p] not in used_r:
            greedy[int(left[p])] = int(right[p])
            used_l.add(left[p])
            used_r.add(right[p])
    assert dict(zip(res_gs.left.tolist(), res_gs.right.tolist(), strict=True)) == greedy
    sa, sb = two_sided_scores(left, right, sim, "standardized")
    assert sa.shape == sim.shape and not np.allclose(sa, sb)


def test_similarity_tfidf_and_embeddings() -> None:
    tfidf = tfidf_vectors(["red apple phone x100", "blue pear"], ["apple phone x100 red", "green pear", "tv"])
    left, right = np.array([0, 1, 0]), np.array([0, 1, 2])
    sim, n_icpa = pair_similarity(left, right, tfidf)
    assert sim[0] == pytest.approx(1.0, abs=1e-6) and sim[1] > 0 and sim[2] == 0 and n_icpa == 0
    emb_l = np.array([[1.0, 0.0], [np.nan, np.nan]])
    emb_r = np.array([[0.6, 0.8], [0.0, 1.0], [1.0, 0.0]])
    sim, n_icpa = pair_similarity(left, right, tfidf, emb_l, emb_r)
    assert n_icpa == 2 and sim[0] == pytest.approx(0.6) and sim[2] == pytest.approx(1.0) and sim[1] > 0
    blend, _ = pair_similarity(left, right, tfidf, emb_l, emb_r, blend=True)
    assert blend[0] == pytest.approx(0.8, abs=1e-6) and blend[2] == pytest.approx(0.5) and blend[1] == sim[1]
    with pytest.raises(InputError, match="empty"):
        tfidf_vectors(["", " "], [""])


def test_expand_blocks_and_scores() -> None:
    pairs = expand_blocks([(2, ["a"], ["x"]), (1, ["a", "c"], ["x"])], {"a": [0, 1], "c": [2]}, {"x": [5]}, 10)
    assert pairs == {(0, 5): 1, (1, 5): 1, (2, 5): 1}
    with pytest.raises(ValueError, match="more than"):
        expand_blocks([(1, ["a"], ["x"])], {"a": [0, 1]}, {"x": [5, 6]}, 3)
    sc = score_pairs({("l1", "r1"), ("l2", "r9"), ("l5", "r5")}, {("l1", "r1"), ("l2", "r2")})
    assert (sc.true_positives, sc.precision, sc.recall) == (1, pytest.approx(1 / 3), 0.5)
    assert sc.labelled_predicted == 2 and sc.precision_labelled == 0.5
