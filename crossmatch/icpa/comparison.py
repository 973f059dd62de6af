"""Issue 10's comparison protocol: rankers tuned on validation, hybrids, seed summaries, verdicts.

* :func:`tune_rankers` — every non-learned ranker with its one setting chosen on validation.
* :func:`tune_hybrid` — ``<method>+<ranker>`` with the mixing weight chosen on validation.
* :func:`seed_summary` — mean ± std over seeds of validation and test NDCG@10 / F@10.
* :func:`paired_verdicts` — paired bootstrap over users (seeds pooled) of A − B on test, with the
  verdict *negative* / *positive* / *no significant difference*.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from crossmatch.icpa.evaluate import (
    Scorer,
    Split,
    evaluate_scorer,
    hybrid_scorer,
    matrix_scorer,
    paired_bootstrap,
)
from crossmatch.icpa.evaluate import transfer_verdict as _verdict
from crossmatch.icpa.rankers import RANKERS, ranker_matrix
from crossmatch.icpa.sampled import sample_negatives, sampled_ranking

Evaluate = Callable[[Scorer], dict[str, Any]]


def split_evaluator(splits: Mapping[str, Split], ks: Sequence[int], *, exclude_history: bool = True,
                    frequency_weighting: bool = False,
                    sampled: tuple[Split, sp.csr_matrix, int] | None = None) -> Evaluate:
    """A function scoring one scorer on every split (``{"valid": result, "test": result}``).

    ``sampled = (loo split, known interactions, n_neg)`` adds ``"loo"``: the XMarket papers'
    1-positive-vs-``n_neg``-negatives NDCG@10 / HR@10 (:mod:`crossmatch.icpa.sampled`).
    """

    neg = None
    if sampled is not None and sampled[0].users.size:
        neg = sample_negatives(sampled[1], sampled[0].users, sampled[2], 0)

    def run(scorer: Scorer) -> dict[str, Any]:
        out: dict[str, Any] = {name: evaluate_scorer(scorer, split, ks, exclude_history=exclude_history,
                                                     frequency_weighting=frequency_weighting)
                               for name, split in splits.items()}
        if sampled is not None:
            loo, known, n_neg = sampled
            out["loo"] = sampled_ranking(scorer, loo, known, n_neg=n_neg, negatives=neg)
        return out

    return run


def _valid_ndcg(res: Mapping[str, Any]) -> float:
    v = res["valid"]["10"]["ndcg"]
    return float(v) if v == v else -1.0


def tune_rankers(evaluate: Evaluate, *, train: sp.csr_matrix, cooccurrence: sp.csr_matrix,
                 ease_lambdas: Sequence[float], knn_ks: Sequence[int],
                 kinds: Sequence[str] = RANKERS) -> dict[str, dict[str, Any]]:
    """``{kind: {"result", "setting", "scorer", "tried"}}``: each ranker at its best validation setting.

    ``train`` is the training user–item matrix (the rankers' only input besides the
    co-occurrence graph); ties are broken by popularity for every ranker.
    """
    pop = np.asarray(ranker_matrix("popularity", H=train), dtype=np.float64)
    grids: dict[str, list[Any]] = {"popularity": [None], "cooccurrence": [None], "itemknn": list(knn_ks),
                                   "ease": list(ease_lambdas)}
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        best: dict[str, Any] | None = None
        tried = {}
        for setting in grids[kind]:
            S = ranker_matrix(kind, H=train, C=cooccurrence, ease_lambda=float(setting or 0) or 50.0,
                              knn_k=int(setting or 1))
            scorer = matrix_scorer(S, tie_break=pop)
            res = evaluate(scorer)
            tried[str(setting)] = _valid_ndcg(res)
            if best is None or _valid_ndcg(res) > _valid_ndcg(best["result"]):
                best = {"result": res, "setting": setting, "scorer": scorer}
        assert best is not None
        best["tried"] = tried
        out[kind] = best
    return out


def tune_hybrid(evaluate: Evaluate, learned: Scorer, ranker: Scorer, weights: Sequence[float]) -> dict[str, Any]:
    """``{"result", "weight", "tried"}``: the hybrid at the weight with the best validation NDCG@10."""
    best: dict[str, Any] | None = None
    tried = {}
    for w in weights:
        res = evaluate(hybrid_scorer(learned, ranker, float(w)))
        tried[f"{w:g}"] = _valid_ndcg(res)
        if best is None or _valid_ndcg(res) > _valid_ndcg(best["result"]):
            best = {"result": res, "weight": float(w)}
    assert best is not None
    best["tried"] = tried
    return best


def seed_summary(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean and std (ddof 0; 0 for one seed) over seeds of validation / test NDCG@10 and F@10."""
    out: dict[str, float] = {}
    for split in ("valid", "test"):
        for metric, key in (("ndcg", "ndcg@10"), ("f", "f@10")):
            vals = np.array([r[split]["10"][metric] for r in per_seed], dtype=np.float64)
            prefix = "" if split == "test" else "valid_"
            out[f"{prefix}{key}"] = float(vals.mean()) if vals.size else float("nan")
            out[f"{prefix}{key}_std"] = float(vals.std()) if vals.size else float("nan")
    loo = [r["loo"] for r in per_seed if "loo" in r]
    for key in ("ndcg@10", "hr@10"):
        vals = np.array([r[key] for r in loo], dtype=np.float64)
        if vals.size:
            out[f"loo_{key}"], out[f"loo_{key}_std"] = float(vals.mean()), float(vals.std())
    for extra in ("steps", "seconds"):
        found = [r[extra] for r in per_seed if extra in r]
        if found:
            out[extra] = float(np.mean(found))
    return out


def paired_verdicts(per_user: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]], *, n_boot: int = 2000,
                    seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{"A_vs_B": {delta, lo, hi, users, verdict}}`` from test per-user NDCG@10 ``[seeds, users]``.

    A method evaluated once (a deterministic ranker) is broadcast over the other's seeds.
    """
    out: dict[str, dict[str, Any]] = {}
    for a, b in pairs:
        if a not in per_user or b not in per_user:
            continue
        A, B = np.atleast_2d(per_user[a]), np.atleast_2d(per_user[b])
        if A.shape[1] != B.shape[1]:
            raise ValueError(f"{a} and {b} were evaluated on different users ({A.shape[1]} vs {B.shape[1]})")
        n = max(A.shape[0], B.shape[0])
        A = np.broadcast_to(A, (n, A.shape[1])) if A.shape[0] == 1 else A
        B = np.broadcast_to(B, (n, B.shape[1])) if B.shape[0] == 1 else B
        ci = paired_bootstrap(A, B, n_boot=n_boot, seed=seed)
        out[f"{a}_vs_{b}"] = {**ci, "verdict": _verdict(ci) if ci["users"] else "no users"}
    return out
