"""Non-learned item-to-item rankers: the baselines every learned ranker must beat (issue 10).

Each ranker is an item–item matrix ``S`` (``[n, n]``, sparse or dense) built from the training
part only; a user's score vector is ``h_u S`` with ``h_u`` the user's history weights, which is
eq. 10 with the learned similarity replaced by ``S`` (ALGORITHMS.md §2.9). Candidates, history
exclusion and metrics are those of the learned models (:mod:`crossmatch.icpa.evaluate`).

``popularity``    number of training users per item (a constant vector).
``cooccurrence``  row-normalised window co-occurrence ``c(y', y) / Σ_z c(y', z)`` (the edges stage's graph).
``itemknn``       cosine between item columns of the binary user–item matrix, top-``K`` per item.
``ease``          EASE (Steck, WWW 2019): ``B = I − P·diag(1/diag P)``, ``P = (XᵀX + λI)⁻¹``,
                  ``diag B = 0`` — the closed-form ridge item–item model. Dense ``[n, n]``: fine for a
                  source of ≤ ~20 k items; beyond that use ``itemknn``.

Memory (issue 11): ``cooccurrence`` is as sparse as the edges stage's graph, ``itemknn`` is built
in blocks of item rows (the full ``XᵀX`` is never held; ``n·K`` entries are kept), ``popularity``
is a vector. ``ease`` is items² by construction (a dense inverse of the Gram matrix, 7.2 GB at
30 k items) and refuses catalogues above :data:`EASE_MAX_ITEMS`; leave it out of
``icpa.eval.rankers`` (and ``hybrid_rankers``) for such sources.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from crossmatch.errors import ConfigError
from crossmatch.topk import best_k_entries

RANKERS: tuple[str, ...] = ("popularity", "cooccurrence", "itemknn", "ease")
EASE_MAX_ITEMS = 30_000  # a dense float64 Gram matrix of this size is 7.2 GB


def binary(H: sp.csr_matrix) -> sp.csr_matrix:
    """The 0/1 pattern of a user–item matrix (float64)."""
    B = H.tocsr(copy=True).astype(np.float64)
    B.data[:] = 1.0
    B.eliminate_zeros()
    return B


def popularity_vector(H: sp.csr_matrix) -> np.ndarray:
    """Training users per item."""
    return np.asarray(binary(H).sum(axis=0)).ravel()


def cooccurrence_matrix(C: sp.csr_matrix) -> sp.csr_matrix:
    """Row-normalised co-occurrence ``c(y', y) / Σ_z c(y', z)``."""
    C = C.tocsr().astype(np.float64)
    rows = np.asarray(C.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(rows, 1e-12)) @ C)


def itemknn_matrix(H: sp.csr_matrix, k: int = 200, *, block: int | None = None) -> sp.csr_matrix:
    """Cosine similarity of item columns of the binary ``H``, the ``k`` largest per item, no self-pairs.

    Computed ``block`` item rows at a time (default: ``2²⁴ / n`` rows, at most that many entries per
    block product), so memory is ``O(n·k)`` plus one block instead of the full ``XᵀX``, which for
    heavy users approaches items². Each row's sums run over the same users in the same order as the
    full product, so the result is the same matrix.
    """
    if k < 1:
        raise ConfigError(f"itemknn: k must be >= 1, got {k}")
    X = binary(H)
    n = X.shape[1]
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel())
    Xn = sp.csr_matrix(X @ sp.diags(1.0 / np.maximum(norms, 1e-12)))
    XnT = sp.csr_matrix(Xn.T)
    step = block or max(1, (1 << 24) // max(n, 1))
    parts = []
    for lo in range(0, n, step):
        S = sp.csr_matrix(XnT[lo:lo + step] @ Xn)
        rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
        keep = (S.indices != rows + lo) & (S.data != 0)  # no self-pairs, no explicit zeros
        S = sp.csr_matrix((S.data[keep], (rows[keep], S.indices[keep])), shape=S.shape)
        parts.append(_top_k_rows(S, k))
    return sp.csr_matrix(sp.vstack(parts, format="csr")) if parts else sp.csr_matrix((n, n))


def _top_k_rows(S: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row (ties broken by column index)."""
    S = S.tocsr()
    S.sort_indices()
    deg = np.diff(S.indptr)
    if deg.max(initial=0) <= k:
        return S
    rows = np.repeat(np.arange(S.shape[0]), deg)
    keep = best_k_entries(rows, S.indices, S.data, k)
    return sp.csr_matrix((S.data[keep], (rows[keep], S.indices[keep])), shape=S.shape)


def ease_matrix(H: sp.csr_matrix, lam: float = 50.0) -> np.ndarray:
    """EASE's closed-form item–item weights ``B`` (Steck 2019, eq. 8), ``float32 [n, n]``."""
    n = H.shape[1]
    if lam <= 0:
        raise ConfigError(f"ease: lambda must be > 0, got {lam}")
    if n > EASE_MAX_ITEMS:
        raise ConfigError(f"ease: {n:,} items need a dense {n}x{n} inverse (limit {EASE_MAX_ITEMS:,}); "
                          "use itemknn for a catalogue this size (leave ease out of icpa.eval.rankers "
                          "and icpa.eval.hybrid_rankers)")
    X = binary(H)
    G = np.asarray((X.T @ X).todense(), dtype=np.float64)
    G[np.diag_indices(n)] += lam
    P = la.inv(G, overwrite_a=True, check_finite=False)
    B = -P / np.diag(P)[None, :]
    B[np.diag_indices(n)] = 0.0
    return B.astype(np.float32)


def ranker_matrix(kind: str, *, H: sp.csr_matrix, C: sp.csr_matrix | None = None, ease_lambda: float = 50.0,
                  knn_k: int = 200) -> sp.csr_matrix | np.ndarray:
    """The item–item matrix of ``kind`` (``popularity`` returns the ``[n]`` popularity vector)."""
    if kind == "popularity":
        return popularity_vector(H)
    if kind == "cooccurrence":
        if C is None:
            raise ConfigError("cooccurrence needs the item–item co-occurrence matrix")
        return cooccurrence_matrix(C)
    if kind == "itemknn":
        return itemknn_matrix(H, knn_k)
    if kind == "ease":
        return ease_matrix(H, ease_lambda)
    raise ConfigError(f"unknown ranker {kind!r}; known: {list(RANKERS)}")
