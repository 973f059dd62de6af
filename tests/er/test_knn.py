"""The sparse top-k cosine search behind ER blocking, the scorer's neighbourhood features and BiPoly's neighbours
kind (crossmatch.er.knn): exact against brute force, pruned against exact, the auto switch, chunking."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from crossmatch.er.blocking import BlockingConfig, topk
from crossmatch.er.knn import exact_work
from crossmatch.er.knn import topk as knn_topk
from crossmatch.errors import ConfigError


def _rows(n: int, d: int, density: float, seed: int, common: int = 0) -> sp.csr_matrix:
    """Random non-negative unit rows; the first ``common`` features are held by every row with a small weight
    (like " th", whose IDF is low)."""
    rng = np.random.default_rng(seed)
    M = sp.random(n, d, density=density, random_state=rng, format="csr", dtype=np.float64)
    if common:
        M = sp.hstack([sp.csr_matrix(0.1 * rng.random((n, common))), M[:, common:]]).tocsr()
    return normalize(M).astype(np.float32).tocsr()


def _brute(X: sp.csr_matrix, Y: sp.csr_matrix, k: int) -> dict[int, list[int]]:
    S = (X @ Y.T).toarray()
    return {i: list(np.argsort(-S[i], kind="stable")[:k]) for i in range(X.shape[0])}


def _as_lists(rows: np.ndarray, cols: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        out.setdefault(r, []).append(c)
    return out


def test_exact_matches_brute_force() -> None:
    X, Y = _rows(60, 300, 0.05, 0), _rows(90, 300, 0.05, 1)
    rows, cols, sims, ranks = knn_topk(X, Y, 5, chunk=7, search="exact")
    assert _as_lists(rows, cols) == {i: v for i, v in _brute(X, Y, 5).items()}
    assert np.allclose(sims, np.asarray(X[rows].multiply(Y[cols]).sum(axis=1)).ravel(), atol=1e-6)
    assert ranks.tolist() == [1, 2, 3, 4, 5] * 60


def test_pruned_without_pruning_equals_exact() -> None:
    # every feature kept: the partial score is the cosine, so the shortlist holds the exact top-k
    X, Y = _rows(50, 200, 0.08, 2), _rows(120, 200, 0.08, 3)
    e = knn_topk(X, Y, 6, search="exact")
    p = knn_topk(X, Y, 6, search="pruned", max_df=10**9)
    for a, b in zip(e, p, strict=True):
        assert np.allclose(a, b, atol=1e-6)


def test_pruned_drops_common_features_from_the_search_only() -> None:
    # 3 features in every record: pruned away from the search, still counted in the re-ranking cosine
    X, Y = _rows(40, 400, 0.03, 4, common=3), _rows(300, 400, 0.03, 5, common=3)
    rows, cols, sims, ranks = knn_topk(X, Y, 8, search="pruned", max_df=50, chunk_work=500)
    assert np.bincount(rows, minlength=40).tolist() == [8] * 40  # every row gets k, short ones searched exactly
    assert np.allclose(sims, np.asarray(X[rows].multiply(Y[cols]).sum(axis=1)).ravel(), atol=1e-6)
    assert (np.diff(sims)[np.diff(rows) == 0] <= 1e-9).all()  # best first within a row
    assert ranks.tolist() == list(range(1, 9)) * 40
    exact = _brute(X, Y, 8)
    overlap = np.mean([len(set(v) & set(exact[r])) / 8 for r, v in _as_lists(rows, cols).items()])
    assert overlap > 0.8  # an approximation, but of the same neighbours


def test_rows_without_rare_features_fall_back_to_exact() -> None:
    X, Y = _rows(20, 100, 0.1, 6), _rows(30, 100, 0.1, 7)
    # max_df 1: no feature is held by a single record of both tables together, so nothing is rare
    rows, cols, _, _ = knn_topk(X, Y, 4, search="pruned", max_df=1)
    assert _as_lists(rows, cols) == _brute(X, Y, 4)


def test_auto_switches_on_the_exact_work() -> None:
    X, Y = _rows(30, 150, 0.1, 8, common=2), _rows(60, 150, 0.1, 9, common=2)
    work = exact_work(X, Y)
    assert work == int((X @ Y.T).astype(bool).sum()) or work >= int((X @ Y.T).nnz)  # at least one op per entry
    assert work == sum(int((X[:, f].nnz) * (Y[:, f].nnz)) for f in range(150))
    pruned = knn_topk(X, Y, 5, search="pruned", max_df=20)
    exact = knn_topk(X, Y, 5, search="exact")
    for a, b in zip(knn_topk(X, Y, 5, search="auto", max_df=20, exact_max_work=work - 1), pruned, strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(knn_topk(X, Y, 5, search="auto", max_df=20, exact_max_work=work), exact, strict=True):
        assert np.array_equal(a, b)


def test_chunking_does_not_change_the_result() -> None:
    X, Y = _rows(80, 300, 0.05, 10, common=2), _rows(100, 300, 0.05, 11, common=2)
    a = knn_topk(X, Y, 5, search="pruned", max_df=30, chunk_work=10**9)
    b = knn_topk(X, Y, 5, search="pruned", max_df=30, chunk_work=1)
    for u, v in zip(a, b, strict=True):
        assert np.array_equal(u, v)


def test_blocking_config_reaches_the_search_and_checks_it() -> None:
    X, Y = _rows(30, 150, 0.1, 12, common=2), _rows(60, 150, 0.1, 13, common=2)
    cfg = BlockingConfig(search="pruned", max_df=20, shortlist=2)
    for a, b in zip(topk(X, Y, 5, cfg), knn_topk(X, Y, 5, search="pruned", max_df=20, shortlist=2), strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(ConfigError, match="search"):
        BlockingConfig(search="fast")
    with pytest.raises(ConfigError, match="max_df"):
        BlockingConfig(max_df=0)
    with pytest.raises(ConfigError):
        knn_topk(X, Y, 0)
    with pytest.raises(ValueError, match="same number of columns"):
        knn_topk(X, Y[:, :100], 3)


def test_fewer_rows_than_k_and_empty_inputs() -> None:
    X, Y = _rows(10, 50, 0.2, 14), _rows(3, 50, 0.2, 15)
    for search in ("exact", "pruned"):
        rows, cols, _, ranks = knn_topk(X, Y, 5, search=search)
        assert np.bincount(rows).tolist() == [3] * 10 and ranks.max() == 3
    rows, *_ = knn_topk(X[:0], Y, 5)
    assert rows.shape == (0,)


def test_ties_go_to_the_smaller_column_id_in_both_searches() -> None:
    """Duplicate records tie exactly; the k best are then those with the smaller column ids, in that order, in the
    exact and the pruned search alike. An argpartition top-k leaves the pick among ties to NumPy's per-CPU
    selection kernel: the committed candidates of two benchmarks were not reproduced on another machine."""
    base = _rows(12, 200, 0.08, 5)
    Y = sp.vstack([base[[i % 4 for i in range(12)]], base]).tocsr()  # rows 0-11 repeat four records three times
    Y = sp.csr_matrix(Y[np.random.default_rng(7).permutation(Y.shape[0])])  # ties spread over the column ids
    X = sp.vstack([base[:6], _rows(20, 200, 0.08, 6)]).tocsr()
    for k in (1, 2, 3, 5):
        want = _brute(X, Y, k)  # a stable argsort of -cosine: ties by the smaller column id
        rows, cols, _, ranks = knn_topk(X, Y, k, search="exact", chunk=7)
        assert _as_lists(rows, cols) == want
        assert ranks.tolist() == [j for _ in range(X.shape[0]) for j in range(1, k + 1)]
        pr, pc, _, _ = knn_topk(X, Y, k, search="pruned", max_df=10**6, shortlist=4)
        assert _as_lists(pr, pc) == want
    S = (X @ Y.T).toarray()
    tied = [i for i in range(X.shape[0]) if np.sum(np.isclose(S[i], np.sort(S[i])[-1], rtol=0, atol=0)) > 1]
    assert len(tied) >= 4  # the data really has ties at the top
