"""Meta-blocking mode: token blocking, block purging and filtering, then BiPoly over categories
restricted to the keyword candidates (paper Sec. V-F, Table V; ALGORITHMS.md §1.10, Ambiguity 1.10-C).

Steps, all on scipy sparse matrices:

1. **Token blocking** — every title token is a block holding the products of both sources that
   carry it (``B_L``: left products × tokens, ``B_R``: right products × tokens, binary).
2. **Block purging** — blocks with products on one side only, or with more than
   ``max_comparisons`` = ``|B_L|·|B_R|`` comparisons, are dropped (oversized blocks carry stop-word-
   like tokens and most of the cost).
3. **Block filtering** — each product keeps the ``ceil(ratio · its blocks)`` smallest of its
   blocks (ties by token index).
4. **Candidate graph** — product pairs sharing a retained block, weighted by ARCS
   (``Σ 1/comparisons`` over common blocks), CBS (number of common blocks) or JS (Jaccard of
   block sets).
5. **BiPoly over categories restricted to the candidates** — ĥ(l, r) between categories is the
   candidate weight between their products (``M_Lᵀ · G · M_R``), cosine-normalised by category
   sizes and min–max rescaled; a BiPoly solver matches the categories (ρ).
6. **Combining** the product candidates with ρ:

   * ``intersect`` — keep candidates inside a matched category pair (paper Table V: BiPoly
     prunes keyword candidates edge-centrically);
   * ``boost`` — cardinality node pruning (each product keeps its ``k`` heaviest candidate
     pairs) on weights multiplied by ``1 + β`` for pairs inside ρ. This is our extension (not in
     the paper): category-level blocking is capped well below full coverage on Walmart–Amazon
     (README ceiling; the max-weight BiPoly oracle covers only ~73 % of true pairs), so
     ``intersect`` cannot reach pyJedAI's coverage; ``boost`` keeps node pruning's coverage and
     lets ρ break near-ties in each product's budget. A large β (≥ 1) makes pairs inside ρ rank
     ahead of every pair outside it, which measurably hurts on Walmart–Amazon.

Ambiguity 1.10-C (token sampling): the paper averages over ten sampled tokens; we block on all
tokens at once, which is what a production blocker does and what pyJedAI's reference does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from crossmatch.bipoly.instance import Instance
from crossmatch.bipoly.matching import Matching
from crossmatch.errors import ConfigError, InputError

Weighting = Literal["arcs", "cbs", "js"]
Combine = Literal["intersect", "boost", "none"]


@dataclass(frozen=True)
class KeywordBlocks:
    """Retained token blocks after purging and filtering."""

    left: sp.csr_matrix  # left products × blocks (binary)
    right: sp.csr_matrix  # right products × blocks (binary)
    comparisons: np.ndarray  # |B_L|·|B_R| per retained block (before filtering)
    n_tokens: int
    n_purged: int


def token_blocks(titles_left: Sequence[str], titles_right: Sequence[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Binary product × token matrices of both sources on a shared token vocabulary (step 1)."""
    vec = CountVectorizer(binary=True, token_pattern=r"\S+", lowercase=False, dtype=np.float64)
    try:
        x = vec.fit_transform(list(titles_left) + list(titles_right)).tocsr()
    except ValueError:
        raise InputError("token blocking: the titles contain no tokens") from None
    m = len(titles_left)
    return x[:m], x[m:]


def _filter_rows(b: sp.csr_matrix, cost: np.ndarray, ratio: float) -> sp.csr_matrix:
    """Each row keeps its ``ceil(ratio · degree)`` cheapest columns (step 3)."""
    coo = b.tocoo()
    order = np.lexsort((coo.col, cost[coo.col], coo.row))
    rows = coo.row[order]
    deg = np.bincount(rows, minlength=b.shape[0])
    first = np.r_[0, np.cumsum(deg)[:-1]]
    rank = np.arange(rows.size) - first[rows]
    keep = rank < np.ceil(ratio * deg[rows])
    sel = order[keep]
    return sp.csr_matrix((np.ones(sel.size), (coo.row[sel], coo.col[sel])), shape=b.shape)


def purge_and_filter(
    b_left: sp.csr_matrix, b_right: sp.csr_matrix, *, max_comparisons: float, filter_ratio: float
) -> KeywordBlocks:
    """Block purging (step 2) then block filtering (step 3)."""
    if not 0 < filter_ratio <= 1:
        raise ConfigError(f"filter_ratio must lie in (0, 1], got {filter_ratio}")
    if max_comparisons <= 0:
        raise ConfigError(f"max_comparisons must be > 0, got {max_comparisons}")
    size_l = np.asarray(b_left.sum(axis=0)).ravel()
    size_r = np.asarray(b_right.sum(axis=0)).ravel()
    comp = size_l * size_r
    keep = (comp > 0) & (comp <= max_comparisons)
    if not keep.any():
        raise InputError("block purging removed every block: raise max_comparisons")
    cols = np.flatnonzero(keep)
    bl, br, comp_k = b_left[:, cols].tocsr(), b_right[:, cols].tocsr(), comp[cols]
    if filter_ratio < 1:
        bl, br = _filter_rows(bl, comp_k, filter_ratio), _filter_rows(br, comp_k, filter_ratio)
    return KeywordBlocks(bl, br, comp_k, int(comp.size), int((comp > 0).sum() - cols.size))


def candidate_graph(blocks: KeywordBlocks, weighting: Weighting = "arcs") -> sp.csr_matrix:
    """Weighted candidate product pairs sharing at least one retained block (step 4)."""
    bl, br = blocks.left, blocks.right
    if weighting == "arcs":
        g = (bl @ sp.diags(1.0 / blocks.comparisons) @ br.T).tocsr()
    elif weighting in ("cbs", "js"):
        g = (bl @ br.T).tocsr()
        if weighting == "js":
            g = g.tocoo()
            nl = np.asarray(bl.sum(axis=1)).ravel()
            nr = np.asarray(br.sum(axis=1)).ravel()
            g = sp.csr_matrix((g.data / (nl[g.row] + nr[g.col] - g.data), (g.row, g.col)), shape=g.shape)
    else:
        raise ConfigError(f"weighting must be arcs, cbs or js, got {weighting!r}")
    g.eliminate_zeros()
    return g


def node_pruning(rows: np.ndarray, cols: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Cardinality node pruning: mask of the pairs kept because they are among the ``k`` heaviest
    of their left node or of their right node (ties by the other index)."""
    keep = np.zeros(weight.size, dtype=bool)
    for group, other in ((rows, cols), (cols, rows)):
        order = np.lexsort((other, -weight, group))
        g = group[order]
        deg = np.bincount(g, minlength=int(g.max()) + 1 if g.size else 0)
        first = np.r_[0, np.cumsum(deg)[:-1]]
        rank = np.arange(g.size) - first[g]
        keep[order[rank < k]] = True
    return keep


def category_instance(
    graph: sp.csr_matrix, cat_left: np.ndarray, cat_right: np.ndarray, n_left: int, n_right: int,
    left_names: tuple[str, ...] | None = None, right_names: tuple[str, ...] | None = None,
) -> Instance:
    """ĥ between categories from the candidate graph (step 5): ``M_Lᵀ G M_R`` divided by
    ``sqrt(|e^l|·|e^r|)``, min–max rescaled (§1.2). Products have one category each here."""
    ml = sp.csr_matrix((np.ones(cat_left.size), (np.arange(cat_left.size), cat_left)), shape=(cat_left.size, n_left))
    mr = sp.csr_matrix((np.ones(cat_right.size), (np.arange(cat_right.size), cat_right)), shape=(cat_right.size, n_right))
    agg = (ml.T @ graph @ mr).tocoo()
    size_l = np.bincount(cat_left, minlength=n_left).astype(np.float64)
    size_r = np.bincount(cat_right, minlength=n_right).astype(np.float64)
    vals = agg.data / np.sqrt(size_l[agg.row] * size_r[agg.col])
    if vals.size == 0 or vals.max() <= 0:
        raise InputError("no keyword candidate pair links any two categories: all category similarities are zero")
    return Instance.from_pairs(n_left, n_right, agg.row, agg.col, vals / vals.max(),
                               left_names=left_names, right_names=right_names)


@dataclass(frozen=True)
class MetaBlockingResult:
    """Candidate product pairs (left, right product indices) of every step and the category matching."""

    keyword_left: np.ndarray
    keyword_right: np.ndarray
    left: np.ndarray
    right: np.ndarray
    categories: Matching
    seconds: dict[str, float] = field(default_factory=dict)
    info: dict[str, float | int | str] = field(default_factory=dict)


def meta_blocking(
    titles_left: Sequence[str],
    titles_right: Sequence[str],
    cat_left: np.ndarray,
    cat_right: np.ndarray,
    n_cat_left: int,
    n_cat_right: int,
    solver: Callable[[Instance], Matching],
    *,
    max_comparisons: float = 100_000,
    filter_ratio: float = 1.0,
    weighting: Weighting = "arcs",
    node_k: int = 10,
    combine: Combine = "boost",
    boost: float = 0.3,
    left_names: tuple[str, ...] | None = None,
    right_names: tuple[str, ...] | None = None,
) -> MetaBlockingResult:
    """Keyword blocking, then BiPoly over categories restricted to the keyword candidates.

    Args:
        titles_left, titles_right: normalised product titles (one per product index).
        cat_left, cat_right: category index of every product.
        solver: category matcher, e.g. ``lambda inst: bipoly_s(inst, rewards)``.
        max_comparisons: block purging threshold.
        filter_ratio: block filtering ratio.
        weighting: candidate weighting scheme.
        node_k: products keep this many candidates each in ``boost`` and ``none`` modes (cardinality
            node pruning).
        boost: β, the relative weight bonus of pairs inside a matched category pair.
        combine: ``intersect`` (paper Table V), ``boost`` (our extension) or ``none`` (node pruning
            without categories, the pyJedAI-style baseline).

    Returns:
        Keyword candidates (after purging and filtering) and the final candidates.
    """
    if combine not in ("intersect", "boost", "none"):
        raise ConfigError(f"combine must be intersect, boost or none, got {combine!r}")
    if not isinstance(node_k, int) or node_k < 1:
        raise ConfigError(f"node_k must be a positive integer, got {node_k!r}")
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    b_left, b_right = token_blocks(titles_left, titles_right)
    blocks = purge_and_filter(b_left, b_right, max_comparisons=max_comparisons, filter_ratio=filter_ratio)
    graph = candidate_graph(blocks, weighting)
    secs["keyword"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    inst = category_instance(graph, cat_left, cat_right, n_cat_left, n_cat_right, left_names, right_names)
    cats = solver(inst)
    secs["categories"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    coo = graph.tocoo()
    kw_l, kw_r = coo.row.astype(np.int64), coo.col.astype(np.int64)
    matched = np.zeros(n_cat_left * n_cat_right, dtype=bool)
    matched[cats.left * n_cat_right + cats.right] = True
    inside = matched[cat_left[kw_l] * n_cat_right + cat_right[kw_r]]
    if combine == "intersect":
        keep = inside
    elif combine == "boost":
        # pairs inside ρ outrank every pair outside it; within each group the weight decides
        keep = node_pruning(kw_l, kw_r, coo.data / coo.data.max() * (1.0 + boost * inside), node_k)
    else:
        keep = node_pruning(kw_l, kw_r, coo.data, node_k)
    secs["combine"] = time.perf_counter() - t2
    secs["total"] = time.perf_counter() - t0
    info: dict[str, float | int | str] = {
        "n_tokens": blocks.n_tokens, "n_blocks": int(blocks.comparisons.size), "n_purged": blocks.n_purged,
        "n_keyword_pairs": int(kw_l.size), "n_inside_categories": int(inside.sum()), "n_pairs": int(keep.sum()),
        "combine": combine, "weighting": weighting, "boost": float(boost), "node_k": node_k,
    }
    return MetaBlockingResult(kw_l, kw_r, kw_l[keep], kw_r[keep], cats, secs, info)
