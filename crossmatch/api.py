"""Task-level facades for users who want the methods without DVC (issue 15, part 5; in the spirit of splink).

Keyword-only, typed, one call per task; each delegates to the library modules the pipeline's stages use, so
results equal the stages' for the same settings.

* :func:`resolve` — entity resolution between two record tables: blocking, pair scoring, one decision per pair
  (:mod:`crossmatch.er`; supervised when labelled training pairs are given, unsupervised otherwise).
* :func:`solve` — a stable matching of a two-sided market from preferences: Gale–Shapley, PolyMin, DACC,
  PowerBalance (ALGORITHMS.md §3.8) or a trained WeaveNet (§3.4) with stability repair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from crossmatch.er.blocking import BlockingConfig
from crossmatch.er.candidates import block
from crossmatch.er.pipeline import MatchConfig, match
from crossmatch.er.tables import make_benchmark
from crossmatch.twosided.instance import Instance

Method = Literal["gs", "gs_best", "polymin", "dacc", "power_balance", "weavenet"]
METHODS: tuple[str, ...] = ("gs", "gs_best", "polymin", "dacc", "power_balance", "weavenet")


@dataclass(frozen=True)
class Resolution:
    """Output of :func:`resolve`: the matched pairs by id, every scored candidate, and the metrics."""

    matches: pl.DataFrame  # left_id, right_id, probability: the pairs decided to be the same entity
    candidates: pl.DataFrame  # left_id, right_id, probability, decision: every scored candidate pair
    metrics: dict[str, Any]  # blocking and matching figures (valid / test scores when those splits are given)


def resolve(*, left: pl.DataFrame, right: pl.DataFrame, train: pl.DataFrame | None = None,
            valid: pl.DataFrame | None = None, test: pl.DataFrame | None = None,
            blocking: BlockingConfig | None = None,
            matching: MatchConfig | None = None) -> Resolution:
    """Match the records of ``left`` and ``right`` (each with an ``id`` column and shared attribute columns).

    ``train`` / ``valid`` / ``test``: optional labelled pairs (``ltable_id, rtable_id, label``). With ``train``
    the pair scorer is fitted on it (and the blocking ``k`` is chosen on it); ``valid`` and ``test`` are only
    scored (their figures under ``valid`` / ``test`` in the metrics). Without
    labels the unsupervised rule decides (a two-component mixture on the blocking similarity, then
    self-training; :mod:`crossmatch.er.unsupervised`). Bad input raises :class:`crossmatch.errors.InputError`
    naming the table, column and rows.
    """
    bench = make_benchmark(left=left, right=right, train=train, valid=valid, test=test)
    blocked = block(bench, config=blocking or BlockingConfig())
    result = match(bench, blocked.candidates, config=matching or MatchConfig())
    lid, rid = bench.left.get_column("id"), bench.right.get_column("id")
    scored = result.pairs.select(
        lid.gather(result.pairs.get_column("l")).alias("left_id"),
        rid.gather(result.pairs.get_column("r")).alias("right_id"),
        pl.col("probability"), pl.col("decision"))
    matches = scored.filter(pl.col("decision")).drop("decision")
    return Resolution(matches=matches, candidates=scored,
                      metrics={"blocking": blocked.metrics, "matching": result.metrics})


def solve(*, ranks_a: np.ndarray | None = None, ranks_b: np.ndarray | None = None,
          scores_a: np.ndarray | None = None, scores_b: np.ndarray | None = None,
          method: Method = "power_balance", target: Literal["seq", "bal"] = "seq", model: Any = None) -> np.ndarray:
    """A stable matching of ``N`` A-agents and ``N`` B-agents; returns the partner (B index) of every A-agent.

    Preferences as 1-based ranks (``ranks_a[i, j]`` = rank of ``b_j`` in ``a_i``'s list, 1 = best; ``ranks_b``
    likewise, shape ``N × N``) or as scores (larger = preferred; ties are an error). ``method``: ``gs``
    (A-proposing deferred acceptance, §3.8.1), ``gs_best`` (the better of both sides for ``target``),
    ``polymin`` (§3.8.2), ``dacc`` (§3.8.4), ``power_balance`` (§3.8.5; the best of these for SEq and Bal on
    the WeaveNet paper's benchmarks) or ``weavenet`` (a trained network, ``model`` = a
    :class:`~crossmatch.twosided.weavenet.model.WeaveNet`; Hungarian binarisation, then the stability repair,
    so the output is always stable).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if (ranks_a is None) == (scores_a is None) or (ranks_b is None) == (scores_b is None):
        raise ValueError("give the preferences of each side once: ranks_a or scores_a, and ranks_b or scores_b")
    if ranks_a is not None and ranks_b is not None:
        inst = Instance.from_ranks(np.asarray(ranks_a), np.asarray(ranks_b), one_based=True)
    elif scores_a is not None and scores_b is not None:
        inst = Instance.from_scores(np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float))
    else:
        raise ValueError("give both sides in the same form: ranks_a with ranks_b, or scores_a with scores_b")
    if method == "weavenet":
        return _solve_weavenet(inst, model)
    from crossmatch.twosided.solvers import solve as solve_one

    name = {"gs_best": "GS", "polymin": "PolyMin", "dacc": "DACC", "power_balance": "PowerBalance"}.get(method)
    if name is None:  # plain A-proposing Gale–Shapley
        from crossmatch.twosided.gale_shapley import gale_shapley

        return np.asarray(gale_shapley(inst, "a"))
    return np.asarray(solve_one(inst, name, target))


def _solve_weavenet(inst: Instance, model: Any) -> np.ndarray:
    import torch

    from crossmatch.twosided.repair import repair
    from crossmatch.twosided.weavenet.binarize import binarize
    from crossmatch.twosided.weavenet.model import WeaveNet
    from crossmatch.twosided.weavenet.train import predict_logits

    if not isinstance(model, WeaveNet):
        raise ValueError("method 'weavenet' needs model=<a trained WeaveNet> (see crossmatch.twosided.weavenet."
                         "checkpoints.load_models)")
    sa, sb = inst.satisfaction()
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else torch.device("cpu")
    logits = predict_logits(model, sa[None], sb[None], device)
    return np.asarray(repair(inst, binarize(logits, "hungarian")[0], scores=logits[0]).match)
