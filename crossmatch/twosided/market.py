"""Stable one-to-one matching of a rectangular market built from similarity scores (issue 5 §6).

The ``match`` stage hands every block's score matrices here. Rules, all documented behaviour:

* **Unequal sides** are padded to a square market with *dummy* agents that every real agent ranks below
  every real candidate. In a stable matching of the padded market no real pair blocks (a real agent
  matched to a dummy prefers any real partner), so it restricts to a stable matching of the original
  market with complete lists; by the rural-hospitals theorem every stable matching leaves the same real
  agents single. Dummies rank the real agents by index (any order keeps this property).
* **Ties** in the scores are broken by candidate index (``Instance.from_scores(ties="break")``).
* **One agent on a side** needs no solver: the best-scoring mutual choice is the unique stable matching.
* **Solvers**: ``gs`` (A-proposing Gale–Shapley), ``gs_best``/``power_balance`` (target cost ``seq``),
  ``weavenet`` (network + Hungarian or argmax binarisation, then :func:`crossmatch.twosided.repair.repair`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crossmatch.errors import InputError
from crossmatch.twosided.gale_shapley import gale_shapley, gs_best
from crossmatch.twosided.instance import Instance, ranks_from_scores, satisfaction_from_ranks
from crossmatch.twosided.power_balance import power_balance
from crossmatch.twosided.repair import repair

SOLVERS = ("gs", "gs_best", "power_balance", "weavenet")

# A WeaveNet predictor: (S_A, S_B) batches → logits m̂ (B × N × N). Kept abstract so this module needs no torch.
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MarketResult:
    left: np.ndarray  # row indices (into the score matrix) of matched left agents
    right: np.ndarray  # their right partners
    repaired: bool  # weavenet only: the repair changed the binarised output
    solver_stable_raw: bool  # weavenet only: the binarised output was already stable (True for others)


def padded_instance(score_a: np.ndarray, score_b: np.ndarray) -> Instance:
    """Square instance from ``score_a`` (``nL × nR``, left's view) and ``score_b`` (``nR × nL``)."""
    n_l, n_r = score_a.shape
    if score_b.shape != (n_r, n_l):
        raise InputError(f"score_b must be {n_r}×{n_l} (right × left), got {score_b.shape}")
    n = max(n_l, n_r)
    ra_real = ranks_from_scores(score_a, ties="break", name="score_a")  # (nL, nR)
    rb_real = ranks_from_scores(score_b, ties="break", name="score_b")  # (nR, nL)
    ra = np.empty((n, n), dtype=np.int32)
    rb = np.empty((n, n), dtype=np.int32)
    # Real agents: real candidates keep their order, dummies follow in index order.
    ra[:n_l, :n_r] = ra_real
    ra[:n_l, n_r:] = n_r + np.arange(n - n_r)[None, :]
    rb[:n_r, :n_l] = rb_real
    rb[:n_r, n_l:] = n_l + np.arange(n - n_l)[None, :]
    # Dummies rank everyone by index.
    ra[n_l:, :] = np.arange(n)[None, :]
    rb[n_r:, :] = np.arange(n)[None, :]
    return Instance.checked(ra, rb)


def solve_market(
    score_a: np.ndarray,
    score_b: np.ndarray,
    solver: str = "gs",
    *,
    predictor: Predictor | None = None,
    binarize_method: str = "hungarian",
) -> MarketResult:
    """A stable one-to-one matching between the rows of ``score_a`` (left) and its columns (right).

    Pairs with a dummy are dropped, so ``min(nL, nR)`` pairs come back (complete lists).
    """
    if solver not in SOLVERS:
        raise InputError(f"unknown two-sided solver {solver!r}; known: {SOLVERS}")
    sa = np.asarray(score_a, dtype=np.float64)
    sb = np.asarray(score_b, dtype=np.float64)
    n_l, n_r = sa.shape if sa.ndim == 2 else (0, 0)
    if n_l == 0 or n_r == 0:
        return MarketResult(np.zeros(0, np.int64), np.zeros(0, np.int64), False, True)
    inst = padded_instance(sa, sb)
    repaired, raw_stable = False, True
    if min(n_l, n_r) == 1 and solver != "weavenet":
        match = gale_shapley(inst, "a")  # one real agent on a side: any solver gives the same answer
    elif solver == "gs":
        match = gale_shapley(inst, "a")
    elif solver == "gs_best":
        match = gs_best(inst, "seq")
    elif solver == "power_balance":
        match = power_balance(inst, "seq")
    else:
        if predictor is None:
            raise InputError("solver 'weavenet' needs a trained model (predictor)")
        from crossmatch.twosided.weavenet.binarize import binarize

        s_a = satisfaction_from_ranks(inst.rank_a + 1)[None]
        s_b = satisfaction_from_ranks(inst.rank_b + 1)[None]
        logits = predictor(s_a, s_b)[0]
        raw = binarize(logits[None], binarize_method)[0]  # type: ignore[arg-type]
        fixed = repair(inst, raw, scores=logits)
        match, repaired, raw_stable = fixed.match, fixed.changed, not fixed.changed
    left = np.flatnonzero((np.arange(inst.n) < n_l) & (match >= 0) & (match < n_r))
    return MarketResult(left.astype(np.int64), match[left].astype(np.int64), repaired, raw_stable)
