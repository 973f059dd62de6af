"""Category similarity from learned item embeddings (issue 12 ★; ALGORITHMS.md §1.8 extended).

BiPoly's lexical similarities (§1.8.1-3) compare the bags of words of two categories. Here a category is
the centroid of its distinct items' unit embedding vectors, and ĥ(l, r) is the cosine of the two
centroids, non-positive values counted as "no similarity" (as a pair without a shared token is for the
lexical kinds). Two sources of vectors:

- ``minilm``: the packaged all-MiniLM-L6-v2 sentence encoder (:mod:`crossmatch.er.encoder`) over each
  item's title: works for any catalogue with titles, no logs needed;
- ``icpa``: the source's learned ICPA item embeddings, where interaction logs exist; items without a
  vector (no logs) do not enter their category's centroid, and a category with none has similarity 0.

The result is cut to each category's top-k partners and min–max rescaled exactly like the lexical kinds
(:func:`crossmatch.bipoly.similarity.similarity`), so the grid, the ILPs and every report read it alike.
Scale: centroids are ``[categories × d]``; the ``m × n`` cosines are computed in row chunks that keep only
each row's and each column's top-k, so no ``m × n`` matrix is held when ``top_k`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp

from crossmatch.bipoly.similarity import PairCollector, SimilarityResult
from crossmatch.errors import InputError

EMBEDDED_KINDS: tuple[str, ...] = ("minilm", "icpa")

__all__ = ["EMBEDDED_KINDS", "category_centroids", "centroid_similarity", "item_vectors"]


def item_vectors(items: pl.DataFrame, kind: str, *, embeddings: pl.DataFrame | None = None,
                 title_col: str = "title", id_col: str = "item_id", source: str = "items") -> np.ndarray:
    """``[items.height, d]`` unit vectors of the rows of ``items`` (zero rows: no vector for that item).

    ``minilm`` encodes ``title_col`` with the packaged MiniLM encoder (distinct titles once); ``icpa`` looks
    each ``id_col`` up in ``embeddings`` (``item_id``, ``embedding``: a list of floats per item).

    Raises:
        InputError: ``icpa`` without embeddings, or a vector table without its columns / of mixed widths.
    """
    if kind == "minilm":
        from crossmatch.er.encoder import embed

        if title_col not in items.columns:
            raise InputError(f"the minilm category similarity needs item titles: no column '{title_col}'", file=source)
        titles = items.get_column(title_col).cast(pl.String).fill_null("").to_list()
        distinct = sorted(set(titles))
        vecs = embed(distinct)
        pos = {t: i for i, t in enumerate(distinct)}
        return vecs[[pos[t] for t in titles]]
    if kind != "icpa":
        raise InputError(f"no embedding similarity '{kind}'; choose from {list(EMBEDDED_KINDS)}", file=source)
    if embeddings is None:
        raise InputError("the icpa category similarity needs the ICPA item embeddings (--embeddings)", file=source)
    if not {"item_id", "embedding"} <= set(embeddings.columns):
        raise InputError(f"embeddings need columns item_id and embedding; found {embeddings.columns}", file=source)
    ids = embeddings.get_column("item_id").cast(pl.String).to_list()
    raw = embeddings.get_column("embedding").to_list()
    widths = {len(v) for v in raw}
    if len(widths) > 1:
        raise InputError(f"embeddings of mixed widths {sorted(widths)}", file=source, column="embedding")
    table = np.asarray(raw, dtype=np.float32).reshape(len(raw), -1)
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    table = np.divide(table, norms, out=np.zeros_like(table), where=norms > 0)
    pos = {i: k for k, i in enumerate(ids)}
    out = np.zeros((items.height, table.shape[1]), dtype=np.float32)
    for row, item in enumerate(items.get_column(id_col).cast(pl.String).to_list()):
        k = pos.get(item)
        if k is not None:
            out[row] = table[k]
    return out


def category_centroids(items: pl.DataFrame, names: Sequence[str], vectors: np.ndarray, *,
                       category_col: str = "fine_category", id_col: str = "item_id") -> np.ndarray:
    """``[len(names), d]`` unit centroids: the mean of each category's distinct items' vectors, normalised.

    ``vectors`` holds one row per row of ``items``; a product listed twice in one category counts once.
    """
    if vectors.shape[0] != items.height:
        raise InputError(f"{vectors.shape[0]} vectors for {items.height} item rows")
    frame = items.select(pl.col(category_col).cast(pl.String), pl.col(id_col).cast(pl.String)).with_row_index("row")
    frame = frame.unique(subset=[category_col, id_col], keep="first", maintain_order=True)
    index = {c: i for i, c in enumerate(names)}
    cats = frame.get_column(category_col).to_list()
    keep = np.array([c in index for c in cats], dtype=bool)
    rows = frame.get_column("row").to_numpy()[keep]
    cat_idx = np.array([index[c] for c, k in zip(cats, keep, strict=True) if k], dtype=np.int64)
    member = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (cat_idx, np.arange(rows.size))),
                           shape=(len(names), rows.size))
    sums = np.asarray(member @ vectors[rows], dtype=np.float64)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)


def centroid_similarity(left: np.ndarray, right: np.ndarray, *, kind: str, left_names: Sequence[str],
                        right_names: Sequence[str], top_k: int | None = None, rescale: bool = True,
                        chunk_entries: int = 4_000_000) -> SimilarityResult:
    """ĥ(l, r) = cos(centroid l, centroid r), kept where positive, cut to top-k and rescaled (§1.2).

    Raises:
        InputError: shapes disagree, or no pair of centroids has a positive cosine.
    """
    if left.ndim != 2 or right.ndim != 2 or left.shape[1] != right.shape[1]:
        raise InputError(f"centroids must be [m, d] and [n, d]; got {left.shape} and {right.shape}")
    m, n = left.shape[0], right.shape[0]
    if m == 0 or n == 0:
        raise InputError(f"the category table is empty ({m} left, {n} right categories)")
    step = max(1, chunk_entries // n)
    acc = PairCollector(m, n, top_k)
    for lo in range(0, m, step):
        acc.add_dense(np.clip(left[lo : lo + step] @ right.T, 0.0, None), lo)
    return acc.result(kind, rescale=rescale, left_names=tuple(left_names), right_names=tuple(right_names),
                      none_positive="no two category centroids point the same way")
