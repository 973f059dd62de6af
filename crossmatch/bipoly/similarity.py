"""Category similarity ĥ(l, r) between two sources' categories (ALGORITHMS.md §1.2, §1.8).

A category is the bag of words of its (distinct) products' normalised titles. Three
similarities on those documents: Jaccard and Szymkiewicz–Simpson overlap on whitespace-token
sets, and TF-IDF cosine with scikit-learn's ``TfidfVectorizer`` defaults fitted on the ``m + n``
category documents ("category IDF"). The result is globally min–max rescaled (§1.2, switchable)
and optionally cut to each category's top-k partners.

Scale: the ``m × n`` products of sparse term matrices are computed in row chunks; each chunk
keeps its rows' top-k and merges its columns' top-k into a running best, so 10⁴ × 10⁴ categories
never build a dense matrix. Min–max rescaling is affine, so selecting top-k before rescaling
gives the same pairs; the global max is tracked over every chunk and the global min is 0
whenever some pair has no shared token (always, in practice).

Deviation (marked): §1.8 normalises titles with NLTK's ``word_tokenize`` and stop-word list; we
use a regular expression and scikit-learn's English stop-word list (no NLTK dependency).
Punctuation-only tokens are dropped as in the code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, TfidfVectorizer

from crossmatch.bipoly.instance import Instance
from crossmatch.errors import ConfigError, InputError

# labels: a base kind plus the tuning positives' category pairs, cross-fitted (crossmatch.bipoly.labelled);
# enabled by blocking.labels, never listed in best_of
SimilarityKind = Literal["jaccard", "overlap", "tfidf", "minilm", "icpa", "neighbours", "labels"]
LEXICAL_KINDS: tuple[SimilarityKind, ...] = ("jaccard", "overlap", "tfidf")
# centroids of item embeddings (issue 12 ★), computed by crossmatch.bipoly.embedding from item vectors; neighbours:
# where each category's items' nearest title neighbours fall (crossmatch.bipoly.neighbours)
KINDS: tuple[SimilarityKind, ...] = (*LEXICAL_KINDS, "minilm", "icpa", "neighbours")
_TOKEN = re.compile(r"[^\W_]+(?:[-./'][^\W_]+)*")


def normalise_title(text: str) -> str:
    """Lower-case, ``_`` → space, word tokens without English stop words, re-joined by spaces."""
    tokens = _TOKEN.findall(text.replace("_", " ").lower())
    return " ".join(t for t in tokens if t not in ENGLISH_STOP_WORDS)


@dataclass(frozen=True)
class Documents:
    """Category names of one source and their documents (concatenated normalised titles)."""

    names: tuple[str, ...]
    docs: tuple[str, ...]
    sizes: np.ndarray  # number of distinct products per category


def category_documents(
    items: pl.DataFrame,
    *,
    categories: Sequence[str] | None = None,
    category_col: str = "fine_category",
    title_col: str = "title",
    id_col: str = "item_id",
    source: str = "items",
) -> Documents:
    """Documents of every category of one source (§1.8 "category entity", non-recursive).

    Args:
        items: one row per (product, category); products listed twice count once per category.
        categories: the category list (e.g. from the taxonomy); every one must hold a product.
            Default: the categories present in ``items``, sorted.
        source: name used in error messages.

    Raises:
        InputError: missing columns, no items, or a listed category without items.
    """
    missing = [c for c in (category_col, title_col, id_col) if c not in items.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; found {items.columns}", file=source)
    if items.height == 0:
        raise InputError("the category table is empty: no items to build category documents from", file=source)
    rows = (
        items.select(pl.col(category_col).cast(pl.String), pl.col(id_col), pl.col(title_col).cast(pl.String).fill_null(""))
        .unique(subset=[category_col, id_col], keep="first", maintain_order=True)
        .with_columns(pl.col(title_col).map_elements(normalise_title, return_dtype=pl.String))
        .group_by(category_col)
        .agg(pl.col(title_col).str.join(" "), pl.len().alias("size"))
        .sort(category_col)
    )
    names = rows.get_column(category_col).to_list()
    if categories is None:
        order = list(range(len(names)))
        wanted = names
    else:
        wanted = list(categories)
        if not wanted:
            raise InputError("the category table is empty", file=source, column=category_col)
        pos = {c: i for i, c in enumerate(names)}
        empty = [c for c in wanted if c not in pos]
        if empty:
            raise InputError(
                f"{len(empty)} categor{'y has' if len(empty) == 1 else 'ies have'} no items: {empty[:5]}",
                file=source, column=category_col,
            )
        order = [pos[c] for c in wanted]
    docs = rows.get_column(title_col).to_list()
    sizes = rows.get_column("size").to_numpy()
    return Documents(tuple(wanted), tuple(docs[i] for i in order), sizes[order].astype(np.int64))


def _term_matrices(docs_l: Sequence[str], docs_r: Sequence[str], kind: str) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    if kind == "tfidf":
        # §1.8.3: TfidfVectorizer defaults, category IDF over the m + n documents
        vec: CountVectorizer = TfidfVectorizer()
    else:
        # §1.8.1/2: sets of whitespace tokens of the (already normalised) documents
        vec = CountVectorizer(binary=True, token_pattern=r"\S+", lowercase=False)
    try:
        x = vec.fit_transform(list(docs_l) + list(docs_r)).tocsr()
    except ValueError as exc:  # sklearn: "empty vocabulary"
        raise InputError(f"all similarities are zero: the category documents contain no tokens ({exc})") from None
    m = len(docs_l)
    return x[:m], x[m:]


def _top_k(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, k: int, by: Literal["row", "col"]) -> np.ndarray:
    """Mask of the k largest values per row (or column); ties by the other index ascending."""
    if vals.size == 0:
        return np.zeros(0, dtype=bool)
    group, other = (rows, cols) if by == "row" else (cols, rows)
    order = np.lexsort((other, -vals, group))
    g = group[order]
    first = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    rank = np.arange(g.size) - np.repeat(first, np.diff(np.r_[first, g.size]))
    keep = np.zeros(vals.size, dtype=bool)
    keep[order[rank < k]] = True
    return keep


def _scores_sparse(inter: np.ndarray, kind: str, len_l: np.ndarray, len_r: np.ndarray) -> np.ndarray:
    if kind == "tfidf":
        return inter
    if kind == "jaccard":
        return inter / (len_l + len_r - inter)
    return inter / np.minimum(len_l, len_r)


def _scores_dense(inter: np.ndarray, kind: str, len_l: np.ndarray, len_r: np.ndarray) -> np.ndarray:
    if kind == "tfidf":
        return inter
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "jaccard":
            out = inter / (len_l[:, None] + len_r[None, :] - inter)
        else:
            out = inter / np.minimum(len_l[:, None], len_r[None, :])
    return np.nan_to_num(out, nan=0.0, posinf=0.0)


def _above_kth(block: np.ndarray, k: int, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive entries at least as large as the k-th largest of their row (axis=1) or column
    (axis=0), ties included, as (rows, cols, values)."""
    size = block.shape[axis]
    if size > k:
        kth = np.partition(block, size - k, axis=axis).take(size - k, axis=axis)
        mask = block >= (kth[:, None] if axis == 1 else kth[None, :])
        mask &= block > 0
    else:
        mask = block > 0
    rr, cc = np.nonzero(mask)
    return rr.astype(np.int64), cc.astype(np.int64), block[rr, cc]


@dataclass(frozen=True)
class SimilarityResult:
    """The instance (rescaled ĥ on the kept pairs) and what happened on the way."""

    instance: Instance
    kind: str
    raw_min: float
    raw_max: float
    n_nonzero: int  # pairs with a positive raw similarity
    n_kept: int


def similarity(
    left: Documents,
    right: Documents,
    kind: SimilarityKind = "tfidf",
    *,
    top_k: int | None = None,
    rescale: bool = True,
    chunk_entries: int = 4_000_000,
) -> SimilarityResult:
    """ĥ between the categories of two sources (ALGORITHMS.md §1.8, §1.2).

    Args:
        kind: ``jaccard``, ``overlap`` or ``tfidf``.
        top_k: keep a pair when it is among the ``top_k`` partners of its left category or of
            its right category (ties by index); ``None`` keeps every pair with a shared token.
        rescale: global min–max rescaling to [0, 1] (§1.2; Ambiguity 1.2-A: on by default).
        chunk_entries: rows per chunk are chosen so a chunk's product has at most about this
            many entries.

    Raises:
        InputError: no shared token between any two categories (all-zero similarity).
    """
    if kind not in LEXICAL_KINDS:
        raise ConfigError(f"similarity must be one of {list(LEXICAL_KINDS)}, got {kind!r} (the embedding kinds "
                          "minilm / icpa need item vectors: crossmatch.bipoly.embedding.centroid_similarity; neighbours the items: "
                          "crossmatch.bipoly.neighbours.neighbour_similarity)")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"top_k must be a positive integer or null, got {top_k!r}")
    m, n = len(left.docs), len(right.docs)
    if m == 0 or n == 0:
        raise InputError(f"the category table is empty ({m} left, {n} right categories)")
    xl, xr = _term_matrices(left.docs, right.docs, kind)
    xr_t = xr.T.tocsc()
    len_l = np.asarray(xl.sum(axis=1)).ravel()
    len_r = np.asarray(xr.sum(axis=1)).ravel()
    step = max(1, chunk_entries // max(n, 1))
    acc = PairCollector(m, n, top_k)
    for lo in range(0, m, step):
        prod = (xl[lo : lo + step] @ xr_t).tocsr()
        n_rows = prod.shape[0]
        if top_k is not None and prod.nnz > 0.25 * n_rows * n:
            # dense-ish chunk: threshold by partition, then the exact tie rule on the few candidates
            acc.add_dense(_scores_dense(prod.toarray(), kind, len_l[lo : lo + n_rows], len_r), lo)
        else:
            coo = prod.tocoo()
            rr = coo.row.astype(np.int64) + lo
            cc = coo.col.astype(np.int64)
            vals = _scores_sparse(coo.data.astype(np.float64), kind, len_l[rr], len_r[cc])
            pos = vals > 0
            acc.add_sparse(rr[pos], cc[pos], vals[pos])
    return acc.result(kind, rescale=rescale, left_names=left.names, right_names=right.names,
                      none_positive="no left category shares a token with a right category")


class PairCollector:
    """The running state of a chunked ĥ computation (shared by the lexical kinds and
    :func:`crossmatch.bipoly.embedding.centroid_similarity`): each chunk's row top-k, every column's
    running top-k, and the count, min and max of all positive raw values (what §1.2 rescales by)."""

    def __init__(self, m: int, n: int, top_k: int | None) -> None:
        self.m, self.n, self.top_k = m, n, top_k
        self.keep: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.col = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0))
        self.n_nonzero = 0
        self.raw_max = -np.inf
        self.raw_min = np.inf

    def _count(self, positive_values: np.ndarray) -> None:
        self.n_nonzero += positive_values.size
        if positive_values.size:
            self.raw_max = max(self.raw_max, float(positive_values.max()))
            self.raw_min = min(self.raw_min, float(positive_values.min()))

    def add_dense(self, block: np.ndarray, lo: int) -> None:
        """Rows ``lo : lo + len(block)`` of ĥ as a dense block (non-positive: no similarity)."""
        self._count(block[block > 0])
        if self.top_k is None:
            rr, cc = np.nonzero(block > 0)
            self.keep.append((rr.astype(np.int64) + lo, cc.astype(np.int64), block[rr, cc]))
            return
        rr, cc, vals = _above_kth(block, self.top_k, axis=1)
        row_keep = _top_k(rr + lo, cc, vals, self.top_k, "row")
        self.keep.append((rr[row_keep] + lo, cc[row_keep], vals[row_keep]))
        rr, cc, vals = _above_kth(block, self.top_k, axis=0)
        self._merge_columns(rr + lo, cc, vals)

    def add_sparse(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        """Positive entries of one chunk, with global row indices."""
        self._count(vals)
        if self.top_k is None:
            self.keep.append((rows, cols, vals))
            return
        row_keep = _top_k(rows, cols, vals, self.top_k, "row")
        self.keep.append((rows[row_keep], cols[row_keep], vals[row_keep]))
        self._merge_columns(rows, cols, vals)

    def _merge_columns(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        # running top-k of every column: previous best ∪ this chunk's candidates, cut again
        assert self.top_k is not None
        cr, ccol, cv = (np.r_[a, b] for a, b in zip(self.col, (rows, cols, vals), strict=True))
        ck = _top_k(cr, ccol, cv, self.top_k, "col")
        self.col = (cr[ck], ccol[ck], cv[ck])

    def result(self, kind: str, *, rescale: bool, left_names: tuple[str, ...], right_names: tuple[str, ...],
               none_positive: str) -> SimilarityResult:
        """The kept pairs, rescaled (§1.2) or capped at 1, as an :class:`Instance`.

        Raises:
            InputError: no positive value at all (``none_positive`` says why), or all values equal.
        """
        m, n = self.m, self.n
        if self.n_nonzero == 0:
            raise InputError(f"all {kind} similarities are zero: {none_positive}")
        parts = [*self.keep, self.col]
        rows = np.concatenate([p[0] for p in parts])
        cols = np.concatenate([p[1] for p in parts])
        vals = np.concatenate([p[2] for p in parts])
        _, first = np.unique(rows * n + cols, return_index=True)
        rows, cols, vals = rows[first], cols[first], vals[first]
        if rescale:
            # the full matrix's min over all m·n entries (implicit zeros included), §1.2
            lo_v = 0.0 if self.n_nonzero < m * n else self.raw_min
            if self.raw_max <= lo_v:
                raise InputError("all similarities are equal: min–max rescaling is undefined (§1.2)")
            vals = (vals - lo_v) / (self.raw_max - lo_v)
        else:
            vals = np.minimum(vals, 1.0)
        pos = vals > 0
        inst = Instance.from_pairs(m, n, rows[pos], cols[pos], vals[pos], left_names=left_names, right_names=right_names)
        return SimilarityResult(inst, kind, float(self.raw_min), float(self.raw_max), int(self.n_nonzero), inst.n_pairs)


def truth_similarity(counts: sp.csr_matrix, left: Documents, right: Documents) -> Instance:
    """The "intersect" diagnostic similarity (§1.8.5): number of true product pairs between two
    categories, rescaled. Used for the oracle (Ambiguity 1.10-B)."""
    coo = sp.coo_matrix(counts)
    keep = coo.data > 0
    if not keep.any():
        raise InputError("no labelled true pair falls inside any category pair: the oracle is undefined")
    vals = coo.data[keep].astype(np.float64)
    return Instance.from_pairs(counts.shape[0], counts.shape[1], coo.row[keep], coo.col[keep], vals / vals.max(),
                               left_names=left.names, right_names=right.names)
