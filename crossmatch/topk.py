"""Row-wise top-k selection whose pick among tied scores is the same on every CPU: ties go to the smaller column.

``np.argpartition`` and ``torch.topk`` leave the choice among entries tied at the k-th place to their selection
kernels, and NumPy and PyTorch pick those per CPU (AVX-512 ones where present). Scores with exact ties are
common where rankings are evaluated — duplicate records in entity resolution, popularity counts, the zeros of
a sparse item–item product, the excluded history of a user — so a top-k read from those kernels is not
portable: the same code, data and pinned packages gave other candidates (ER) and other NDCG@10 of the
non-learned rankers (ICPA evaluation) on an AVX2 machine than on the AVX-512 one that committed them. Used by
the ER / BiPoly neighbour search (:mod:`crossmatch.er.knn`) and ICPA's evaluation top-k
(:mod:`crossmatch.icpa.evaluate`, :mod:`crossmatch.icpa.sparse_topk`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["best_k", "best_k_entries"]


def best_k(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest entries of the dense ``S`` (``[rows, m]``): ``(columns, values)``, each
    ``[rows, min(k, m)]``, best first, ties by the smaller column.

    Only the k-th largest *value* is read from a partition (the same whichever entry holds it); the entries
    above it and the first ties with it by column are then ordered. ``-inf`` is a value like any other (an
    excluded entry ranks last, ties among them by column too); NaN is not allowed."""
    if S.ndim != 2:
        raise ValueError(f"best_k needs a 2-D array, got shape {S.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n, m = S.shape
    k = min(k, m)
    if k == m:
        idx = np.tile(np.arange(m), (n, 1))
    else:
        kth = np.partition(S, m - k, axis=1)[:, m - k][:, None]
        rg, cg = np.nonzero(S > kth)  # fewer than k per row
        re, ce = np.nonzero(S == kth)  # ties with the k-th, ascending columns within a row
        need = k - np.bincount(rg, minlength=n)
        take = np.arange(len(re)) - np.searchsorted(re, re) < need[re]
        rr, cc = np.r_[rg, re[take]], np.r_[cg, ce[take]]
        idx = cc[np.lexsort((cc, -S[rr, cc], rr))].reshape(n, k)
    val = np.take_along_axis(S, idx, axis=1)
    order = np.argsort(-val, axis=1, kind="stable")  # by value, ties by column (idx is in that order already)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)


def best_k_entries(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, k: int) -> np.ndarray:
    """Positions into ``rows / cols / vals`` (the entries of a sparse matrix, any order) of each row's ``k``
    largest values, grouped by ascending row, best first within a row, ties by the smaller column."""
    if not rows.shape == cols.shape == vals.shape or rows.ndim != 1:
        raise ValueError(f"rows, cols and vals must be 1-D and of one length, got {rows.shape}, {cols.shape}, "
                         f"{vals.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    order = np.lexsort((cols, -vals, rows))  # lexsort's last key is the primary one
    r = rows[order]
    rank = np.arange(r.size) - np.searchsorted(r, r)
    return order[rank < k]
