"""Top-k cosine neighbours between two row-normalised sparse matrices (TF-IDF records), exact or pruned.

The exact search multiplies every row of ``X`` with every row of ``Y``: its cost is the number of
multiply-adds of ``X @ Y.T``, Σ_f df_X(f) · df_Y(f) over the features f, which grows as the product of the
two table sizes — character n-grams such as "ing" or " th" sit in most records, so their posting lists meet
everywhere. Measured on Walmart–Amazon grown by copies (``benchmarks/bench_er_scaling.py``), that is the part of
the ER stages that turns quadratic.

The pruned search (``search="pruned"``) generates each row's shortlist from the features held by at most
``max_df`` records of the two tables together — the rare n-grams of model numbers, brands and distinctive words,
where most of a match's TF-IDF weight lies — so its cost is at most ``nnz(X) · max_df`` multiply-adds,
linear in the data; the ``shortlist · k`` best rows of ``Y`` by that partial score are then ranked by their
exact cosine (every feature). A row that meets fewer than ``k`` rows of ``Y`` through rare features is
searched exactly. ``search="auto"`` counts the exact multiply-adds first (one sparse matrix–vector
product) and runs the exact search up to ``exact_max_work``, the pruned one above.

Work is chunked by its count, not by rows, so memory stays bounded whatever the data: at most ``chunk_work``
multiply-adds per sparse product.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from crossmatch.errors import ConfigError
from crossmatch.topk import best_k

SEARCHES = ("exact", "pruned", "auto")
_DENSE_CELLS = 50_000_000


def exact_work(X: sp.csr_matrix, Y: sp.csr_matrix) -> int:
    """Multiply-adds of ``X @ Y.T``: Σ_f df_X(f) · df_Y(f) (the exact search's cost)."""
    _check(X, Y)
    return int(np.dot(np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64),
                      np.bincount(Y.indices, minlength=Y.shape[1]).astype(np.float64)))


def resolve_search(X: sp.csr_matrix, Y: sp.csr_matrix, search: str, exact_max_work: float) -> str:
    """The search ``topk`` runs for ``search``: ``auto`` is ``exact`` up to ``exact_max_work`` multiply-adds."""
    if search != "auto":
        return search
    return "exact" if exact_work(X, Y) <= exact_max_work else "pruned"


def topk(X: sp.csr_matrix, Y: sp.csr_matrix, k: int, chunk: int = 1024, *, search: str = "auto",
         max_df: int = 3000, shortlist: int = 4, exact_max_work: float = 1e9,
         chunk_work: int = 20_000_000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``X`` → their ``k`` best rows of ``Y`` by cosine: ``(row, col, cosine, 1-based rank)``, int64 /
    float64, rows ascending, ranks 1..k within a row (fewer when ``Y`` has fewer rows).

    ``search``: ``exact`` (a dense ``chunk × |Y|`` block per chunk of rows), ``pruned`` (shortlist from the
    features in at most ``max_df`` records, re-ranked exactly) or ``auto`` (exact while its multiply-adds stay
    ≤ ``exact_max_work``). Raises ConfigError on a bad setting and ValueError on mismatched shapes.
    """
    _check(X, Y)
    if search not in SEARCHES:
        raise ConfigError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    if k < 1 or chunk < 1 or max_df < 1 or shortlist < 1 or chunk_work < 1:
        raise ConfigError("k, chunk, max_df, shortlist and chunk_work must all be >= 1")
    k = min(k, Y.shape[0])
    if k == 0 or X.shape[0] == 0:
        return _empty()
    if resolve_search(X, Y, search, exact_max_work) == "exact":
        return _exact(X, Y, k, chunk)
    return _pruned(X, Y, k, max_df, shortlist, chunk_work)


def _check(X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y need the same number of columns (one vocabulary), got {X.shape} and {Y.shape}")


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    z = np.zeros(0, dtype=np.int64)
    return z, z.copy(), np.zeros(0), z.copy()


def _exact(X: sp.csr_matrix, Y: sp.csr_matrix, k: int, chunk: int,
           rows_of: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The exact search over ``rows_of`` (default: every row of X)."""
    rows_of = np.arange(X.shape[0]) if rows_of is None else rows_of
    rows, cols, sims, ranks = [], [], [], []
    YT = Y.T.tocsc()
    chunk = max(1, min(chunk, _DENSE_CELLS // max(Y.shape[0], 1)))  # a dense block of at most ~200 MB
    for s in range(0, len(rows_of), chunk):
        part = rows_of[s:s + chunk]
        idx, val = best_k((X[part] @ YT).toarray(), k)  # ties by the smaller column: portable (crossmatch.topk)
        rows.append(np.repeat(part, k))
        cols.append(idx.ravel())
        sims.append(val.ravel())
        ranks.append(np.tile(np.arange(1, k + 1), len(part)))
    return (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64),
            np.concatenate(sims).astype(np.float64), np.concatenate(ranks).astype(np.int64))


def _shortlists(P: sp.csr_matrix, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``[rows, m]`` column ids of each row's ``m`` largest entries of ``P`` (ascending ids, -1 where a row has
    fewer) and those entries (0 where none)."""
    cols_out = np.full((P.shape[0], m), -1, dtype=np.int64)
    vals_out = np.zeros((P.shape[0], m), dtype=np.float64)
    ptr, ind, val = P.indptr, P.indices, P.data
    for i in range(P.shape[0]):
        a, b = ptr[i], ptr[i + 1]
        # the m largest, ties by the smaller column id (an argpartition's pick among ties is not portable)
        sel = np.arange(a, b) if b - a <= m else a + np.lexsort((ind[a:b], -val[a:b]))[:m]
        sel = sel[np.argsort(ind[sel], kind="stable")]
        cols_out[i, :len(sel)] = ind[sel]
        vals_out[i, :len(sel)] = val[sel]
    return cols_out, vals_out


def _restrict(M: sp.csr_matrix, features: np.ndarray) -> sp.csr_matrix:
    """``M`` with only the columns in ``features`` (others dropped from the storage, shape kept)."""
    out = (M @ sp.diags(features.astype(M.dtype))).tocsr()
    out.eliminate_zeros()
    return out


def _pruned(X: sp.csr_matrix, Y: sp.csr_matrix, k: int, max_df: int, shortlist: int,
            chunk_work: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    df = np.bincount(X.indices, minlength=X.shape[1]) + np.bincount(Y.indices, minlength=Y.shape[1])
    rare = df <= max_df
    Xr, Xc = _restrict(X, rare), _restrict(X, ~rare)
    YrT, Yc = _restrict(Y, rare).T.tocsr(), _restrict(Y, ~rare)
    # multiply-adds of each row's product: a bound on its partial-score entries, so chunks are cut by work
    per_row = Xr.astype(bool).astype(np.float64) @ np.diff(YrT.indptr).astype(np.float64)
    bounds = np.searchsorted(np.cumsum(per_row), np.arange(chunk_work, per_row.sum() + chunk_work, chunk_work),
                             side="right")
    cuts = np.unique(np.r_[0, np.clip(bounds, 1, X.shape[0]), X.shape[0]])
    rows, cols, sims = [], [], []
    for s, e in zip(cuts[:-1], cuts[1:], strict=True):
        C, partial = _shortlists((Xr[s:e] @ YrT).tocsr(), shortlist * k)
        have = C >= 0
        rr, cc = np.nonzero(have)[0] + s, C[have]
        S = np.full(C.shape, -np.inf)
        # the cosine = the rare features' part (the shortlist score) + the common features' part
        S[have] = partial[have] + np.asarray(Xc[rr].multiply(Yc[cc]).sum(axis=1)).ravel()
        # by exact cosine; ties by the smaller column id, as the shortlist is sorted by id
        top = np.argsort(-S, axis=1, kind="stable")[:, :k]
        S, C = np.take_along_axis(S, top, axis=1), np.take_along_axis(C, top, axis=1)
        ok = np.isfinite(S)
        rows.append(np.nonzero(ok)[0] + s)
        cols.append(C[ok])
        sims.append(S[ok])
    row = np.concatenate(rows).astype(np.int64)
    col = np.concatenate(cols).astype(np.int64)
    sim = np.concatenate(sims).astype(np.float64)
    short_rows = np.flatnonzero(np.bincount(row, minlength=X.shape[0]) < k)
    if len(short_rows):  # too few rare-feature neighbours: these rows get the exact search
        drop = np.isin(row, short_rows)
        r2, c2, s2, _ = _exact(X, Y, k, 1024, short_rows)
        row, col, sim = np.r_[row[~drop], r2], np.r_[col[~drop], c2], np.r_[sim[~drop], s2]
    order = np.argsort(row, kind="stable")  # each row's entries are already best first
    row, col, sim = row[order], col[order], sim[order]
    start = np.searchsorted(row, row)
    return row, col, sim, np.arange(len(row)) - start + 1
