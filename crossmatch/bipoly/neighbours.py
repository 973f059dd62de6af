"""Category similarity from item nearest neighbours (issue 12 ★, beside the centroid kinds of
:mod:`crossmatch.bipoly.embedding`; ALGORITHMS.md §1.8 extended).

The lexical kinds (§1.8.1-3) compare two categories' bags of words, and the centroid kinds the mean
direction of their items: both ask whether the categories are *about* the same things. Blocking needs
something narrower: whether the two categories *hold the same products*. Here every item proposes its
``k`` most similar items of the other source (cosine of sublinear character 3–5-gram TF-IDF over the
titles, one vocabulary for both sources — as the entity-resolution blocking, :mod:`crossmatch.er.blocking`),
and

    ĥ_raw(c_l, c_r) = ½ · ( Σ_{l ∈ c_l} Σ_{r ∈ N_k(l) ∩ c_r} cos(l, r) / |c_l|
                          + Σ_{r ∈ c_r} Σ_{l ∈ N_k(r) ∩ c_l} cos(l, r) / |c_r| ),

the similarity mass of each category's items that lands in the other category, averaged over the two
directions (an item listed in several categories counts in each; an item whose category is not among the
categories compared still takes its neighbour slots, and that mass counts for no pair). The items enter the
nearest-neighbour search in item-id order, so a choice among neighbours tied on similarity does not depend on the
tables' row order; an item id listed twice keeps its first title. Cut to each category's top-k partners and
min–max rescaled exactly like the other kinds (:class:`crossmatch.bipoly.similarity.PairCollector`).
No label is read. Cost: two nearest-neighbour searches of the items' TF-IDF rows (:func:`crossmatch.er.knn.topk`:
exact, or pruned to rare n-grams once the exact one would grow as items², memory bounded per chunk), then ``M_l · links · M_rᵀ`` over at most ``2 k × items`` links — never an items² matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from crossmatch.bipoly.similarity import PairCollector, SimilarityResult, normalise_title
from crossmatch.er.knn import topk
from crossmatch.errors import ConfigError, InputError

__all__ = ["NEIGHBOUR_KINDS", "neighbour_similarity"]

NEIGHBOUR_KINDS: tuple[str, ...] = ("neighbours",)


def _members(items: pl.DataFrame, names: Sequence[str], *, category_col: str, id_col: str, title_col: str,
             source: str) -> tuple[sp.csr_matrix, list[str]]:
    """``[categories × distinct items]`` 0/1 membership and the distinct items' normalised titles."""
    missing = [c for c in (category_col, id_col, title_col) if c not in items.columns]
    if missing:
        raise InputError(f"the neighbours category similarity needs column(s) {missing}; found {items.columns}",
                         file=source)
    if items.height == 0:
        raise InputError("no items: the neighbours category similarity needs items with titles", file=source)
    frame = items.select(pl.col(category_col).cast(pl.String), pl.col(id_col).cast(pl.String),
                         pl.col(title_col).cast(pl.String).fill_null(""))
    nulls = frame.get_column(id_col).null_count()
    if nulls:
        raise InputError(f"{nulls} row(s) without an item id", file=source, column=id_col)
    # sorted by id: the neighbour search (and its choice among ties) sees the same order whatever the row order
    distinct = frame.unique(subset=[id_col], keep="first", maintain_order=True).sort(id_col)
    ids = distinct.get_column(id_col).to_list()
    titles = [normalise_title(t) for t in distinct.get_column(title_col).to_list()]
    item_pos = {i: k for k, i in enumerate(ids)}
    cat_pos = {c: k for k, c in enumerate(names)}
    pairs = frame.select(category_col, id_col).unique()
    rows, cols = [], []
    for c, i in pairs.iter_rows():
        if c in cat_pos:
            rows.append(cat_pos[c])
            cols.append(item_pos[i])
    member = sp.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(len(names), len(ids)))
    return member, titles


def neighbour_similarity(left_items: pl.DataFrame, right_items: pl.DataFrame, *, left_names: Sequence[str],
                         right_names: Sequence[str], k: int = 10, top_k: int | None = None, rescale: bool = True,
                         category_col: str = "fine_category", id_col: str = "item_id", title_col: str = "title",
                         left_source: str = "left", right_source: str = "right",
                         chunk: int = 1024) -> SimilarityResult:
    """ĥ between the categories of two sources from their items' ``k`` nearest title neighbours (module doc).

    Raises:
        ConfigError: ``k`` < 1.
        InputError: a missing column, an empty side, or no title sharing a character n-gram across the sources.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"blocking.neighbours_k must be an integer >= 1, got {k!r}")
    m_l, t_l = _members(left_items, left_names, category_col=category_col, id_col=id_col, title_col=title_col,
                        source=left_source)
    m_r, t_r = _members(right_items, right_names, category_col=category_col, id_col=id_col, title_col=title_col,
                        source=right_source)
    if m_l.shape[0] == 0 or m_r.shape[0] == 0:
        raise InputError(f"no category to compare ({m_l.shape[0]} left, {m_r.shape[0]} right categories)")
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float32)
    try:
        vec.fit(t_l + t_r)
    except ValueError:  # every title empty: scikit-learn's "empty vocabulary"
        raise InputError("no item title holds a character n-gram: the neighbours similarity needs titles") from None
    a, b = vec.transform(t_l).tocsr(), vec.transform(t_r).tocsr()
    n_l, n_r = len(t_l), len(t_r)
    l1, r1, s1, _ = topk(a, b, k, chunk)  # each left item's k nearest right items
    r2, l2, s2, _ = topk(b, a, k, chunk)  # and each right item's k nearest left items
    links_l = sp.csr_matrix((np.maximum(s1, 0.0), (l1, r1)), shape=(n_l, n_r))
    links_r = sp.csr_matrix((np.maximum(s2, 0.0), (l2, r2)), shape=(n_l, n_r))
    size_l = np.asarray(m_l.sum(axis=1)).ravel()
    size_r = np.asarray(m_r.sum(axis=1)).ravel()
    inv_l = sp.diags(np.divide(1.0, size_l, out=np.zeros_like(size_l), where=size_l > 0))
    inv_r = sp.diags(np.divide(1.0, size_r, out=np.zeros_like(size_r), where=size_r > 0))
    # a category's share of its items' neighbour mass in each category of the other side, both directions
    share = 0.5 * (inv_l @ m_l @ links_l @ m_r.T + m_l @ links_r @ m_r.T @ inv_r)
    coo = sp.coo_matrix(share)
    pos = coo.data > 0
    acc = PairCollector(m_l.shape[0], m_r.shape[0], top_k)
    acc.add_sparse(coo.row[pos].astype(np.int64), coo.col[pos].astype(np.int64), coo.data[pos].astype(np.float64))
    return acc.result("neighbours", rescale=rescale, left_names=tuple(left_names), right_names=tuple(right_names),
                      none_positive="no item has a nearest neighbour with a positive title similarity")
