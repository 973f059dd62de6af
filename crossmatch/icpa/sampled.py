"""The sampled-negatives protocol of the XMarket papers (issue 10, item 7): 1 positive vs 99 negatives.

Cross-market recommendation papers (XMRec / FOREC, Bonab et al. CIKM 2021; market-aware models,
Bhargav et al. ECIR 2023) evaluate leave-one-out: each user's held-out item is ranked among
99 items the user never interacted with, and NDCG@10 / HR@10 are averaged over users. Here
the positive is each user's earliest test event (for 5-core XMarket users with fewer than 10
events the time split already holds exactly one), the negatives are drawn uniformly from the
items absent from the user's whole log (train, validation and test), seeded per user.
Scores come from the same scorers as the full-catalogue protocol (:mod:`crossmatch.icpa.evaluate`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from crossmatch.errors import ConfigError
from crossmatch.icpa.evaluate import Scorer, Split, normalised_rows


def sample_negatives(known: sp.csr_matrix, users: np.ndarray, n_neg: int, seed: int) -> np.ndarray:
    """``[len(users), n_neg]`` items each user never interacted with (uniform, without replacement)."""
    n = known.shape[1]
    out = np.empty((users.size, n_neg), dtype=np.int64)
    for r, u in enumerate(users):
        seen = known.indices[known.indptr[u]:known.indptr[u + 1]]
        pool = np.setdiff1d(np.arange(n), seen, assume_unique=False)
        rng = np.random.default_rng([seed, int(u)])
        if pool.size < n_neg:
            raise ConfigError(f"icpa.eval.sampled_negatives: user {u} has only {pool.size} unseen items; need "
                              f"{n_neg} negatives (lower it, or 0 to turn the sampled protocol off)")
        out[r] = rng.choice(pool, size=n_neg, replace=False)
    return out


def sampled_ranking(scorer: Scorer, split: Split, known: sp.csr_matrix, *, n_neg: int = 99, k: int = 10,
                    seed: int = 0, chunk: int = 1024, negatives: np.ndarray | None = None) -> dict[str, object]:
    """NDCG@k and HR@k of each user's first relevant item among ``n_neg`` sampled negatives.

    Ties count against the positive (a constant scorer scores 0, not a lucky rank).
    ``negatives`` (from :func:`sample_negatives`) lets many scorers share one draw.
    Returns ``{"users": n, "ndcg@k": mean, "hr@k": mean}``.
    """
    users = split.users
    if users.size == 0:
        return {"users": 0, f"ndcg@{k}": float("nan"), f"hr@{k}": float("nan")}
    pos = split.items[split.indptr[:-1]]
    neg = sample_negatives(known, users, n_neg, seed) if negatives is None else negatives
    ranks = np.empty(users.size, dtype=np.int64)
    for s in range(0, users.size, chunk):
        scores = scorer(normalised_rows(split.history[users[s:s + chunk]]))
        rows = np.arange(scores.shape[0])[:, None]
        p = scores[rows[:, 0], pos[s:s + chunk]][:, None]
        q = scores[rows, neg[s:s + chunk]]
        ranks[s:s + chunk] = (q >= p).sum(axis=1)
    hit = ranks < k
    ndcg = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    return {"users": int(users.size), f"ndcg@{k}": float(ndcg.mean()), f"hr@{k}": float(hit.mean())}
