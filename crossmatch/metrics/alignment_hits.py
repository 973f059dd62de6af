"""Cross-source alignment accuracy: hit@k of the true partner among nearest items (§2.9).

For a source pair ``(a, b)`` and every item of ``a`` that has at least one true partner in
``b`` (same hidden concept / ASIN), rank all items of ``b`` by the dot product of their
embeddings; a hit@k means some true partner ranks in the top ``k``. The chance level of a
random embedding is about ``k·(partners)/n_b``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def partner_pairs(concepts_a: np.ndarray, concepts_b: np.ndarray) -> np.ndarray:
    """``[P, 2]`` index pairs ``(i, j)`` with ``concepts_a[i] == concepts_b[j]`` (missing = None/NaN ignored)."""
    ca = np.asarray(concepts_a, dtype=object)
    cb = np.asarray(concepts_b, dtype=object)
    index: dict[object, list[int]] = {}
    for j, c in enumerate(cb):
        if c is not None and c == c:
            index.setdefault(c, []).append(j)
    pairs = [(i, j) for i, c in enumerate(ca) if c is not None and c == c for j in index.get(c, ())]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def alignment_hits(emb_a: np.ndarray, emb_b: np.ndarray, pairs: np.ndarray, ks: Sequence[int],
                   chunk: int = 2048) -> dict[str, float]:
    """hit@k for every ``k`` plus the number of queries and the chance level at each ``k``.

    Args:
        emb_a: ``[n_a, d]`` embeddings of the query source.
        emb_b: ``[n_b, d]`` embeddings of the candidate source.
        pairs: ``[P, 2]`` true partner pairs ``(i in a, j in b)``.
        ks: cut-offs.

    Returns:
        ``{"queries": Q, "hit@k": ..., "chance@k": ...}`` (NaN hits when there is no query).
    """
    A = np.asarray(emb_a, dtype=np.float32)
    B = np.asarray(emb_b, dtype=np.float32)
    P = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1]:
        raise ValueError(f"embeddings must be [n_a, d] and [n_b, d], got {A.shape} and {B.shape}")
    if P.size and (P[:, 0].max() >= A.shape[0] or P[:, 1].max() >= B.shape[0] or P.min() < 0):
        raise ValueError("pair indices outside the embedding tables")
    queries = np.unique(P[:, 0])
    out: dict[str, float] = {"queries": float(queries.size)}
    if queries.size == 0:
        for k in ks:
            out[f"hit@{k}"] = float("nan")
            out[f"chance@{k}"] = float("nan")
        return out
    best = np.full(A.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
    for s in range(0, queries.size, chunk):
        q = queries[s:s + chunk]
        sims = A[q] @ B.T  # [c, n_b]
        sel = P[np.isin(P[:, 0], q)]
        row = np.searchsorted(q, sel[:, 0])
        partner_score = sims[row, sel[:, 1]]
        # Rank of a partner = number of candidates scoring strictly higher.
        rank = (sims[row] > partner_score[:, None]).sum(1)
        np.minimum.at(best, sel[:, 0], rank)
    ranks = best[queries]
    n_partners = np.bincount(P[:, 0], minlength=A.shape[0])[queries]
    for k in ks:
        out[f"hit@{k}"] = float(np.mean(ranks < k))
        out[f"chance@{k}"] = float(np.mean(np.minimum(1.0, k * n_partners / B.shape[0])))
    return out
