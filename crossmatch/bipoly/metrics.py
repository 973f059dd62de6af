"""Blocking metrics of a category matching, measured on labelled product pairs (ALGORITHMS.md §1.9).

Every matched category pair ``(l, r)`` implies the product pairs ``e^l × e^r``. Against the
labelled true product pairs:

* ``coverage = #true pairs inside some matched category pair / #true pairs`` — a true pair
  whose categories were not matched counts as missed (paper eq. 16, code ``max_matches``);
* ``reduction = 1 − Σ_ρ |e^l|·|e^r| / (|e^L|·|e^R|)`` (eq. 17);
* ``tradeoff`` = harmonic mean of the two (eq. 18).

Plus precision/recall of matched category pairs against a planted category truth.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from crossmatch.bipoly.matching import Matching
from crossmatch.errors import InputError


def harmonic(a: float, b: float) -> float:
    return 0.0 if a + b <= 0 else 2.0 * a * b / (a + b)


@dataclass(frozen=True)
class BlockingScores:
    coverage: float
    reduction: float
    tradeoff: float
    n_category_pairs: int
    n_comparisons: int  # product pairs compared (with multiplicity over category pairs)
    n_true_covered: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class BlockingTruth:
    """Everything needed to score category matchings fast (the ω/η grid calls it 441× per method).

    Attributes:
        size_l, size_r: distinct products per category.
        total_l, total_r: distinct products per source (``|e^L|``, ``|e^R|``).
        pair_id, cat_l, cat_r: one row per (true pair, category of its left item, category of its
            right item); a product filed in several categories gives several rows.
        n_true: number of distinct labelled true pairs.
    """

    size_l: np.ndarray
    size_r: np.ndarray
    total_l: int
    total_r: int
    pair_id: np.ndarray
    cat_l: np.ndarray
    cat_r: np.ndarray
    n_true: int

    @property
    def n_left(self) -> int:
        return int(self.size_l.size)

    @property
    def n_right(self) -> int:
        return int(self.size_r.size)

    def counts(self) -> sp.csr_matrix:
        """``m × n`` number of true pairs per category pair (the "intersect" similarity, §1.8.5)."""
        return sp.csr_matrix(
            (np.ones(self.cat_l.size), (self.cat_l, self.cat_r)), shape=(self.n_left, self.n_right)
        )

    def score(self, left: np.ndarray, right: np.ndarray) -> BlockingScores:
        """Coverage, reduction and tradeoff of the category pairs ``(left[i], right[i])``."""
        left = np.asarray(left, dtype=np.int64)
        right = np.asarray(right, dtype=np.int64)
        n = self.n_right
        comparisons = int(np.sum(self.size_l[left] * self.size_r[right]))
        reduction = 1.0 - comparisons / float(self.total_l * self.total_r)
        if self.pair_id.size and left.size:
            hit = np.isin(self.cat_l * n + self.cat_r, left * n + right)
            covered = int(np.unique(self.pair_id[hit]).size)
        else:
            covered = 0
        coverage = covered / self.n_true if self.n_true else 0.0
        return BlockingScores(coverage, reduction, harmonic(coverage, reduction), int(left.size), comparisons, covered)

    def score_matching(self, m: Matching) -> BlockingScores:
        return self.score(m.left, m.right)


def _category_index(items: pl.DataFrame, names: tuple[str, ...], category_col: str, id_col: str, side: str) -> pl.DataFrame:
    pos = pl.DataFrame({category_col: list(names), "cat": np.arange(len(names), dtype=np.int64)})
    joined = items.select(pl.col(id_col).cast(pl.String), pl.col(category_col).cast(pl.String)).unique().join(
        pos, on=category_col, how="left"
    )
    unknown = joined.filter(pl.col("cat").is_null())
    if unknown.height:
        raise InputError(
            f"{unknown.height} {side} item(s) are filed under categories that are not in the category list, "
            f"e.g. {unknown.get_column(category_col).unique().sort().head(5).to_list()}",
            column=category_col,
        )
    return joined.select(pl.col(id_col).alias("item"), "cat")


def blocking_truth(
    left_items: pl.DataFrame,
    right_items: pl.DataFrame,
    left_names: tuple[str, ...],
    right_names: tuple[str, ...],
    truth: pl.DataFrame,
    *,
    left_col: str = "item_a",
    right_col: str = "item_b",
    category_col: str = "fine_category",
    id_col: str = "item_id",
    truth_file: str = "truth",
) -> BlockingTruth:
    """Index the labelled true product pairs by category pair.

    Raises:
        InputError: missing columns, no true pair, or true-pair ids that match no item of their
            side (ids that don't match).
    """
    for col in (left_col, right_col):
        if col not in truth.columns:
            raise InputError(f"missing column '{col}'; found {truth.columns}", file=truth_file)
    pairs = truth.select(pl.col(left_col).cast(pl.String).alias("a"), pl.col(right_col).cast(pl.String).alias("b")).unique()
    if pairs.height == 0:
        raise InputError("no labelled true pair: coverage is undefined", file=truth_file)
    li = _category_index(left_items, left_names, category_col, id_col, "left")
    ri = _category_index(right_items, right_names, category_col, id_col, "right")
    for col, index, side in (("a", li, "left"), ("b", ri, "right")):
        known = index.get_column("item").unique()
        bad = pairs.filter(~pl.col(col).is_in(known.implode()))
        if bad.height:
            ids = bad.get_column(col).unique().sort().head(5).to_list()
            raise InputError(
                f"{bad.height} true pair(s) name {side} item ids that are not in the {side} catalogue, e.g. {ids}; "
                f"do the truth and the catalogues come from the same sources?",
                file=truth_file, column=left_col if side == "left" else right_col,
            )
    pairs = pairs.sort("a", "b").with_row_index("pid")
    rows = (
        pairs.join(li.rename({"item": "a", "cat": "cl"}), on="a")
        .join(ri.rename({"item": "b", "cat": "cr"}), on="b")
        .sort("pid", "cl", "cr")
    )
    size_l = np.bincount(li.get_column("cat").to_numpy(), minlength=len(left_names)).astype(np.int64)
    size_r = np.bincount(ri.get_column("cat").to_numpy(), minlength=len(right_names)).astype(np.int64)
    return BlockingTruth(
        size_l=size_l,
        size_r=size_r,
        total_l=int(li.get_column("item").n_unique()),
        total_r=int(ri.get_column("item").n_unique()),
        pair_id=rows.get_column("pid").to_numpy().astype(np.int64),
        cat_l=rows.get_column("cl").to_numpy().astype(np.int64),
        cat_r=rows.get_column("cr").to_numpy().astype(np.int64),
        n_true=int(pairs.height),
    )


def catalogue_sizes(left_items: pl.DataFrame, right_items: pl.DataFrame, left_names: tuple[str, ...],
                    right_names: tuple[str, ...], *, category_col: str = "fine_category",
                    id_col: str = "item_id") -> BlockingTruth:
    """A :class:`BlockingTruth` without labelled pairs: it measures reductions (which need only the category
    sizes); its coverage is 0 by construction and must not be reported as a figure."""
    li = _category_index(left_items, left_names, category_col, id_col, "left")
    ri = _category_index(right_items, right_names, category_col, id_col, "right")
    empty = np.empty(0, dtype=np.int64)
    return BlockingTruth(
        size_l=np.bincount(li.get_column("cat").to_numpy(), minlength=len(left_names)).astype(np.int64),
        size_r=np.bincount(ri.get_column("cat").to_numpy(), minlength=len(right_names)).astype(np.int64),
        total_l=int(li.get_column("item").n_unique()), total_r=int(ri.get_column("item").n_unique()),
        pair_id=empty, cat_l=empty, cat_r=empty, n_true=0,
    )


@dataclass(frozen=True)
class PairScores:
    precision: float
    recall: float
    f1: float
    n_predicted: int
    n_true: int
    n_correct: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def pair_scores(predicted: Iterable[tuple[int, int]], true: Iterable[tuple[int, int]]) -> PairScores:
    """Precision, recall and F1 of predicted category pairs against true ones."""
    p, t = set(predicted), set(true)
    hit = len(p & t)
    precision = hit / len(p) if p else 0.0
    recall = hit / len(t) if t else 0.0
    return PairScores(precision, recall, harmonic(precision, recall), len(p), len(t), hit)
