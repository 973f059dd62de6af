"""Top-k items of a sparse user × item product ``H @ S`` (the knn retrieval of eq. 10; issue 11 part 2).

Memory ``O(users_chunk · n)`` at most per thread (only rows with fewer than ``k`` positive entries are
densified), never ``users × items``; chunks of users run on threads and give the same result for any count.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from crossmatch.topk import best_k, best_k_entries

BUDGET = 1 << 24  # elements of one working block (densified users × items here; items × block in retrieval)


def default_workers() -> int:
    """Threads for :func:`sparse_topk`: the cores this process may use, at most 4 (each holds one chunk)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def sparse_topk(H: sp.csr_matrix, S: sp.csr_matrix, k: int, *, exclude_history: bool = True,
                user_chunk: int | None = None, workers: int | None = None) -> np.ndarray:
    """Top-``k`` items ``[u, k]`` of ``H @ S`` (dense scores: 0 where the product has no entry).

    Rows with at least ``k`` positive non-history entries take their top-k among those entries (everything
    else scores ≤ 0); the rest are densified, in chunks of at most :data:`BUDGET` elements. Chunks of users
    are independent, so they run on ``workers`` threads (default :func:`default_workers`; SciPy's sparse
    product releases the GIL): the result is the same for any number of workers. Tied scores go to the smaller item id, on every CPU
    (:mod:`crossmatch.topk`; ``torch.topk``'s pick among ties is its kernel's).
    """
    u, n = H.shape
    if S.shape != (n, n):
        raise ValueError(f"item graph must be [{n}, {n}], got {S.shape}")
    k = min(int(k), n)
    out = np.empty((u, k), dtype=np.int64)
    chunk = user_chunk or max(1, BUDGET // max(n, 1))
    starts = range(0, u, chunk)
    threads = min(workers or default_workers(), len(starts))

    def one(r0: int) -> None:
        out[r0:r0 + chunk] = _chunk_topk(sp.csr_matrix(H[r0:r0 + chunk]), S, k, exclude_history)

    if threads <= 1:
        for r0 in starts:
            one(r0)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, starts))  # list(): re-raises a worker's exception here
    return out


def _chunk_topk(Hc: sp.csr_matrix, S: sp.csr_matrix, k: int, exclude_history: bool) -> np.ndarray:
    """:func:`sparse_topk` for one chunk of users (rows of ``Hc``)."""
    out = np.empty((Hc.shape[0], k), dtype=np.int64)
    P = sp.csr_matrix(Hc @ S)  # csr_matmat sums duplicates already; its column order does not matter here
    if exclude_history:
        # History entries pushed below every real score (and below the 0 of the non-candidates):
        # cheaper than matching (row, item) keys, and the densified rows need no further masking.
        B = Hc.copy()
        B.data[:] = 2.0 * float(np.abs(P.data).max(initial=0.0)) + 1.0
        P = sp.csr_matrix(P - B)
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    keep = P.data > 0
    rows, cols, vals = rows[keep], P.indices[keep], P.data[keep]
    cnt = np.bincount(rows, minlength=P.shape[0])
    ok = cnt >= k
    if ok.any():
        # Each such row's k-th largest value from one partition of its entries, padded side by side (the
        # value, unlike which tied entry holds it, is the same on every CPU); then only the entries at or above
        # it are sorted (crossmatch.topk.best_k_entries: ties by the smaller item id). Sorting every entry
        # instead was 4-10x slower on a `large` source.
        sel = ok[rows]
        r, c, v = rows[sel], cols[sel], vals[sel]
        n_ok = cnt[ok]
        slot = np.arange(r.size) - np.repeat(np.cumsum(n_ok) - n_ok, n_ok)
        at = (np.cumsum(ok) - 1)[r]
        width = int(n_ok.max())
        pad = np.full((n_ok.size, width), -np.inf)  # never the k-th: each row has >= k real entries
        pad[at, slot] = v
        kth = np.partition(pad, width - k, axis=1)[:, width - k]
        top = v >= kth[at]
        c = c[top]
        out[np.flatnonzero(ok)] = c[best_k_entries(r[top], c, v[top], k)].reshape(-1, k)
    bad = np.flatnonzero(~ok)
    if bad.size:
        out[bad] = best_k(np.asarray(P[bad].todense(), dtype=np.float64), k)[0]
    return out
