"""Two-sided preferences over a blocking's candidate pairs (issue 5 §6).

Similarity of a candidate pair: the learned ICPA score (dot product of L2-normalised embeddings,
ALGORITHMS.md §2) where both items have an embedding, TF-IDF cosine of the titles otherwise. The two
are on different scales, so a market mixes them only when some items lack embeddings; the stage
reports how many pairs used each.

Preferences from the pair similarities:

* ``shared``: both sides rank their candidates by the similarity. Both sides then rank by one common pair
  weight, so the market has exactly one stable matching — the greedy one (repeatedly take the most
  similar free pair) — and every solver returns it; only speed differs.
* ``standardized``: each side discounts *hub* candidates. ``a_i`` ranks ``b_j`` by ``sim_ij`` standardised
  over ``b_j``'s candidate pairs (how unusually similar ``b_j`` is to ``a_i`` compared with its other
  candidates), ``b_j`` ranks ``a_i`` by ``sim_ij`` standardised over ``a_i``'s pairs. The views differ, so a
  market can have several stable matchings and the solver's fairness target matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from crossmatch.errors import InputError

PreferenceMode = Literal["shared", "standardized"]
STD_FLOOR = 0.05  # keeps agents with one or flat candidates from dividing by ~0 (similarities lie in [-1, 1])


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


def pair_similarity(
    left: np.ndarray,
    right: np.ndarray,
    tfidf: tuple[sparse.csr_matrix, sparse.csr_matrix],
    emb_left: np.ndarray | None = None,
    emb_right: np.ndarray | None = None,
    *,
    blend: bool = False,
) -> tuple[np.ndarray, int]:
    """Similarity of every candidate pair ``(left[p], right[p])`` (row indices into the source tables).

    ``emb_*``: embeddings per item (NaN rows = no embedding), or None. Where both items have one, the
    learned score replaces TF-IDF, or with ``blend`` is averaged with it (our option: one signal's
    blind spots are covered by the other). Returns the similarities and how many pairs used ICPA.
    """
    x_l, x_r = tfidf
    sim = np.asarray(x_l[left].multiply(x_r[right]).sum(axis=1), dtype=np.float64).ravel()
    n_icpa = 0
    if emb_left is not None and emb_right is not None and left.size:
        el, er = emb_left[left], emb_right[right]
        both = np.isfinite(el).all(axis=1) & np.isfinite(er).all(axis=1)
        if both.any():
            learned = np.einsum("pd,pd->p", el[both], er[both])
            sim[both] = 0.5 * (sim[both] + learned) if blend else learned
            n_icpa = int(both.sum())
    return sim, n_icpa


def two_sided_scores(left: np.ndarray, right: np.ndarray, sim: np.ndarray, mode: PreferenceMode = "shared") -> tuple[np.ndarray, np.ndarray]:
    """``(score_a, score_b)`` per pair: left's view and right's view (see the module docstring)."""
    if mode == "shared":
        return sim, sim
    if mode != "standardized":
        raise InputError(f"unknown preference mode {mode!r}; use 'shared' or 'standardized'")

    def standardise(group: np.ndarray) -> np.ndarray:
        cnt = np.bincount(group).astype(np.float64)
        mu = np.bincount(group, sim) / np.maximum(cnt, 1)
        var = np.bincount(group, (sim - mu[group]) ** 2) / np.maximum(cnt, 1)
        return (sim - mu[group]) / np.maximum(np.sqrt(var[group]), STD_FLOOR)

    return standardise(right), standardise(left)
