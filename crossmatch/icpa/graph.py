"""Per-source graphs for ICPA: CSR adjacency, item features, categories (ALGORITHMS.md §2.1–2.2).

Each source keeps its own node identities and feature columns; the only thing the sources
share is the coarse category vocabulary, indexed once over all sources. Everything here is
built from polars frames (no paths) and validated: a malformed table raises
:class:`InputError` naming the source and column instead of a torch indexing error later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import Tensor

from crossmatch.errors import InputError


@dataclass
class CSR:
    """Weighted adjacency in compressed-row form with global cumulative weights for sampling.

    ``cum[e]`` is the float64 running sum of ``weights`` over all edges up to ``e``; drawing
    ``u`` uniformly inside a row's weight range and a binary search in ``cum`` samples a
    neighbour ∝ edge weight for every row at once (:func:`crossmatch.icpa.sampler.sample_csr`).
    """

    indptr: Tensor  # [n_rows + 1] int64
    indices: Tensor  # [nnz] int64
    weights: Tensor  # [nnz] float32
    cum: Tensor  # [nnz] float64

    @property
    def n_rows(self) -> int:
        return int(self.indptr.numel() - 1)

    @property
    def nnz(self) -> int:
        return int(self.indices.numel())

    def degree(self) -> Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def to(self, device: torch.device | str) -> CSR:
        return CSR(*(t.to(device) for t in (self.indptr, self.indices, self.weights, self.cum)))


def csr_from_edges(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_rows: int) -> CSR:
    """CSR of the directed edges ``rows[e] -> cols[e]`` (stable order within a row)."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    order = np.argsort(rows, kind="stable")
    rows, cols, w = rows[order], cols[order], w[order]
    counts = np.bincount(rows, minlength=n_rows) if rows.size else np.zeros(n_rows, dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return CSR(
        indptr=torch.from_numpy(indptr),
        indices=torch.from_numpy(cols.copy()),
        weights=torch.from_numpy(w.astype(np.float32)),
        cum=torch.from_numpy(np.cumsum(w)),
    )


@dataclass(frozen=True)
class SourceSchema:
    """What the model needs to know about a source to build its embedding tables."""

    name: str
    n_items: int
    n_users: int
    cat_cardinalities: tuple[int, ...]
    n_dense: int

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "n_items": self.n_items, "n_users": self.n_users,
                "cat_cardinalities": list(self.cat_cardinalities), "n_dense": self.n_dense}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SourceSchema:
        """Inverse of :meth:`to_dict`; ``d`` is parsed JSON, so its values are untyped."""
        return cls(str(d["name"]), int(d["n_items"]), int(d["n_users"]),
                   tuple(int(c) for c in d["cat_cardinalities"]), int(d["n_dense"]))


@dataclass
class SourceGraph:
    """One source: items (anchors), users (a neighbour type) and the shared categories."""

    schema: SourceSchema
    item_category: Tensor  # [n_items] int64, index into the shared vocabulary
    cat_features: Tensor  # [n_items, n_cat] int64
    dense_features: Tensor  # [n_items, n_dense] float32
    item_item: CSR  # symmetric co-occurrence graph (both directions)
    item_user: CSR  # item -> users who interacted (weight = summed interaction weight)
    user_item: CSR  # user -> items of the training part (eq. 10 history)
    category_items: CSR  # category -> items of this source, weight = item-item degree (negatives ∝ degree)
    all_items: CSR  # one row -> every item, weight = degree (optional global negatives)
    category_items_uniform: CSR  # category -> items, weight 1 (option negative_sampling: uniform)
    all_items_uniform: CSR
    anchors: Tensor  # items with at least one item-item edge (a random-walk step exists)

    @property
    def name(self) -> str:
        return self.schema.name

    def to(self, device: torch.device | str) -> SourceGraph:
        return SourceGraph(
            self.schema, self.item_category.to(device), self.cat_features.to(device),
            self.dense_features.to(device), self.item_item.to(device), self.item_user.to(device),
            self.user_item.to(device), self.category_items.to(device), self.all_items.to(device),
            self.category_items_uniform.to(device), self.all_items_uniform.to(device), self.anchors.to(device),
        )


@dataclass
class MultiSourceGraph:
    """All sources plus the shared category vocabulary (index = position in ``categories``)."""

    sources: list[SourceGraph]
    categories: list[str]
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = [g.name for g in self.sources]

    @property
    def schemas(self) -> list[SourceSchema]:
        return [g.schema for g in self.sources]

    def index(self, name: str) -> int:
        if name not in self.names:
            raise InputError(f"unknown source {name!r}; known sources: {self.names}")
        return self.names.index(name)

    def to(self, device: torch.device | str) -> MultiSourceGraph:
        return MultiSourceGraph([g.to(device) for g in self.sources], list(self.categories))


@dataclass(frozen=True)
class SourceFrames:
    """The edge-stage tables of one source (column contracts of ``stages/edges.py``)."""

    items: pl.DataFrame  # item_idx, category, cat_*, num_* (other columns ignored)
    item_item: pl.DataFrame  # src, dst, weight (src < dst, undirected)
    user_item: pl.DataFrame  # user_idx, item_idx, weight


def _require(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; found {frame.columns}", file=what)


def _check_range(values: np.ndarray, n: int, what: str, column: str) -> None:
    bad = np.flatnonzero((values < 0) | (values >= n))
    if bad.size:
        raise InputError(f"values outside [0, {n})", file=what, column=column,
                         rows=(bad[:5] + 1).tolist(), n_bad=int(bad.size))


def build_source_graph(name: str, frames: SourceFrames, category_index: Mapping[str, int]) -> SourceGraph:
    """Validated tensors of one source.

    Raises:
        InputError: missing columns, non-contiguous ``item_idx``, edge endpoints outside the
            catalogue, non-positive weights, bad feature values, or no item–item edge at all
            (no positive pair can be drawn, §2.4).
    """
    items = frames.items.sort("item_idx")
    _require(items, ["item_idx", "category"], f"{name}/items")
    _require(frames.item_item, ["src", "dst", "weight"], f"{name}/item_item")
    _require(frames.user_item, ["user_idx", "item_idx", "weight"], f"{name}/user_item")
    n_items = items.height
    if n_items == 0:
        raise InputError("the source has no items", file=f"{name}/items")
    idx = items.get_column("item_idx").to_numpy().astype(np.int64)
    if not np.array_equal(idx, np.arange(n_items)):
        raise InputError("item_idx must be 0..n-1 without gaps", file=f"{name}/items", column="item_idx")
    cats = items.get_column("category")
    if cats.null_count():
        rows = np.flatnonzero(cats.is_null().to_numpy()) + 1
        raise InputError("missing category", file=f"{name}/items", column="category", rows=rows[:5].tolist(),
                         n_bad=int(rows.size))
    item_category = np.array([category_index[c] for c in cats.cast(pl.Utf8).to_list()], dtype=np.int64)

    cat_cols = sorted(c for c in items.columns if c.startswith("cat_"))
    num_cols = sorted(c for c in items.columns if c.startswith("num_"))
    cat_feat = np.zeros((n_items, len(cat_cols)), dtype=np.int64)
    cards: list[int] = []
    for i, c in enumerate(cat_cols):
        col = items.get_column(c)
        if not col.dtype.is_integer() or col.null_count():
            raise InputError("categorical feature must be a non-null integer column", file=f"{name}/items", column=c)
        v = col.to_numpy().astype(np.int64)
        if v.min() < 0:
            raise InputError("categorical feature values must be >= 0", file=f"{name}/items", column=c)
        cat_feat[:, i] = v
        cards.append(int(v.max()) + 1)
    dense = np.zeros((n_items, len(num_cols)), dtype=np.float32)
    for i, c in enumerate(num_cols):
        v = items.get_column(c).cast(pl.Float64).fill_null(float("nan")).to_numpy()
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise InputError("dense feature must be finite", file=f"{name}/items", column=c,
                             rows=(bad[:5] + 1).tolist(), n_bad=int(bad.size))
        dense[:, i] = v

    ii = frames.item_item
    if ii.height == 0:
        raise InputError(
            "no item-item co-occurrence edges: ICPA draws its positive pairs from them (§2.4); "
            "drop this source from icpa.sources or give it interaction sequences",
            file=f"{name}/item_item",
        )
    src = ii.get_column("src").to_numpy().astype(np.int64)
    dst = ii.get_column("dst").to_numpy().astype(np.int64)
    w = ii.get_column("weight").cast(pl.Float64).to_numpy()
    _check_range(src, n_items, f"{name}/item_item", "src")
    _check_range(dst, n_items, f"{name}/item_item", "dst")
    bad = np.flatnonzero(~(w > 0))
    if bad.size:
        raise InputError("edge weights must be > 0", file=f"{name}/item_item", column="weight",
                         rows=(bad[:5] + 1).tolist(), n_bad=int(bad.size))
    item_item = csr_from_edges(np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([w, w]),
                               n_items)

    ui = frames.user_item
    users = ui.get_column("user_idx").to_numpy().astype(np.int64)
    uitems = ui.get_column("item_idx").to_numpy().astype(np.int64)
    uw = ui.get_column("weight").cast(pl.Float64).to_numpy()
    _check_range(uitems, n_items, f"{name}/user_item", "item_idx")
    if users.size and users.min() < 0:
        raise InputError("user_idx must be >= 0", file=f"{name}/user_item", column="user_idx")
    # Ratings/weights of 0 would make a user's history weightless in eq. 10; floor them at a tiny value.
    uw = np.where(uw > 0, uw, 1e-6)
    n_users = int(users.max()) + 1 if users.size else 0
    item_user = csr_from_edges(uitems, users, uw, n_items)
    user_item = csr_from_edges(users, uitems, uw, n_users)

    degree = item_item.degree().numpy()
    category_items = csr_from_edges(item_category, np.arange(n_items), degree.astype(np.float64),
                                    len(category_index))
    schema = SourceSchema(name, n_items, n_users, tuple(cards), len(num_cols))
    return SourceGraph(
        schema=schema,
        item_category=torch.from_numpy(item_category),
        cat_features=torch.from_numpy(cat_feat),
        dense_features=torch.from_numpy(dense),
        item_item=item_item,
        item_user=item_user,
        user_item=user_item,
        category_items=category_items,
        all_items=csr_from_edges(np.zeros(n_items, dtype=np.int64), np.arange(n_items), degree.astype(np.float64), 1),
        category_items_uniform=csr_from_edges(item_category, np.arange(n_items), np.ones(n_items),
                                              len(category_index)),
        all_items_uniform=csr_from_edges(np.zeros(n_items, dtype=np.int64), np.arange(n_items), np.ones(n_items), 1),
        anchors=torch.from_numpy(np.flatnonzero(degree > 0).astype(np.int64)),
    )


def build_multisource_graph(frames: Mapping[str, SourceFrames]) -> MultiSourceGraph:
    """All sources in the given order, with one category vocabulary (sorted union).

    A single source is accepted (training then reduces to SOO: no pair of sources to align).
    A category that some source lacks is fine: batches of that category skip the source.
    """
    if not frames:
        raise InputError("no sources given to ICPA")
    vocab: set[str] = set()
    for name, f in frames.items():
        _require(f.items, ["category"], f"{name}/items")
        vocab.update(str(c) for c in f.items.get_column("category").drop_nulls().cast(pl.Utf8).unique().to_list())
    categories = sorted(vocab)
    index = {c: i for i, c in enumerate(categories)}
    return MultiSourceGraph([build_source_graph(n, f, index) for n, f in frames.items()], categories)
