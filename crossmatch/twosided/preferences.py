"""Two-sided preferences between the items of two sources inside one block (issue 5 §6).

Similarity: the learned ICPA score (dot product of L2-normalised embeddings, ALGORITHMS.md §2) where
both items have an embedding, TF-IDF cosine of the titles otherwise. The two are on different scales, so a
market mixes them only when some items lack embeddings; the stage reports how many pairs used each.

Preferences from one similarity matrix ``sim`` (``nL × nR``):

* ``shared``: both sides rank by ``sim``. Both sides then rank by one common pair weight, so the market
  has exactly one stable matching — the greedy one (repeatedly take the most similar free pair) — and
  every solver returns it; only speed differs.
* ``standardized``: each side discounts *hub* candidates. ``a_i`` ranks ``b_j`` by ``sim_ij`` standardised
  over ``b_j``'s column (how unusually similar ``b_j`` is to ``a_i`` compared with the other left items),
  ``b_j`` ranks ``a_i`` by ``sim_ij`` standardised over ``a_i``'s row. The two views differ, so the market
  can have several stable matchings and the solver's fairness target matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from crossmatch.errors import InputError

PreferenceMode = Literal["shared", "standardized"]
STD_FLOOR = 0.05  # keeps tiny or flat markets from dividing by ~0 (similarities live in [-1, 1])


def tfidf_vectors(left_titles: Sequence[str], right_titles: Sequence[str]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """L2-normalised word TF-IDF rows for both sources, with one vocabulary/IDF fitted on all titles.

    Sublinear term frequency; tokens of 2+ word characters (model numbers such as ``us5497`` survive).
    """
    titles = [t if isinstance(t, str) else "" for t in list(left_titles) + list(right_titles)]
    if not any(t.strip() for t in titles):
        raise InputError("every item title is empty; TF-IDF similarity needs titles", column="title")
    vec = TfidfVectorizer(sublinear_tf=True, lowercase=True, token_pattern=r"(?u)\b\w\w+\b", dtype=np.float32)
    x = vec.fit_transform(titles).tocsr()
    n_l = len(left_titles)
    return x[:n_l], x[n_l:]


def block_similarity(
    left: np.ndarray,
    right: np.ndarray,
    tfidf: tuple[sparse.csr_matrix, sparse.csr_matrix],
    emb_left: np.ndarray | None = None,
    emb_right: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Similarity of the left rows ``left`` and right rows ``right`` (indices into the source tables).

    ``emb_*``: embeddings per item (NaN rows = no embedding), or None. Returns the matrix and how many
    pairs used the learned ICPA score.
    """
    x_l, x_r = tfidf
    sim = np.asarray((x_l[left] @ x_r[right].T).todense(), dtype=np.float64)
    n_icpa = 0
    if emb_left is not None and emb_right is not None:
        el, er = emb_left[left], emb_right[right]
        has_l, has_r = np.isfinite(el).all(axis=1), np.isfinite(er).all(axis=1)
        both = has_l[:, None] & has_r[None, :]
        if both.any():
            learned = np.nan_to_num(el) @ np.nan_to_num(er).T
            sim = np.where(both, learned, sim)
            n_icpa = int(both.sum())
    return sim, n_icpa


def two_sided_scores(sim: np.ndarray, mode: PreferenceMode = "shared") -> tuple[np.ndarray, np.ndarray]:
    """``(score_a, score_b)``: left's view (``nL × nR``) and right's view (``nR × nL``); see module docstring."""
    if mode == "shared":
        return sim, sim.T
    if mode != "standardized":
        raise InputError(f"unknown preference mode {mode!r}; use 'shared' or 'standardized'")
    col_mu, col_sd = sim.mean(axis=0, keepdims=True), np.maximum(sim.std(axis=0, keepdims=True), STD_FLOOR)
    row_mu, row_sd = sim.mean(axis=1, keepdims=True), np.maximum(sim.std(axis=1, keepdims=True), STD_FLOOR)
    score_a = (sim - col_mu) / col_sd
    score_b = ((sim - row_mu) / row_sd).T
    return score_a, score_b


def prune_candidates(sim: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column subsets that keep a market at most ``max_side`` agents per side.

    The larger side keeps only candidates that are among the top ``k`` of some agent of the smaller side
    (``k = max(1, max_side // n_small)``), trimmed by best similarity if still too many; a smaller side
    above ``max_side`` keeps its ``max_side`` agents with the highest best-similarity. Items pruned away
    stay unmatched (documented cost in recall; a stable matching of a huge block is mostly unconfident
    pairs anyway).
    """
    n_l, n_r = sim.shape
    rows, cols = np.arange(n_l), np.arange(n_r)
    if max(n_l, n_r) <= max_side:
        return rows, cols
    transpose = n_l > n_r
    s = sim.T if transpose else sim  # small side on rows
    small, large = s.shape
    keep_small = np.arange(small)
    if small > max_side:
        keep_small = np.sort(np.argsort(-s.max(axis=1), kind="stable")[:max_side])
        s = s[keep_small]
    k = max(1, max_side // max(1, s.shape[0]))
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    keep_large = np.unique(top)
    if keep_large.size > max_side:
        best = s[:, keep_large].max(axis=0)
        keep_large = np.sort(keep_large[np.argsort(-best, kind="stable")[:max_side]])
    if transpose:
        return keep_large, keep_small
    return keep_small, keep_large
