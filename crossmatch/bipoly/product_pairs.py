"""From matched categories to product candidate pairs (paper Sec. V-F, Table V; ALGORITHMS.md §1.11).

* :func:`meta_run` — meta-blocking on product titles with BiPoly over categories (:mod:`.metablocking`),
  scored against all pairs and against the keyword candidates;
* :func:`meta_protocol_run` — the budgeted form, with and without BiPoly, tuned on the tuning labels and
  reported on the held-out ones (:mod:`.protocol`);
* :func:`category_pairs_frame` and :func:`selected_pairs` — the blocking's output tables: every method's
  category pairs, and the blocks and product candidate pairs of the selected method.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, cast

import numpy as np
import polars as pl

from crossmatch.bipoly.config import MetaParams
from crossmatch.bipoly.grid import run_greedy
from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.matching import Matching
from crossmatch.bipoly.metablocking import Combine, MetaBlockingResult, Weighting, meta_blocking
from crossmatch.bipoly.metrics import harmonic
from crossmatch.bipoly.protocol import LabelSplit, MetaProtocol, PairKeys, meta_blocking_protocol
from crossmatch.bipoly.similarity import Documents, normalise_title
from crossmatch.bipoly.tuning import rewards_dict
from crossmatch.errors import ConfigError, InputError

# pyJedAI's published figures on Walmart–Amazon (paper Table V), reported beside ours
REFERENCE_PYJEDAI: dict[str, float | int] = {"coverage": 0.997, "reduction": 0.997, "tradeoff": 0.997, "n_pairs": 156_000,
                                             "seconds": 21.0}


def _texts(items: pl.DataFrame, fields: list[str]) -> list[str]:
    missing = [f for f in fields if f not in items.columns]
    if missing:
        raise InputError(f"blocking.metablocking.fields: no column(s) {missing} in the items; found {items.columns}")
    return [normalise_title(" ".join(x or "" for x in row)) for row in items.select(pl.col(fields).cast(pl.String)).iter_rows()]


def _titles_and_categories(left_items: pl.DataFrame, right_items: pl.DataFrame, dl: Documents, dr: Documents,
                           fields: list[str] | None = None) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    tl, tr = _texts(left_items, fields or ["title"]), _texts(right_items, fields or ["title"])
    cl = np.searchsorted(np.array(dl.names), left_items.get_column("fine_category").to_numpy())
    cr = np.searchsorted(np.array(dr.names), right_items.get_column("fine_category").to_numpy())
    return tl, tr, cl, cr


def _category_solver(inst: Instance, method: str, rewards: Rewards, host_side: Side) -> Matching:
    m = run_greedy(method, inst, rewards, host_side)
    if m is None:  # meta-blocking needs a matching
        raise ConfigError(f"blocking.metablocking.method '{method}' is undefined at rewards {rewards}")
    return m


def meta_protocol_run(mp: MetaParams, *, left_items: pl.DataFrame, right_items: pl.DataFrame, docs: tuple[Documents, Documents],
                      labels: LabelSplit, rewards: Rewards, host_side: Side) -> tuple[MetaProtocol, dict[str, Any]]:
    """Budgeted meta-blocking (``mp.max_pairs`` pairs) with and without BiPoly, the category matcher
    ``mp.method`` at ``rewards``; tuned on ``labels.tune``, reported on ``labels.report``."""
    if mp.max_pairs is None:
        raise ConfigError("blocking.metablocking.max_pairs: the budgeted protocol needs a candidate budget")
    budget, dl, dr = mp.max_pairs, *docs
    t0 = time.perf_counter()
    tl, tr, cl, cr = _titles_and_categories(left_items, right_items, dl, dr, mp.fields)
    ids_l, ids_r = left_items.get_column("item_id").to_list(), right_items.get_column("item_id").to_list()
    solver = partial(_category_solver, method=mp.method, rewards=rewards, host_side=host_side)
    budgets = mp.curve_budgets or [int(x) for x in np.geomspace(5_000, 20 * budget, 40)]
    res = meta_blocking_protocol(
        tl, tr, cl, cr, len(dl.names), len(dr.names), solver,
        PairKeys.build(ids_l, ids_r, labels.tune), PairKeys.build(ids_l, ids_r, labels.report),
        budget=budget, boosts=mp.boosts, weightings=cast(list[Weighting], mp.weightings or [mp.weighting]),
        max_comparisons=mp.max_comparisons, filter_ratio=mp.filter_ratio, curve_budgets=[*budgets, budget])
    metrics = {**res.metrics, "seconds": round(time.perf_counter() - t0, 3), "category_method": mp.method, "fields": mp.fields,
               **rewards_dict(rewards), "protocol": labels.describe(), "reference_pyjedai": dict(REFERENCE_PYJEDAI)}
    return res, metrics


def meta_run(mp: MetaParams, *, left_items: pl.DataFrame, right_items: pl.DataFrame, docs: tuple[Documents, Documents],
             truth_pairs: pl.DataFrame, rewards: Rewards, host_side: Side) -> tuple[MetaBlockingResult, dict[str, Any]]:
    """Meta-blocking on product titles, scored on ``truth_pairs`` relative to all pairs and to the keyword candidates."""
    dl, dr = docs
    t0 = time.perf_counter()
    tl, tr, cl, cr = _titles_and_categories(left_items, right_items, dl, dr)
    solver = partial(_category_solver, method=mp.method, rewards=rewards, host_side=host_side)
    res = meta_blocking(tl, tr, cl, cr, len(dl.names), len(dr.names), solver,
                        max_comparisons=mp.max_comparisons, filter_ratio=mp.filter_ratio, weighting=cast(Weighting, mp.weighting),
                        node_k=mp.node_k, combine=cast(Combine, mp.combine), boost=mp.boost)
    secs = time.perf_counter() - t0
    lid = {x: i for i, x in enumerate(left_items.get_column("item_id").to_list())}
    rid = {x: i for i, x in enumerate(right_items.get_column("item_id").to_list())}
    ta = np.array([lid[x] for x in truth_pairs.get_column("item_a").to_list()], dtype=np.int64)
    tb = np.array([rid[x] for x in truth_pairs.get_column("item_b").to_list()], dtype=np.int64)
    n_r = right_items.height
    true_keys = np.unique(ta * n_r + tb)
    total = left_items.height * right_items.height

    def scores(lft: np.ndarray, rgt: np.ndarray) -> dict[str, float | int]:
        covered = int(np.isin(true_keys, lft * n_r + rgt).sum())
        cov, red = covered / true_keys.size, 1.0 - lft.size / total
        return {"coverage": cov, "reduction": red, "tradeoff": harmonic(cov, red), "n_pairs": int(lft.size),
                "n_true_covered": covered}

    final, keyword = scores(res.left, res.right), scores(res.keyword_left, res.keyword_right)
    rel_cov = final["n_true_covered"] / keyword["n_true_covered"] if keyword["n_true_covered"] else 0.0
    rel_red = 1.0 - final["n_pairs"] / keyword["n_pairs"] if keyword["n_pairs"] else 0.0
    metrics = {
        **final, "seconds": round(secs, 3),
        "relative_to_keyword": {"coverage": rel_cov, "reduction": rel_red, "tradeoff": harmonic(rel_cov, rel_red)},
        "keyword_only": keyword, "category_method": mp.method, **rewards_dict(rewards),
        "steps_seconds": {k: round(v, 3) for k, v in res.seconds.items()}, **res.info,
        "reference_pyjedai": dict(REFERENCE_PYJEDAI),
    }
    return res, metrics


def category_pairs_frame(matchings: dict[str, Matching], dl: Documents, dr: Documents) -> pl.DataFrame:
    """Every method's matched category pairs (method, left, right)."""
    schema = {"method": pl.String, "left": pl.String, "right": pl.String}
    frames = [pl.DataFrame({"method": [name] * m.n_pairs, "left": [dl.names[i] for i in m.left],
                            "right": [dr.names[i] for i in m.right]}, schema=schema) for name, m in matchings.items()]
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def selected_pairs(select: str, *, matchings: dict[str, Matching], meta: MetaBlockingResult | MetaProtocol | None,
                   docs: tuple[Documents, Documents], left_items: pl.DataFrame, right_items: pl.DataFrame,
                   max_listed_pairs: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame | None, int]:
    """``blocks`` (block_id, left, right), ``candidate_pairs`` (left_item_id, right_item_id, block_id) and the
    number of item pairs of the method ``select``: a category matching's blocks and every item pair
    inside them, or the meta-blocking's product pairs (``"metablocking"``) grouped by their category pair.

    A category matching whose blocks hold more than ``max_listed_pairs`` item pairs gets ``None`` instead of
    the list, and the count is the sum of the blocks' sizes (from the category sizes, so nothing quadratic is
    built; a pair in two blocks counts twice): the match stage then reads the blocks and keeps each item's
    top-k partners inside the big ones."""
    dl, dr = docs
    li = left_items.select(pl.col("item_id").alias("left_item_id"), pl.col("fine_category").alias("left"))
    ri = right_items.select(pl.col("item_id").alias("right_item_id"), pl.col("fine_category").alias("right"))
    if select == "metablocking":
        if meta is None:
            raise ConfigError("blocking.select is 'metablocking' but blocking.metablocking.enabled is false")
        cand = pl.DataFrame({"li": meta.left, "ri": meta.right}).with_columns(
            left_item_id=pl.Series(left_items.get_column("item_id").to_numpy()[meta.left]),
            right_item_id=pl.Series(right_items.get_column("item_id").to_numpy()[meta.right]),
            left=pl.Series(left_items.get_column("fine_category").to_numpy()[meta.left]),
            right=pl.Series(right_items.get_column("fine_category").to_numpy()[meta.right]),
        )
        blocks = cand.select("left", "right").unique().sort("left", "right").with_row_index("block_id")
        cand = cand.join(blocks, on=["left", "right"]).select("left_item_id", "right_item_id", pl.col("block_id").cast(pl.Int64))
        cand = cand.sort("left_item_id", "right_item_id")
        return blocks.select(pl.col("block_id").cast(pl.Int64), "left", "right"), cand, cand.height
    if select not in matchings:
        raise ConfigError(f"blocking.select '{select}' is not a computed method; computed: {sorted(matchings)}")
    m = matchings[select]
    blocks = pl.DataFrame({"left": [dl.names[i] for i in m.left], "right": [dr.names[i] for i in m.right]},
                          schema={"left": pl.String, "right": pl.String}).with_row_index("block_id")
    blocks = blocks.with_columns(pl.col("block_id").cast(pl.Int64))
    if max_listed_pairs is not None:
        # an upper bound on the distinct pairs (a pair in two blocks counts twice), from category sizes only
        n_l = li.group_by("left").len("n_l")
        n_r = ri.group_by("right").len("n_r")
        sized = blocks.join(n_l, on="left", how="left").join(n_r, on="right", how="left").fill_null(0)
        bound = int((sized.get_column("n_l").cast(pl.Int64) * sized.get_column("n_r").cast(pl.Int64)).sum())
        if bound > max_listed_pairs:
            return blocks, None, bound
    cand = blocks.join(li, on="left").join(ri, on="right").select("left_item_id", "right_item_id", "block_id")
    cand = cand.unique(["left_item_id", "right_item_id"], keep="first").sort("left_item_id", "right_item_id")
    return blocks, cand, cand.height
