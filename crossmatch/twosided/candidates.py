"""Candidate pairs inside a block too big to expand: every item's top-k partners on the other side.

A block pairs every left item with every right item; with no titles and one shared category (two XMarket
markets, ~5k items each) the only block is the whole catalogue pair and expanding it is quadratic. Above
``match.max_block_pairs`` item pairs, a block keeps instead the union of each left item's ``k`` most similar
right items and each right item's ``k`` most similar left items — at most ``k * (nL + nR)`` pairs.

"Similar" is the similarity the match stage ranks by (:func:`crossmatch.twosided.preferences.pair_similarity`):
the ICPA embeddings' dot product where both items have one (``blend``: its mean with the TF-IDF cosine), the
TF-IDF cosine of the titles otherwise. Items are grouped by whether they have an embedding so that every
group pair has one inner-product form; each item's top-k is merged over the groups of the other side.

The search is exact and never holds the block's cross product: dense features go to a faiss ``IndexFlatIP``
(memory linear in items, each query keeps a k-heap); sparse TF-IDF features with a large vocabulary are scored
in chunks of query rows (``CHUNK_CELLS`` scores at a time). Ties are broken by item order (the lower row wins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from crossmatch.errors import InputError

CHUNK_CELLS = 1 << 22  # scores held at once by the chunked (sparse) search: 16 MiB of float32
DENSE_VOCAB_MAX = 256  # TF-IDF columns used inside a group pair up to which the rows go to faiss densified


@dataclass(frozen=True)
class Ranking:
    """What the match stage ranks candidate pairs by, per item row of each source.

    ``tfidf_*``: L2-normalised TF-IDF rows (:func:`~crossmatch.twosided.preferences.tfidf_vectors`);
    ``emb_*``: embeddings (NaN rows: none) or None; ``blend``: the mean of both where both items have one.
    """

    tfidf_left: sparse.csr_matrix
    tfidf_right: sparse.csr_matrix
    emb_left: np.ndarray | None = None
    emb_right: np.ndarray | None = None
    blend: bool = False

    def has_embedding(self, side: str, rows: np.ndarray) -> np.ndarray:
        emb = self.emb_left if side == "left" else self.emb_right
        if emb is None or self.emb_left is None or self.emb_right is None:
            return np.zeros(rows.size, dtype=bool)
        return np.isfinite(emb[rows]).all(axis=1)


def _features(rk: Ranking, side: str, rows: np.ndarray, use_emb: bool) -> tuple[sparse.csr_matrix | None, np.ndarray | None]:
    """(TF-IDF part, dense part) whose inner products with the other side's give the match similarity."""
    tf = (rk.tfidf_left if side == "left" else rk.tfidf_right)[rows]
    if not use_emb:
        return tf, None
    emb = np.asarray((rk.emb_left if side == "left" else rk.emb_right)[rows], dtype=np.float32)  # type: ignore[index]
    # blend = 0.5 t.t' + 0.5 e.e': both parts scaled by sqrt(0.5) on each side
    return (tf * np.float32(np.sqrt(0.5)), emb * np.float32(np.sqrt(0.5))) if rk.blend else (None, emb)


def _dense(tf: sparse.csr_matrix, cols: np.ndarray) -> np.ndarray:
    return np.asarray(tf[:, cols].toarray(), dtype=np.float32)


def _top_k_faiss(q: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexFlatIP(b.shape[1])
    index.add(np.ascontiguousarray(b, dtype=np.float32))
    scores, idx = index.search(np.ascontiguousarray(q, dtype=np.float32), k)
    return scores, idx.astype(np.int64)


def _top_k_rows(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest scores and their columns; among equal scores the lower column wins."""
    kth = -np.partition(-s, k - 1, axis=1)[:, k - 1]
    above = s > kth[:, None]
    tie = s == kth[:, None]
    take = above | (tie & (np.cumsum(tie, axis=1) <= (k - above.sum(axis=1))[:, None]))
    rows, cols = np.nonzero(take)  # exactly k per row, columns ascending
    return s[rows, cols].reshape(s.shape[0], k), cols.reshape(s.shape[0], k)


def _top_k_chunked(q: tuple[sparse.csr_matrix, np.ndarray | None], b: tuple[sparse.csr_matrix, np.ndarray | None],
                   k: int) -> tuple[np.ndarray, np.ndarray]:
    bt = b[0].T.tocsc()
    step = max(1, CHUNK_CELLS // max(b[0].shape[0], 1))
    out_s, out_i = [], []
    for lo in range(0, q[0].shape[0], step):
        s = np.asarray((q[0][lo:lo + step] @ bt).toarray(), dtype=np.float32)
        if q[1] is not None and b[1] is not None:
            s += q[1][lo:lo + step] @ b[1].T
        sc, ix = _top_k_rows(s, k)
        out_s.append(sc)
        out_i.append(ix)
    return np.concatenate(out_s), np.concatenate(out_i)


def _nearest(rk: Ranking, q_side: str, q_rows: np.ndarray, b_rows: np.ndarray, use_emb: bool,
             k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows of ``b_rows`` (positions into it) for every row of ``q_rows``, with their scores."""
    b_side = "right" if q_side == "left" else "left"
    qt, qd = _features(rk, q_side, q_rows, use_emb)
    bt, bd = _features(rk, b_side, b_rows, use_emb)
    if qt is not None and bt is not None:
        cols = np.union1d(np.unique(qt.indices), np.unique(bt.indices))
        if cols.size > DENSE_VOCAB_MAX:  # a real title vocabulary: exact sparse products, chunk by chunk
            return _top_k_chunked((qt, qd), (bt, bd), k)
        qd = _dense(qt, cols) if qd is None else np.hstack([_dense(qt, cols), qd])
        bd = _dense(bt, cols) if bd is None else np.hstack([_dense(bt, cols), bd])
        if qd.shape[1] == 0:  # every title empty in both groups and no embeddings: all scores 0
            qd, bd = np.zeros((q_rows.size, 1), np.float32), np.zeros((b_rows.size, 1), np.float32)
    return _top_k_faiss(qd, bd, k)  # type: ignore[arg-type]


def _one_side(rk: Ranking, q_side: str, q_rows: np.ndarray, b_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(query row, base row) pairs: each query item's top-k over all of ``b_rows`` (merged over embedding groups)."""
    b_side = "right" if q_side == "left" else "left"
    q_emb, b_emb = rk.has_embedding(q_side, q_rows), rk.has_embedding(b_side, b_rows)
    pairs_q, pairs_b = [], []
    for q_has in (True, False):
        qg = q_rows[q_emb == q_has]
        if qg.size == 0:
            continue
        scores, found = [], []
        for b_has in (True, False):
            bg = b_rows[b_emb == b_has]
            if bg.size == 0:
                continue
            sc, ix = _nearest(rk, q_side, qg, bg, q_has and b_has, min(k, bg.size))
            scores.append(sc)
            found.append(bg[ix])
        s, f = np.hstack(scores), np.hstack(found)
        # best k over the groups: score descending, then item order
        order = np.lexsort((f, -s), axis=1)[:, :k]
        pairs_q.append(np.repeat(qg, order.shape[1]))
        pairs_b.append(np.take_along_axis(f, order, axis=1).ravel())
    return np.concatenate(pairs_q), np.concatenate(pairs_b)


def _check_rankable(rk: Ranking, rows_l: np.ndarray, rows_r: np.ndarray, block: object) -> None:
    """A block whose items all look alike (no embeddings, one title each side) has nothing to rank by."""
    if rk.has_embedding("left", rows_l).any() and rk.has_embedding("right", rows_r).any():
        return

    def alike(tf: sparse.csr_matrix) -> bool:  # rows are L2-normalised and >= 0: identical iff cosine 1 with row 0
        return tf.nnz == 0 or bool(np.all(np.asarray((tf @ tf[0].T).toarray()).ravel() > 1 - 1e-6))

    if alike(rk.tfidf_left[rows_l]) and alike(rk.tfidf_right[rows_r]):
        raise InputError(
            f"block {block}: {rows_l.size:,} x {rows_r.size:,} items that all look alike (no titles, no ICPA embeddings), "
            "nothing to pick each item's top match.block_top_k partners by; give titles or embeddings, a finer "
            "blocking (fine_category), or raise match.max_block_pairs")


def top_k_pairs(rk: Ranking, rows_l: np.ndarray, rows_r: np.ndarray, *, k: int, block: object = "?") -> tuple[np.ndarray, np.ndarray]:
    """Union of each left row's ``k`` most similar right rows and each right row's ``k`` most similar left rows.

    Args:
        rk: the similarity (see :class:`Ranking`).
        rows_l, rows_r: the block's item rows of each source (distinct).
        k: partners per item (``match.block_top_k``).
        block: the block's id, for the error message.

    Returns:
        ``(left rows, right rows)`` of the distinct pairs, sorted; at most ``k * (len(rows_l) + len(rows_r))``.

    Raises:
        InputError: the block's items cannot be told apart (no embeddings and identical titles).
    """
    rows_l, rows_r = np.asarray(rows_l, dtype=np.int64), np.asarray(rows_r, dtype=np.int64)
    if rows_l.size == 0 or rows_r.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    _check_rankable(rk, rows_l, rows_r, block)
    a_l, a_r = _one_side(rk, "left", rows_l, rows_r, k)
    b_r, b_l = _one_side(rk, "right", rows_r, rows_l, k)
    both = np.unique(np.stack([np.concatenate([a_l, b_l]), np.concatenate([a_r, b_r])], axis=1), axis=0)
    return both[:, 0], both[:, 1]


def top_k_listed(sim: np.ndarray, left: np.ndarray, right: np.ndarray, *, k: int) -> np.ndarray:
    """Positions of the listed pairs ``(left[p], right[p])`` that are among the ``k`` most similar of their left
    item's or of their right item's listed pairs (``sim[p]`` the match similarity; ties: lower partner row)."""
    keep = np.zeros(sim.size, dtype=bool)
    for own, other in ((left, right), (right, left)):
        order = np.lexsort((other, -sim, own))  # by item, then most similar first, then item order
        grouped = own[order]
        start = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
        rank = np.arange(order.size) - np.repeat(start, np.diff(np.r_[start, order.size]))
        keep[order[rank < k]] = True
    return np.flatnonzero(keep)
