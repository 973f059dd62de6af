"""Top-k ranking metrics per user/query: NDCG@k and F-measure@k (ALGORITHMS.md §2.9).

Inputs are a ``[U, K]`` matrix of ranked item ids (best first) and the relevant items of each
user as CSR (``indptr``, ``items``). Relevance is binary. Averages are plain means over users,
or weighted by query frequency when weights are given (IEG protocol, §2.9.3).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _hits(topk: np.ndarray, indptr: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``[U, K]`` bool: is the item at rank r relevant for user u (vectorised membership)."""
    U, K = topk.shape
    n_rel = np.diff(indptr)
    base = int(max(topk.max(initial=-1), items.max(initial=-1))) + 1
    user_of_rel = np.repeat(np.arange(U), n_rel)
    rel_keys = user_of_rel.astype(np.int64) * base + items.astype(np.int64)
    keys = np.arange(U, dtype=np.int64)[:, None] * base + topk.astype(np.int64)
    return np.isin(keys, rel_keys)


def ranking_metrics(topk: np.ndarray, indptr: np.ndarray, items: np.ndarray, ks: Sequence[int],
                    weights: np.ndarray | None = None) -> dict[int, dict[str, float]]:
    """Mean NDCG@k, F@k, precision@k and recall@k over users, for every ``k`` in ``ks``.

    ``NDCG_u@k = Σ_{i≤k} rel_i / log2(i+1) / IDCG``, ``IDCG = Σ_{i≤min(k,|G_u|)} 1/log2(i+1)``;
    ``P = hits/k``, ``R = hits/|G_u|``, ``F = 2PR/(P+R)`` (0 without a hit).

    Args:
        topk: ``[U, K]`` ranked item ids. ``K`` may be smaller than a ``k`` when the source has fewer
            candidate items than ``k``: the ranked list is then complete at ``K`` and the metrics at
            ``k`` count the hits of those ``K`` items (precision still divides by ``k``).
        indptr: ``[U + 1]`` CSR offsets of each user's relevant items.
        items: relevant item ids.
        ks: cut-offs.
        weights: ``[U]`` non-negative user weights (query frequency); uniform when None.

    Raises:
        ValueError: inconsistent shapes, a user without relevant items, ``k < 1``.
    """
    topk = np.asarray(topk)
    indptr = np.asarray(indptr, dtype=np.int64)
    items = np.asarray(items)
    if topk.ndim != 2 or indptr.ndim != 1 or indptr.shape[0] != topk.shape[0] + 1 or indptr[-1] != items.shape[0]:
        raise ValueError(f"need topk [U, K], indptr [U + 1] ending at len(items); got {topk.shape}, "
                         f"{indptr.shape} (last {indptr[-1] if indptr.size else None}), items {items.shape}")
    U, K = topk.shape
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {list(ks)}")
    n_rel = np.diff(indptr)
    if U and n_rel.min() < 1:
        raise ValueError("every user needs at least one relevant item")
    if weights is None:
        w = np.ones(U)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (U,) or np.any(w < 0) or (U and w.sum() <= 0):
            raise ValueError(f"weights must be [U={U}] non-negative with a positive sum")
    if U == 0:
        return {int(k): {"ndcg": float("nan"), "f": float("nan"), "precision": float("nan"),
                         "recall": float("nan")} for k in ks}
    return {k: {name: float(np.average(v, weights=w)) for name, v in vals.items()}
            for k, vals in per_user_metrics(topk, indptr, items, ks).items()}


def per_user_metrics(topk: np.ndarray, indptr: np.ndarray, items: np.ndarray,
                     ks: Sequence[int]) -> dict[int, dict[str, np.ndarray]]:
    """Per-user NDCG@k, F@k, precision@k, recall@k (``[U]`` arrays; same conventions as :func:`ranking_metrics`)."""
    topk = np.asarray(topk)
    indptr = np.asarray(indptr, dtype=np.int64)
    items = np.asarray(items)
    U, K = topk.shape
    n_rel = np.diff(indptr)
    if U and n_rel.min() < 1:
        raise ValueError("every user needs at least one relevant item")
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {list(ks)}")
    hits = _hits(topk, indptr, items).astype(np.float64)
    discount = 1.0 / np.log2(np.arange(2, K + 2))
    dcg = np.cumsum(hits * discount, axis=1)
    ideal = np.cumsum(discount)
    n_hit = np.cumsum(hits, axis=1)
    out: dict[int, dict[str, np.ndarray]] = {}
    for k in ks:
        last = min(k, K) - 1  # a list shorter than k is complete: nothing ranks below position K
        idcg = ideal[np.minimum(np.minimum(k, n_rel), K) - 1]
        ndcg = dcg[:, last] / idcg
        h = n_hit[:, last]
        p, r = h / k, h / n_rel
        f = np.divide(2 * p * r, p + r, out=np.zeros(U), where=(p + r) > 0)
        out[int(k)] = {"ndcg": ndcg, "f": f, "precision": p, "recall": r}
    return out
