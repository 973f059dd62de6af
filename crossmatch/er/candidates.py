"""The blocking protocol of the ER stages (issue 12 §1): which table proposes, which text view, which ``k``.

:mod:`crossmatch.er.blocking` gives the neighbour search (every left record proposes its ``k`` nearest right
records); this module decides how it is used. Everything is chosen on the **train** positives when there are
any — the smallest ``k`` of ``k_grid`` reaching ``target_recall``, the view (``views: auto``) and the proposing
table (``proposer: auto``), each by the same rule: reach the target first, then fewer candidate pairs — and valid
recall is reported. Without labels the configured ``k_left`` is used and the smaller table proposes.

Why the proposing table matters: swapping tableA and tableB of Walmart–Amazon (2,554 vs 22,074 records) made
the 22 k Amazon records propose, 110,370 candidates at k = 5 instead of 25,540 at k = 10, and with the same
scorer (valid F1 0.865 either way) the thresholded output grew from 1,515 to 5,957 pairs, end-to-end F1 0.644 →
0.220: most Amazon records have no Walmart match, and the nearest Walmart record of such a record often looks
like one. Which table is A is the user's accident, so the blocking must not depend on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from crossmatch.er.blocking import (
    BlockingConfig,
    TfidfCache,
    choose_k,
    recall,
    recall_curve,
    searched_candidates,
)
from crossmatch.er.tables import Benchmark, numeric_attributes, positives

__all__ = ["BlockingResult", "block", "proposing_sides", "swap_candidates"]


@dataclass(frozen=True)
class BlockingResult:
    candidates: pl.DataFrame  # l, r, similarity, rank_left, rank_right
    curve: pl.DataFrame  # k, pairs, recall_<split> (k: candidates per record of the proposing table)
    metrics: dict[str, Any]


def _pairs_at(curve: pl.DataFrame, k: int) -> int:
    return int(curve.filter(pl.col("k") == k).get_column("pairs")[0])


def _recall_at(curve: pl.DataFrame, k: int) -> float:
    return float(curve.filter(pl.col("k") == k).get_column("recall_train")[0])


def _rank(recall_train: float, pairs: int, target: float) -> tuple[bool, float, int]:
    """Reaching the target first, then (among those missing it) recall, then fewer pairs."""
    hit = recall_train >= target
    return hit, 0.0 if hit else recall_train, -pairs


def _view(bench: Benchmark, config: BlockingConfig, truths: dict[str, set[tuple[int, int]]],
          attributes: tuple[str, ...] | None, cache: TfidfCache) -> tuple[pl.DataFrame, pl.DataFrame, int, str]:
    """One view's candidate pool at the largest k, its recall curve, its k (chosen on train, else k_left) and the
    neighbour search that ran."""
    pool, search = searched_candidates(bench, config, k_left=max(max(config.k_grid), config.k_left),
                                       attributes=attributes, cache=cache)
    curve = recall_curve(pool, truths, sorted(set(config.k_grid) | {config.k_left}))
    k = choose_k(curve, target=config.target_recall) if truths.get("train") else config.k_left
    return pool, curve, k, search


def _left_proposes(bench: Benchmark, config: BlockingConfig, proposer: str, cache: TfidfCache) -> BlockingResult:
    """The left table proposes; ``k`` and the view chosen on train (module docstring)."""
    truths = {n: positives(p) for n, p in (("train", bench.train), *bench.evaluation_splits().items())}
    pool, curve, k, search = _view(bench, config, truths, None, cache)
    view, tried = "all", {}
    if config.views == "auto" and truths.get("train") and _recall_at(curve, k) < config.target_recall:
        numeric = set(numeric_attributes(bench))
        best = _rank(_recall_at(curve, k), _pairs_at(curve, k), config.target_recall)
        tried["all"] = {"k": k, "recall_train": _recall_at(curve, k), "pairs": _pairs_at(curve, k)}
        record_text = (bench.text("left"), bench.text("right"))
        for a in bench.attributes:
            if a in numeric or not (bench.left.get_column(a) != "").any() or not (bench.right.get_column(a) != "").any():
                continue
            if (bench.text("left", (a,)), bench.text("right", (a,))) == record_text:
                # the attribute is the whole record's text (e.g. one text column): the same search, not run again
                tried[a] = dict(tried["all"])
                continue
            p, c, ka, sa = _view(bench, config, truths, (a,), cache)
            tried[a] = {"k": ka, "recall_train": _recall_at(c, ka), "pairs": _pairs_at(c, ka)}
            rank = _rank(_recall_at(c, ka), _pairs_at(c, ka), config.target_recall)
            if rank > best:
                best = rank
                view, pool, curve, k, search = a, p, c, ka, sa
    chosen = pool.filter(((pl.col("rank_left") >= 1) & (pl.col("rank_left") <= k)) | (pl.col("rank_right") >= 1))
    total = bench.left.height * bench.right.height
    metrics: dict[str, Any] = {"k": k, "k_chosen_on": "train" if truths.get("train") else "config",
                               "proposer": proposer, "view": view, "search": search,
                               "candidate_pairs": chosen.height, "all_pairs": total,
                               "reduction": 1.0 - chosen.height / total if total else 0.0}
    if tried:
        metrics["views_tried"] = tried
    for name, truth in truths.items():
        metrics[f"recall_{name}"] = recall(chosen, truth)
        metrics[f"true_pairs_{name}"] = len(truth)
    return BlockingResult(chosen, curve, metrics)


def swap_candidates(cands: pl.DataFrame) -> pl.DataFrame:
    """Candidates of a :meth:`Benchmark.swapped` benchmark in the original orientation (``l`` ↔ ``r``,
    ``rank_left`` ↔ ``rank_right``), same columns, sorted by ``l, r``."""
    names = {"l": "r", "r": "l", "rank_left": "rank_right", "rank_right": "rank_left"}
    return cands.rename({c: names[c] for c in cands.columns if c in names}).select(cands.columns).sort("l", "r")


def proposing_sides(bench: Benchmark, config: BlockingConfig) -> list[str]:
    """The tables to try as the proposer, in order: the configured one; under ``auto`` the smaller table first (the
    left on a tie), then the other one only with train positives (the choice is made on them)."""
    if config.proposer != "auto":
        return [config.proposer]
    smaller = "left" if bench.left.height <= bench.right.height else "right"
    # train labels without a positive cannot choose (every recall is undefined): as without labels
    has_positives = bench.train is not None and int(bench.train.get_column("label").sum()) > 0
    return [smaller, "right" if smaller == "left" else "left"] if has_positives else [smaller]


def _fewest_pairs(bench: Benchmark, config: BlockingConfig, side: str) -> int:
    """A lower bound of the candidate pairs when ``side`` proposes: each of its records proposes
    ``min(k, other table's size)`` distinct records (:func:`crossmatch.er.knn.topk`) for a ``k`` of at least the
    smallest the grid offers."""
    n, other = (bench.left.height, bench.right.height) if side == "left" else (bench.right.height, bench.left.height)
    return n * min(min(config.k_grid), config.k_left, other)


def block(bench: Benchmark, *, config: BlockingConfig) -> BlockingResult:
    """Candidate pairs (module docstring); with labels, ``k`` is the smallest of ``k_grid`` reaching the target
    recall on train.

    ``views: auto``: when the whole record's text misses the target on train at every ``k``, each text attribute
    alone is tried as well, and the view that reaches it with the fewest pairs is kept (none does: the one with the
    best train recall at the largest ``k``). ``proposer: auto`` with labels: each table proposes in turn and the
    same rule keeps one (a tie: the left); the second is skipped when even its smallest ``k`` gives more pairs than
    the first needed to reach the target (Walmart–Amazon's 22 k-record table: ≥ 110,370 against 25,540), so the
    choice costs a second search only where it can change the result. Train labels only choose; valid (and test,
    where present) recall is reported.
    """
    runs: dict[str, BlockingResult] = {}
    skipped: dict[str, dict[str, Any]] = {}
    cache: TfidfCache = {}  # each proposer and view reuses the TF-IDF of texts already vectorised
    for side in proposing_sides(bench, config):
        if runs:
            done = next(iter(runs.values())).metrics
            floor = _fewest_pairs(bench, config, side)
            if done["recall_train"] >= config.target_recall and floor > done["candidate_pairs"]:
                skipped[side] = {"skipped": True, "pairs_at_least": floor}
                continue
        if side == "left":
            runs[side] = _left_proposes(bench, config, side, cache)
        else:
            res = _left_proposes(bench.swapped(), config, side, cache)
            runs[side] = BlockingResult(swap_candidates(res.candidates), res.curve, res.metrics)
    if len(runs) + len(skipped) == 1:
        return _without_nan(next(iter(runs.values())))
    figures: dict[str, dict[str, Any]] = {
        s: {"k": r.metrics["k"], "recall_train": r.metrics["recall_train"], "pairs": r.metrics["candidate_pairs"]}
        for s, r in runs.items()}
    # ties: the left table, whichever was searched first
    side = max(sorted(runs), key=lambda s: _rank(figures[s]["recall_train"], figures[s]["pairs"], config.target_recall))
    out = runs[side]
    tried = {s: figures.get(s) or skipped[s] for s in ("left", "right") if s in figures or s in skipped}
    return _without_nan(BlockingResult(out.candidates, out.curve, {**out.metrics, "proposers_tried": tried}))


def _without_nan(res: BlockingResult) -> BlockingResult:
    """A recall of a split with no labelled positive is undefined (NaN inside, where the choice rules read it): null in
    the metrics, which are written as JSON, where NaN is not a value."""
    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()}
        return None if isinstance(obj, float) and math.isnan(obj) else obj
    return BlockingResult(res.candidates, res.curve, clean(res.metrics))
