"""Unit tests: similarity, rescaling, metrics, grid executors, ILP limits, meta-blocking, entity scenario."""

from __future__ import annotations

import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from crossmatch.bipoly import (
    IlpConfig,
    Instance,
    Rewards,
    bipoly_c,
    bipoly_s,
    blocking_truth,
    is_bipoly,
    rescale_minmax,
    similarity,
    solve_ilp,
)
from crossmatch.bipoly.grid import (
    grid_points,
    grid_search,
    merge,
    solve_partitioned,
    solve_partitioned_many,
    split_by_groups,
    value_range,
)
from crossmatch.bipoly.metablocking import meta_blocking, node_pruning, purge_and_filter, token_blocks
from crossmatch.bipoly.scenario import entity_scenario, entity_scores
from crossmatch.bipoly.similarity import Documents, normalise_title

DL = Documents(("a", "b"), ("red apple phone", "green pear"), np.array([1, 1]))
DR = Documents(("x", "y", "z"), ("apple phone", "pear green tablet", "zebra"), np.array([1, 1, 1]))


def test_normalise_title_drops_stop_words_and_punctuation() -> None:
    assert normalise_title("The  HP_LaserJet - 2.0 (black) & more") == "hp laserjet 2.0 black"


def test_similarity_values_against_hand_computation() -> None:
    jac = similarity(DL, DR, "jaccard", rescale=False).instance.dense()
    # {red, apple, phone} vs {apple, phone}: 2/3; {green, pear} vs {pear, green, tablet}: 2/3
    assert np.allclose(jac, [[2 / 3, 0, 0], [0, 2 / 3, 0]])
    ov = similarity(DL, DR, "overlap", rescale=False).instance.dense()
    assert np.allclose(ov, [[1, 0, 0], [0, 1, 0]])
    tf = similarity(DL, DR, "tfidf", rescale=True).instance.dense()
    assert tf.max() == pytest.approx(1.0) and tf[0, 1] == 0 and tf[0, 0] > 0


def test_top_k_is_union_of_row_and_column_top_k_and_chunking_is_exact() -> None:
    rng = np.random.default_rng(1)
    vocab = [f"w{i}" for i in range(40)]
    mk = lambda n: Documents(tuple(map(str, range(n))), tuple(" ".join(rng.choice(vocab, 8)) for _ in range(n)),  # noqa: E731
                             np.ones(n, dtype=np.int64))
    dl, dr = mk(30), mk(50)
    full = similarity(dl, dr, "tfidf").instance
    top = similarity(dl, dr, "tfidf", top_k=3).instance
    top_chunked = similarity(dl, dr, "tfidf", top_k=3, chunk_entries=100).instance
    assert np.array_equal(top.left, top_chunked.left) and np.allclose(top.weight, top_chunked.weight)
    dense = full.dense()
    keep = set(top.pairs()) if hasattr(top, "pairs") else set(zip(top.left.tolist(), top.right.tolist(), strict=True))
    for i in range(30):  # every row keeps its top 3 (ties by column index)
        order = np.lexsort((np.arange(50), -dense[i]))[:3]
        assert all((i, int(j)) in keep for j in order if dense[i, j] > 0)
    assert all(dense[i, j] == pytest.approx(w) for i, j, w in zip(top.left, top.right, top.weight, strict=True))


def test_rescale_uses_implicit_zeros() -> None:
    v, lo, hi = rescale_minmax(np.array([0.2, 0.4]), n_total=10)
    assert lo == 0 and hi == 0.4 and np.allclose(v, [0.5, 1.0])
    v, lo, _ = rescale_minmax(np.array([0.2, 0.4]))
    assert lo == 0.2 and np.allclose(v, [0.0, 1.0])


def _truth_setup() -> tuple:
    li = pl.DataFrame({"item_id": ["l1", "l2", "l3"], "title": ["a", "b", "c"], "fine_category": ["A", "A", "B"]})
    ri = pl.DataFrame({"item_id": ["r1", "r2", "r3", "r4"], "title": ["a", "b", "c", "d"],
                       "fine_category": ["X", "X", "Y", "Z"]})
    truth = pl.DataFrame({"item_a": ["l1", "l2", "l3"], "item_b": ["r1", "r3", "r4"]})
    return li, ri, truth


def test_blocking_metrics_count_unmatched_true_pairs_as_missed() -> None:
    li, ri, truth = _truth_setup()
    bt = blocking_truth(li, ri, ("A", "B"), ("X", "Y", "Z"), truth)
    s = bt.score(np.array([0]), np.array([0]))  # only A-X: covers l1-r1
    assert s.coverage == pytest.approx(1 / 3)
    assert s.reduction == pytest.approx(1 - 2 * 2 / 12)
    assert s.tradeoff == pytest.approx(2 * s.coverage * s.reduction / (s.coverage + s.reduction))
    full = bt.score(np.array([0, 0, 1]), np.array([0, 1, 2]))
    assert full.coverage == 1.0 and full.n_comparisons == 4 + 2 + 1
    assert bt.counts().toarray().tolist() == [[1, 1, 0], [0, 0, 1]]


def test_grid_is_identical_serially_on_threads_and_on_processes() -> None:
    rng = np.random.default_rng(3)
    h = rng.random((12, 15)) * (rng.random((12, 15)) < 0.4)
    inst = Instance.from_dense(h / h.max())
    li = pl.DataFrame({"item_id": [f"l{i}" for i in range(12)], "fine_category": [str(i) for i in range(12)], "title": ["t"] * 12})
    ri = pl.DataFrame({"item_id": [f"r{i}" for i in range(15)], "fine_category": [str(i) for i in range(15)], "title": ["t"] * 15})
    truth = pl.DataFrame({"item_a": [f"l{i}" for i in range(12)], "item_b": [f"r{i}" for i in range(12)]})
    bt = blocking_truth(li, ri, tuple(map(str, range(12))), tuple(map(str, range(15))), truth)
    pts = grid_points(value_range([-1, 1, 0.5]), value_range([-1, 1, 0.5]))
    assert len(pts) == 25 and len(grid_points([0, 1], [0, 1], tie_sides=False)) == 16
    methods = ["bipoly_s", "bipoly_c", "poly", "bipartite", "uflp"]
    serial = [r.as_dict() for r in grid_search(methods, inst, bt, pts)]
    with ThreadPoolExecutor(2) as ex:
        threads = [r.as_dict() for r in grid_search(methods, inst, bt, pts, executor=ex)]
    with ProcessPoolExecutor(2) as ex:
        procs = [r.as_dict() for r in grid_search(methods, inst, bt, pts, executor=ex)]
    assert serial == threads == procs


def test_partitioned_solve_equals_the_block_diagonal_solve() -> None:
    rng = np.random.default_rng(5)
    h = rng.random((10, 12)) * (rng.random((10, 12)) < 0.5)
    gl, gr = rng.integers(0, 3, 10), rng.integers(0, 3, 12)
    inst = Instance.from_dense(h / h.max())
    inst = inst.restrict(gl[inst.left] == gr[inst.right])
    rw = Rewards.tied(0.1, 0.2)
    parts = split_by_groups(inst, gl, gr)
    with ThreadPoolExecutor(2) as ex:
        merged = merge(solve_partitioned(parts, lambda s: bipoly_s(s, rw), executor=ex), "bipoly_s")
    assert merged.pairs() == bipoly_s(inst, rw).pairs()
    ilp = merge(solve_partitioned(parts, lambda s: solve_ilp(s, rw, IlpConfig(mip_gap=0.0))), "ilp")
    assert ilp.pairs() == solve_ilp(inst, rw, IlpConfig(mip_gap=0.0)).pairs() or np.isclose(
        ilp.objective, solve_ilp(inst, rw, IlpConfig(mip_gap=0.0)).objective, atol=1e-6)


def test_partitioned_solve_of_many_settings_equals_one_solve_per_setting() -> None:
    rng = np.random.default_rng(7)
    h = rng.random((9, 11)) * (rng.random((9, 11)) < 0.6)
    gl, gr = rng.integers(0, 2, 9), rng.integers(0, 2, 11)
    inst = Instance.from_dense(h / h.max())
    parts = split_by_groups(inst.restrict(gl[inst.left] == gr[inst.right]), gl, gr)
    settings = [Rewards.tied(0.1, 0.2), Rewards.tied(-0.3, 0.5), Rewards()]
    solvers = [partial(bipoly_s, rewards=rw) for rw in settings]
    with ThreadPoolExecutor(2) as ex:
        many = solve_partitioned_many(parts, solvers, executor=ex)
    assert len(many) == len(settings) and all(len(per) == len(parts) for per in many)
    for per, solve in zip(many, solvers, strict=True):
        one = solve_partitioned(parts, solve)
        assert [m.pairs() for m in per] == [m.pairs() for m in one]
        assert merge(per, "bipoly_s").pairs() == merge(one, "bipoly_s").pairs()


def test_ilp_time_limit_returns_incumbent_or_falls_back_with_a_warning() -> None:
    rng = np.random.default_rng(0)
    inst = Instance.from_dense(rng.random((40, 60)), keep_zeros=True)
    rw = Rewards.tied(0.1, 0.2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = solve_ilp(inst, rw, IlpConfig(time_limit=1e-3, warm_start=False))
    if res.status.startswith("fallback"):
        assert any("falling back to greedy bipoly_s" in str(w.message) for w in caught)
        assert res.pairs() == bipoly_s(inst, rw).pairs()
    else:
        assert res.status == "Time limit reached" and not res.info["proven_optimal"]
    assert is_bipoly(res.left, res.right, inst.n_left, inst.n_right)
    warm = solve_ilp(inst, rw, IlpConfig(time_limit=1e-3, warm_start=True))  # the greedy start is an incumbent
    assert not warm.status.startswith("fallback") and warm.objective >= bipoly_s(inst, rw).objective - 1e-9
    assert warm.objective >= bipoly_c(inst, rw).objective - 1e-9  # the best greedy, not BiPoly.S only
    assert warm.status == "Time limit reached" and not warm.info["proven_optimal"]


def test_ilp_time_limit_covers_the_model_build() -> None:
    """The budget is the whole call (issue 12, 9b): the build and warm starts spend it, HiGHS gets the
    rest, and what is reported adds up to the call's wall time."""
    rng = np.random.default_rng(1)
    inst = Instance.from_dense(rng.random((60, 80)), keep_zeros=True)
    rw = Rewards.tied(0.1, 0.2)
    res = solve_ilp(inst, rw, IlpConfig(time_limit=1e-4))
    assert res.info["returned"] == "warm start"  # building 9,600-pair model leaves HiGHS nothing
    assert is_bipoly(res.left, res.right, inst.n_left, inst.n_right)
    assert res.objective == res.info["warm_start_objective"] >= max(bipoly_s(inst, rw).objective, bipoly_c(inst, rw).objective)


def test_bipoly_c_resolves_mutually_pending_pairs() -> None:
    # one pair, both ends want to host (h > ω − η on both sides): ResolvePending decides
    inst = Instance.from_dense(np.array([[0.9]]))
    m = bipoly_c(inst, Rewards(0.5, 0.5, 0.3, 0.1))
    assert m.pairs() == {(0, 0)} and m.info["resolved_pending"] == 1
    assert bipoly_c(inst, Rewards.tied(0.95, -0.5)).n_pairs == 0  # staying reclusive is cheaper


def test_meta_blocking_steps() -> None:
    tl = ["acer aspire laptop", "canon camera lens", "acer monitor", "usb cable"]
    tr = ["acer aspire notebook", "canon lens 50mm", "acer monitor 24", "usb cable", "usb hub", "camera bag"]
    bl, br = token_blocks(tl, tr)
    kb = purge_and_filter(bl, br, max_comparisons=3, filter_ratio=1.0)
    assert kb.comparisons.max() <= 3 and kb.n_purged == 1  # "acer": 2 x 2 comparisons
    w = np.array([0.9, 0.5, 0.7, 0.2])
    keep = node_pruning(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), w, 1)
    # left 0 keeps (0,0), left 1 keeps (1,0), right 1 keeps (0,1); (1,1) is nobody's best
    assert keep.tolist() == [True, True, True, False]
    cl, cr = np.array([0, 1, 0, 2]), np.array([0, 1, 0, 2, 2, 1])
    for combine in ("intersect", "boost", "none"):
        res = meta_blocking(tl, tr, cl, cr, 3, 3, lambda i: bipoly_c(i, Rewards()), max_comparisons=3,
                            node_k=2, combine=combine)
        assert res.left.size <= res.keyword_left.size
        kw = set(zip(res.keyword_left.tolist(), res.keyword_right.tolist(), strict=True))
        assert set(zip(res.left.tolist(), res.right.tolist(), strict=True)) <= kw
    assert (0, 0) in kw and (3, 3) in kw


def test_entity_scenario_truth_and_scores() -> None:
    rows = [(f"root{r}", f"root{r}: f{f}", f"word{r} w{f} item{i}") for r in range(4) for f in range(3) for i in range(5)]
    items = pl.DataFrame(rows, schema=["category", "fine_category", "title"], orient="row")
    sc = entity_scenario(items, p=0.3, seed=1)
    assert sc.n_moved == len(sc.truth) > 0
    m = bipoly_s(similarity(sc.left, sc.right, "tfidf").instance, Rewards.tied(0.6, 0.9))
    s = entity_scores(m, sc)
    assert 0 <= s.precision <= 1 and 0 <= s.recall <= 1 and s.n_true == sc.n_moved
    # a perfect prediction scores 1
    from crossmatch.bipoly.matching import Matching
    perfect = Matching.from_pairs(np.array([a for a, _ in sc.truth]), np.array([b for _, b in sc.truth]))
    assert entity_scores(perfect, sc).f1 == 1.0


def test_sparse_instance_round_trip() -> None:
    a = sp.random(20, 30, density=0.2, random_state=0, format="csr")
    inst = Instance.from_sparse(a / a.max())
    assert np.allclose(inst.csr().toarray(), (a / a.max()).toarray())
    t = inst.transpose()
    assert np.allclose(t.dense(), inst.dense().T)
