"""Generalisation protocol for blocking: tune on one set of labels, report on pairs never seen in tuning.

Issue 12, part 1. The paper tunes ω/η on the labels it scores (Sec. V-C, ALGORITHMS.md §1.3
"Parameter search"); on Walmart–Amazon that overstates recall on unseen pairs. Here every tuned
setting — the category rewards, the meta-blocking weighting and boost β — is chosen on the
``tune`` labels (the positives of train.csv) and coverage / recall / tradeoff are reported on the
``report`` labels (the positives of valid.csv), with the tuning figures kept beside them.

Meta-blocking at a candidate budget (paper Sec. V-F, Table V, our budgeted form): the keyword
candidate graph (:mod:`.metablocking` steps 1–4) is ranked by cardinality node pruning — a pair's
rank is its best position in either endpoint's list, heaviest first — and the ``budget`` best pairs
are kept. Keeping every pair of rank < k is exactly node pruning with k, so the budget interpolates
between node-pruning levels and lets two rankings be compared at the *same* number of candidate
pairs. With BiPoly the weights are boosted by ``1 + β`` inside the matched category pairs ρ (step 6
``boost``); ``β = 0`` is plain node pruning without categories, the pyJedAI-style baseline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from crossmatch.bipoly.instance import Instance
from crossmatch.bipoly.matching import Matching
from crossmatch.bipoly.metablocking import (
    Weighting,
    candidate_graph,
    category_instance,
    purge_and_filter,
    token_blocks,
)
from crossmatch.bipoly.metrics import harmonic
from crossmatch.errors import ConfigError, InputError

ALL = "all"


@dataclass(frozen=True)
class LabelSplit:
    """Labelled true pairs (``item_a``, ``item_b``) for tuning and for reporting.

    ``held_out`` is False when the truth has no ``split`` column: both sets are then all labels
    (the paper's protocol) and the metrics say so.
    """

    tune: pl.DataFrame
    report: pl.DataFrame
    tune_name: str
    report_name: str
    held_out: bool

    def describe(self) -> dict[str, Any]:
        return {"tuned_on": self.tune_name, "reported_on": self.report_name, "held_out": self.held_out,
                "n_tune_pairs": self.tune.height, "n_report_pairs": self.report.height}


def split_labels(truth: pl.DataFrame, tune: Sequence[str] | None, report: Sequence[str] | None,
                 file: str = "truth") -> LabelSplit:
    """Split oriented true pairs by their ``split`` column (written by the ingest adapter).

    A pair in both a tuning and a reporting split counts as tuning only (it is not unseen).

    Raises:
        InputError: a named split has no pair, or splits are named but the truth has no ``split``.
        ConfigError: only one of ``tune`` / ``report`` is given, or they share a name.
    """
    if not tune and not report:
        pairs = truth.select("item_a", "item_b")
        return LabelSplit(pairs, pairs, ALL, ALL, False)
    if not tune or not report:
        raise ConfigError("blocking: give both tune_splits and report_splits, or neither")
    if set(tune) & set(report):
        raise ConfigError(f"blocking: tune_splits and report_splits share {sorted(set(tune) & set(report))}")
    if "split" not in truth.columns:
        raise InputError("the truth has no 'split' column; re-run ingest, or set tune_splits/report_splits to null",
                         file=file)
    found = set(truth.get_column("split").unique().to_list())
    missing = [s for s in (*tune, *report) if s not in found]
    if missing:
        raise InputError(f"no labelled pair in split(s) {missing}; the truth has {sorted(found)}", file=file)
    t = truth.filter(pl.col("split").is_in(list(tune))).select("item_a", "item_b").unique(maintain_order=True)
    r = truth.filter(pl.col("split").is_in(list(report))).select("item_a", "item_b").unique(maintain_order=True)
    r = r.join(t, on=["item_a", "item_b"], how="anti")
    if r.height == 0:
        raise InputError(f"every pair of {list(report)} is also in {list(tune)}: nothing is held out", file=file)
    return LabelSplit(t, r, "+".join(tune), "+".join(report), True)


@dataclass(frozen=True)
class PairKeys:
    """True product pairs as keys ``left index · n_right + right index`` over the two catalogues."""

    keys: np.ndarray
    n_right: int
    total: int  # |L| · |R|

    @classmethod
    def build(cls, left_ids: Sequence[str], right_ids: Sequence[str], pairs: pl.DataFrame) -> PairKeys:
        lid = {x: i for i, x in enumerate(left_ids)}
        rid = {x: i for i, x in enumerate(right_ids)}
        a, b = pairs.get_column("item_a").to_list(), pairs.get_column("item_b").to_list()
        unknown = [x for x in a if x not in lid][:3] + [x for x in b if x not in rid][:3]
        if unknown:
            raise InputError(f"true pairs name items that are not in the catalogues, e.g. {unknown}")
        ka = np.array([lid[x] for x in a], dtype=np.int64)
        kb = np.array([rid[x] for x in b], dtype=np.int64)
        return cls(np.unique(ka * len(right_ids) + kb), len(right_ids), len(left_ids) * len(right_ids))

    @property
    def n_true(self) -> int:
        return int(self.keys.size)

    def hits(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Whether each candidate pair is a true pair."""
        return np.isin(left * self.n_right + right, self.keys)

    def scores(self, left: np.ndarray, right: np.ndarray) -> dict[str, float | int]:
        """Recall (coverage), reduction over all ``|L|·|R|`` pairs and their harmonic mean (eq. 16–18
        at product level)."""
        covered = int(self.hits(left, right).sum())
        cov = covered / self.n_true if self.n_true else 0.0
        red = 1.0 - left.size / self.total
        return {"coverage": cov, "reduction": red, "tradeoff": harmonic(cov, red), "n_pairs": int(left.size),
                "n_true_covered": covered, "n_true": self.n_true}


def node_rank(rows: np.ndarray, cols: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Each pair's best 0-based position in its left or right node's list (heaviest first, ties by
    the other index): node pruning with k keeps exactly the pairs of rank < k."""
    rank = np.full(weight.size, np.iinfo(np.int64).max, dtype=np.int64)
    for group, other in ((rows, cols), (cols, rows)):
        order = np.lexsort((other, -weight, group))
        g = group[order]
        first = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
        starts = np.repeat(first, np.diff(np.r_[first, g.size]))
        r = np.empty(weight.size, dtype=np.int64)
        r[order] = np.arange(g.size) - starts
        rank = np.minimum(rank, r)
    return rank


def budget_order(rows: np.ndarray, cols: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Pairs in the order a budget keeps them: node rank, then weight (heaviest first), then ids."""
    return np.lexsort((cols, rows, -weight, node_rank(rows, cols, weight)))


def recall_curve(order: np.ndarray, hit: np.ndarray, budgets: np.ndarray, n_true: int) -> np.ndarray:
    """Recall of the first ``B`` pairs of ``order`` for every ``B`` in ``budgets``."""
    if n_true == 0:
        return np.zeros(budgets.size)
    found = np.r_[0, np.cumsum(hit[order])]
    return found[np.minimum(budgets, order.size)] / n_true


@dataclass(frozen=True)
class KeywordGraph:
    """Keyword candidates (steps 1–4) and which of them lie inside the matched category pairs."""

    left: np.ndarray
    right: np.ndarray
    weight: np.ndarray  # normalised to max 1
    inside: np.ndarray
    categories: Matching
    info: dict[str, Any]

    def order(self, boost: float) -> np.ndarray:
        return budget_order(self.left, self.right, self.weight * (1.0 + boost * self.inside))


def keyword_graph(titles_left: Sequence[str], titles_right: Sequence[str], cat_left: np.ndarray, cat_right: np.ndarray,
                  n_cat_left: int, n_cat_right: int, solver: Callable[[Instance], Matching], *,
                  weighting: Weighting, max_comparisons: float, filter_ratio: float) -> KeywordGraph:
    """Token blocking, purging, filtering, weighting, then BiPoly over categories restricted to the
    keyword candidates (:mod:`.metablocking` steps 1–5)."""
    t0 = time.perf_counter()
    b_left, b_right = token_blocks(titles_left, titles_right)
    blocks = purge_and_filter(b_left, b_right, max_comparisons=max_comparisons, filter_ratio=filter_ratio)
    graph = candidate_graph(blocks, weighting).tocoo()
    cats = solver(category_instance(graph.tocsr(), cat_left, cat_right, n_cat_left, n_cat_right))
    kl, kr = graph.row.astype(np.int64), graph.col.astype(np.int64)
    matched = np.zeros(n_cat_left * n_cat_right, dtype=bool)
    matched[cats.left * n_cat_right + cats.right] = True
    inside = matched[cat_left[kl] * n_cat_right + cat_right[kr]]
    info = {"weighting": weighting, "n_tokens": blocks.n_tokens, "n_blocks": int(blocks.comparisons.size),
            "n_purged": blocks.n_purged, "n_keyword_pairs": int(kl.size), "n_inside_categories": int(inside.sum()),
            "n_category_pairs": cats.n_pairs, "seconds": round(time.perf_counter() - t0, 3)}
    return KeywordGraph(kl, kr, graph.data / graph.data.max(), inside, cats, info)


@dataclass(frozen=True)
class MetaProtocol:
    """Outcome of :func:`meta_blocking_protocol`."""

    left: np.ndarray  # the chosen setting's candidate pairs (product indices)
    right: np.ndarray
    metrics: dict[str, Any]
    curve: pl.DataFrame  # n_pairs and recall per (variant, labels)
    graphs: dict[str, KeywordGraph] = field(repr=False, default_factory=dict)


def _best(rows: list[dict[str, Any]]) -> dict[str, Any]:
    # highest tuning recall at the budget; ties keep the first row (smaller β, weighting list order)
    return max(rows, key=lambda r: (r["tune_recall"], -rows.index(r)))


def meta_blocking_protocol(
    titles_left: Sequence[str], titles_right: Sequence[str], cat_left: np.ndarray, cat_right: np.ndarray,
    n_cat_left: int, n_cat_right: int, solver: Callable[[Instance], Matching], tune: PairKeys, report: PairKeys, *,
    budget: int, boosts: Sequence[float], weightings: Sequence[Weighting], max_comparisons: float,
    filter_ratio: float = 1.0, curve_budgets: Sequence[int] = (),
) -> MetaProtocol:
    """Meta-blocking with and without BiPoly at one candidate budget, tuned on ``tune``, reported on ``report``.

    Every (weighting, β) is scored by its recall on ``tune`` among its ``budget`` best pairs; the
    best with ``β > 0`` is "with BiPoly", the best with ``β = 0`` (plain node pruning, categories
    unused) is "without". Both are reported on ``report`` at the same budget, with their gain.
    """
    if budget < 1:
        raise ConfigError(f"metablocking.max_pairs must be a positive integer, got {budget}")
    if not boosts or any(b < 0 for b in boosts):
        raise ConfigError(f"metablocking.boosts must be non-negative numbers, got {list(boosts)}")
    if not weightings:
        raise ConfigError("metablocking.weightings must name at least one weighting")
    graphs: dict[str, KeywordGraph] = {w: keyword_graph(titles_left, titles_right, cat_left, cat_right, n_cat_left, n_cat_right, solver,
                               weighting=w, max_comparisons=max_comparisons, filter_ratio=filter_ratio)
              for w in dict.fromkeys(weightings)}
    rows: list[dict[str, Any]] = []
    orders: dict[tuple[str, float], np.ndarray] = {}
    for w, g in graphs.items():
        hit_t, hit_r = tune.hits(g.left, g.right), report.hits(g.left, g.right)
        for beta in sorted({0.0, *map(float, boosts)}):
            order = orders[(w, beta)] = g.order(beta)
            b = np.array([budget])
            rows.append({"weighting": w, "boost": beta, "n_pairs": int(min(budget, order.size)),
                         "tune_recall": float(recall_curve(order, hit_t, b, tune.n_true)[0]),
                         "report_recall": float(recall_curve(order, hit_r, b, report.n_true)[0])})
    with_bp = _best([r for r in rows if r["boost"] > 0]) if any(r["boost"] > 0 for r in rows) else None
    without = _best([r for r in rows if r["boost"] == 0])
    # BiPoly is used only when it finds more tuning pairs than plain node pruning at the same budget
    chosen = with_bp if with_bp is not None and with_bp["tune_recall"] > without["tune_recall"] else without

    def summary(r: dict[str, Any]) -> dict[str, Any]:
        g = graphs[r["weighting"]]
        keep = orders[(r["weighting"], r["boost"])][:budget]
        return {"weighting": r["weighting"], "boost": r["boost"], "report": report.scores(g.left[keep], g.right[keep]),
                "tune": tune.scores(g.left[keep], g.right[keep])}

    out_without = summary(without)
    out_with = summary(with_bp) if with_bp is not None else None
    pick = summary(chosen)
    g = graphs[chosen["weighting"]]
    keep = orders[(chosen["weighting"], chosen["boost"])][:budget]
    metrics: dict[str, Any] = {
        **pick["report"], "tune": pick["tune"], "weighting": pick["weighting"], "boost": pick["boost"],
        "uses_bipoly": chosen["boost"] > 0, "max_pairs": budget,
        "keyword_only": {"report": report.scores(g.left, g.right), "tune": tune.scores(g.left, g.right)},
        "with_bipoly": out_with, "without_bipoly": out_without,
        "tuning": rows, "graphs": {w: gr.info for w, gr in graphs.items()},
    }
    if out_with is not None:
        gain = {k: out_with[k]["coverage"] - out_without[k]["coverage"] for k in ("tune", "report")}
        diff = {k: int(out_with[k]["n_true_covered"] - out_without[k]["n_true_covered"]) for k in ("tune", "report")}
        metrics["bipoly_gain"] = {"recall_report": gain["report"], "recall_tune": gain["tune"],
                                  "true_pairs_report": diff["report"], "true_pairs_tune": diff["tune"]}
    curve = _curve(graphs, orders, [("without_bipoly", without)] + ([("with_bipoly", with_bp)] if with_bp else []),
                   tune, report, curve_budgets)
    return MetaProtocol(g.left[keep], g.right[keep], metrics, curve, graphs)


def _curve(graphs: dict[str, KeywordGraph], orders: dict[tuple[str, float], np.ndarray],
           variants: list[tuple[str, dict[str, Any]]], tune: PairKeys, report: PairKeys,
           budgets: Sequence[int]) -> pl.DataFrame:
    """Candidate-set size vs recall, one column per (variant, labels), for DVC plots."""
    b = np.array(sorted(set(int(x) for x in budgets)), dtype=np.int64)
    cols: dict[str, Any] = {"n_pairs": b}
    for name, r in variants:
        g = graphs[r["weighting"]]
        order = orders[(r["weighting"], r["boost"])]
        for label, keys in (("valid", report), ("train", tune)):
            cols[f"recall_{label}_{name}"] = recall_curve(order, keys.hits(g.left, g.right), b, keys.n_true)
    return pl.DataFrame(cols)
