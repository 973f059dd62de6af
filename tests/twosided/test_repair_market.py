"""Stability repair, rectangular markets, preference construction and block merging."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmatch.errors import InputError
from crossmatch.twosided.costs import blocking_pairs, is_stable
from crossmatch.twosided.entity import merge_blocks, score_pairs
from crossmatch.twosided.gale_shapley import gale_shapley
from crossmatch.twosided.instance import Instance
from crossmatch.twosided.market import padded_instance, solve_market
from crossmatch.twosided.preferences import prune_candidates, tfidf_vectors, two_sided_scores
from crossmatch.twosided.repair import make_one_to_one, repair
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


@pytest.mark.parametrize("shape", [(3, 7), (7, 3), (1, 5), (5, 1), (4, 4)])
@pytest.mark.parametrize("solver", ["gs", "gs_best", "power_balance"])
def test_rectangular_markets_are_stable_with_dummies_last(shape: tuple[int, int], solver: str) -> None:
    rng = np.random.default_rng(sum(shape))
    sa, sb = rng.random(shape), rng.random(shape[::-1])
    res = solve_market(sa, sb, solver)
    assert len(res.left) == min(shape) and len(set(res.right.tolist())) == min(shape)
    inst = padded_instance(sa, sb)
    assert inst.n == max(shape)
    # No real pair blocks the restricted matching.
    ra = np.argsort(np.argsort(-sa, axis=1), axis=1)
    rb = np.argsort(np.argsort(-sb, axis=1), axis=1)
    partner_l = dict(zip(res.left.tolist(), res.right.tolist(), strict=True))
    partner_r = {j: i for i, j in partner_l.items()}
    for i in range(shape[0]):
        for j in range(shape[1]):
            a_wants = i not in partner_l or ra[i, j] < ra[i, partner_l[i]]
            b_wants = j not in partner_r or rb[j, i] < rb[j, partner_r[j]]
            assert not (a_wants and b_wants), (i, j)


def test_market_with_weavenet_predictor_repairs() -> None:
    rng = np.random.default_rng(0)
    sa, sb = rng.random((4, 6)), rng.random((6, 4))
    res = solve_market(sa, sb, "weavenet", predictor=lambda a, b: np.zeros((a.shape[0], 6, 6)), binarize_method="argmax")
    assert len(res.left) == 4 and len(set(res.right.tolist())) == 4 and res.repaired
    with pytest.raises(InputError, match="predictor"):
        solve_market(sa, sb, "weavenet")
    with pytest.raises(InputError, match="unknown"):
        solve_market(sa, sb, "hungarian")
    empty = solve_market(np.zeros((0, 3)), np.zeros((3, 0)), "gs")
    assert empty.left.size == 0


def test_shared_preferences_give_the_greedy_matching() -> None:
    sim = np.random.default_rng(1).random((6, 6))
    a, b = two_sided_scores(sim, "shared")
    res_gs, res_pb = solve_market(a, b, "gs"), solve_market(a, b, "power_balance")
    assert np.array_equal(res_gs.right, res_pb.right)
    work, greedy = sim.copy(), {}
    for _ in range(6):
        i, j = np.unravel_index(np.argmax(work), work.shape)
        greedy[int(i)] = int(j)
        work[i, :], work[:, j] = -1, -1
    assert dict(zip(res_gs.left.tolist(), res_gs.right.tolist(), strict=True)) == greedy
    sa, sb = two_sided_scores(sim, "standardized")
    assert sa.shape == (6, 6) and sb.shape == (6, 6) and not np.allclose(sa, sb.T)


def test_tfidf_and_pruning() -> None:
    xl, xr = tfidf_vectors(["red apple phone x100", "blue pear"], ["apple phone x100 red", "green pear", "tv"])
    sim = (xl @ xr.T).toarray()
    assert sim[0, 0] == pytest.approx(1.0, abs=1e-6) and sim[1, 1] > 0 and sim[0, 2] == 0
    with pytest.raises(InputError, match="empty"):
        tfidf_vectors(["", " "], [""])
    big = np.random.default_rng(2).random((3, 50))
    rows, cols = prune_candidates(big, 10)
    assert rows.size == 3 and cols.size <= 10
    assert set(np.argmax(big, axis=1).tolist()) <= set(cols.tolist())


def test_merge_blocks_and_scores() -> None:
    markets = merge_blocks([(1, ["a"], ["x"]), (2, ["a"], ["y"]), (3, ["b"], ["z"]), (1, ["c"], ["x"])])
    assert [(m.block_ids, sorted(m.left), sorted(m.right)) for m in markets] == [
        ([1, 2], ["a", "c"], ["x", "y"]), ([3], ["b"], ["z"])]
    sc = score_pairs({("l1", "r1"), ("l2", "r9"), ("l5", "r5")}, {("l1", "r1"), ("l2", "r2")})
    assert (sc.true_positives, sc.precision, sc.recall) == (1, pytest.approx(1 / 3), 0.5)
    assert sc.labelled_predicted == 2 and sc.precision_labelled == 0.5
