"""Non-learned reference rankers under the same protocol as eq. 10 (context for §2.9 numbers).

``popularity``: items ranked by their number of training users. ``cooccurrence``: eq. 10 with
the learned similarity replaced by the row-normalised co-occurrence weight,
``score(y | x) = Σ_{y' ∈ H_x} w(x, y')/Σw · c(y', y)/Σ_z c(y', z)``. Neither is part of ICPA;
they show how far a model is from the signal that is in the graph.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from crossmatch.icpa.graph import CSR, SourceGraph


def _to_scipy(csr: CSR, n_cols: int) -> sp.csr_matrix:
    return sp.csr_matrix((csr.weights.cpu().numpy().astype(np.float64), csr.indices.cpu().numpy(),
                          csr.indptr.cpu().numpy()), shape=(csr.n_rows, n_cols))


def reference_topk(graph: SourceGraph, users: np.ndarray, k: int, kind: str = "cooccurrence", *,
                   exclude_history: bool = True, chunk: int = 2048) -> np.ndarray:
    """Top-``k`` items per user, ``[len(users), k]``, for ``kind`` in ``popularity | cooccurrence``."""
    if kind not in ("popularity", "cooccurrence"):
        raise ValueError(f"kind must be 'popularity' or 'cooccurrence', got {kind!r}")
    n = graph.schema.n_items
    k = min(k, n)
    H = _to_scipy(graph.user_item, n)
    pop = np.asarray((H > 0).sum(axis=0)).ravel().astype(np.float64)
    if kind == "cooccurrence":
        C = _to_scipy(graph.item_item, n)
        C = sp.diags(1.0 / np.maximum(np.asarray(C.sum(axis=1)).ravel(), 1e-12)) @ C
    out = []
    for s in range(0, len(users), chunk):
        Hu = H[users[s:s + chunk]]
        Hu = sp.diags(1.0 / np.maximum(np.asarray(Hu.sum(axis=1)).ravel(), 1e-12)) @ Hu
        if kind == "popularity":
            scores = np.tile(pop, (Hu.shape[0], 1))
        else:
            # A tiny popularity term breaks ties among items with no co-occurrence at all.
            scores = np.asarray((Hu @ C).todense()) + 1e-9 * pop / max(pop.max(), 1.0)
        if exclude_history:
            r, c = Hu.nonzero()
            scores[r, c] = -np.inf
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        out.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)
