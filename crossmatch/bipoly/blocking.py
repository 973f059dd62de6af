"""The blocking protocol between two sources in one call: :func:`run_blocking` (ALGORITHMS.md §1; paper Sec. V-VI).

It chains the steps the other modules implement, each on its own: category blocking tuned on labels for every
method (:mod:`.tuning`), the item-to-category scenario (:mod:`.scenario`), meta-blocking of product pairs
(:mod:`.product_pairs`, :mod:`.protocol`), and the output tables of the selected method. Pure: frames in,
frames and a metrics mapping out; the caller reads and writes files, and passes the executor that the grid
and the per-partition ILPs run on (``None``: in-process).
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from crossmatch.bipoly.config import BlockingParams
from crossmatch.bipoly.grid import GREEDY_METHODS, run_greedy
from crossmatch.bipoly.instance import Instance, Rewards
from crossmatch.bipoly.items import blocking_items
from crossmatch.bipoly.metablocking import MetaBlockingResult
from crossmatch.bipoly.product_pairs import category_pairs_frame, meta_protocol_run, meta_run, selected_pairs
from crossmatch.bipoly.protocol import MetaProtocol
from crossmatch.bipoly.scenario import scenario_scores
from crossmatch.bipoly.tuning import CategoryBlocking, OnStage, tune_categories
from crossmatch.errors import ConfigError


@dataclass(frozen=True)
class BlockingRun:
    """Outcome of :func:`run_blocking`.

    ``category_pairs``: method, left, right (every method's matched categories); ``blocks``: block_id, left,
    right and ``candidates``: left_item_id, right_item_id, block_id (the selected method; ``None`` when its
    blocks hold more than ``max_listed_pairs`` item pairs: only the blocks are written); ``curve``: the
    meta-blocking recall curve (budgeted protocol only); ``metrics``: every figure, as JSON-ready values.
    """

    categories: CategoryBlocking
    category_pairs: pl.DataFrame
    blocks: pl.DataFrame
    candidates: pl.DataFrame | None
    metrics: dict[str, Any]
    curve: pl.DataFrame | None = None

    def summary(self, select: str, out: str) -> str:
        """One line for the person running it: methods and time, the ``select``-ed method's figures, candidates,
        where they went (``out``)."""
        m = self.metrics
        sel = m["methods"].get(select) or m.get("metablocking", {})
        figures = ", ".join(f"{k} {'n/a' if sel.get(k) is None else format(sel[k], '.3f')}"
                            for k in ("coverage", "reduction", "tradeoff"))
        budget = m.get("ilp_budget") or {}
        return (f"{len(m['methods'])} methods in {m['seconds']['total']:.1f} s"
                f"{'' if m['tuned'] else ' (untuned: no labelled pairs)'}; selected {select}: {figures}; "
                f"{m['n_candidate_pairs']:,} candidate pairs"
                f"{'' if self.candidates is not None else ' (over blocking.max_listed_pairs: blocks only, match takes top-k)'}"
                f" -> {out}"
                + ("; the ILP time budget was hit (results depend on this machine's speed)" if budget.get("hit") else ""))


def warm_up() -> None:
    """Load the compiled greedy kernels before timing anything (and before worker processes fork)."""
    tiny = Instance.from_dense(np.array([[1.0, 0.5], [0.0, 0.25]]))
    for mt in GREEDY_METHODS:
        run_greedy(mt, tiny, Rewards())


def run_blocking(
    params: BlockingParams, *, left_items: pl.DataFrame, right_items: pl.DataFrame, truth_pairs: pl.DataFrame | None,
    left_categories: list[str] | None = None, right_categories: list[str] | None = None,
    category_truth: pl.DataFrame | None = None, executor: Executor | None = None, on_progress: OnStage | None = None,
    embeddings: tuple[pl.DataFrame | None, pl.DataFrame | None] | None = None,
) -> BlockingRun:
    """Block ``params.left`` against ``params.right``: every method tuned and scored, then the outputs of
    ``params.select``.

    Args:
        params: every setting (:class:`~crossmatch.bipoly.config.BlockingParams`).
        left_items, right_items: ``item_id`` and ``category`` per source, ``fine_category`` and ``title`` where
            the catalogue has them (:func:`~crossmatch.bipoly.items.blocking_items` fills them in otherwise),
            and any ``partition_by`` / ``metablocking.fields`` column.
        truth_pairs: labelled true pairs oriented left → right (:func:`oriented_truth`), or ``None``: nothing is
            tuned (every method at ``params.untuned``), coverage and tradeoff are null, meta-blocking is refused.
        left_categories, right_categories: every fine category of each source (taxonomy), or ``None`` for
            those of the items (ignored for a source without ``fine_category``).
        category_truth: the planted category correspondence, scored when given (synthetic data).
        executor: where the grid and the per-partition ILPs run.
        on_progress: ``(stage, done, total)`` as grid chunks and ILP partitions finish.
        embeddings: each source's ICPA item embeddings (``item_id``, ``embedding``) for the ``icpa`` category
            similarity (:mod:`crossmatch.bipoly.embedding`); ``None`` where no logs were learned from.

    Raises:
        ConfigError: a setting that the data makes invalid (e.g. ``select`` names a method not computed).
        InputError: inputs that contradict each other (e.g. true pairs naming unknown items).
    """
    t_start = time.perf_counter()
    bl, br = blocking_items(left_items, source=params.left), blocking_items(right_items, source=params.right)
    left_items, right_items = bl.items, br.items
    left_categories = None if bl.fine_from_coarse else left_categories
    right_categories = None if br.fine_from_coarse else right_categories
    mp = params.metablocking
    if truth_pairs is None and (mp.enabled or params.select == "metablocking"):
        raise ConfigError("blocking: meta-blocking is tuned and scored on labelled pairs; without --truth-pairs "
                          "set blocking.metablocking.enabled: false and select a category method")
    partition_note = None
    if params.partition_by and params.partition_by == "category" and (bl.fine_from_coarse or br.fine_from_coarse):
        # the coarse category is the matched category itself: one category per partition would only match names
        partition_note = "null: no fine_category, the coarse category is what is matched"
        params = dataclasses.replace(params, partition_by=None)
    cb = tune_categories(params, left_items=left_items, right_items=right_items, truth_pairs=truth_pairs,
                         left_categories=left_categories, right_categories=right_categories,
                         category_truth=category_truth, executor=executor, on_progress=on_progress,
                         embeddings=embeddings)
    metrics = cb.metrics
    metrics["columns"] = {params.left: bl.describe(), params.right: br.describe()}
    if partition_note is not None:
        metrics["partition_by"] = partition_note
    if params.scenario.enabled:
        sp = params.scenario
        if bl.fine_from_coarse or bl.title_from_names:
            metrics["entity_scenario"] = {"skipped": f"'{params.left}' has no fine_category or no title"}
        else:
            metrics["entity_scenario"] = scenario_scores(left_items, p=sp.p, seed=sp.seed, top_k=sp.top_k,
                                                         host_side=params.host_side)
    meta: MetaBlockingResult | MetaProtocol | None = None
    curve = None
    if mp.enabled and cb.labels is not None:
        if mp.method not in cb.best:
            raise ConfigError(f"blocking.metablocking.method '{mp.method}' is not among blocking.methods")
        common: dict[str, Any] = {"left_items": left_items, "right_items": right_items, "docs": cb.docs,
                                  "rewards": (cb.best_without_labels or cb.best)[mp.method][1].rewards,
                                  "host_side": params.host_side}
        if mp.max_pairs is not None:
            meta, metrics["metablocking"] = meta_protocol_run(mp, labels=cb.labels, **common)
            curve = meta.curve
        else:
            meta, metrics["metablocking"] = meta_run(mp, truth_pairs=cb.labels.report, **common)
    metrics["seconds"]["total"] = round(time.perf_counter() - t_start, 3)
    blocks, cand, n_pairs = selected_pairs(params.select, matchings=cb.matchings, meta=meta, docs=cb.docs,
                                           left_items=left_items, right_items=right_items,
                                           max_listed_pairs=params.max_listed_pairs)
    metrics["n_blocks"], metrics["n_candidate_pairs"] = blocks.height, n_pairs
    metrics["candidate_pairs_listed"] = cand is not None
    return BlockingRun(cb, category_pairs_frame(cb.matchings, *cb.docs), blocks, cand, metrics, curve)
