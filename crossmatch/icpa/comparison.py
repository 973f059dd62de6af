"""Issue 10's comparison protocol: rankers tuned on validation, hybrids, seed summaries, verdicts.

* :class:`Evaluator` — validation only (for tuning) or every split (once, for the chosen setting).
* :func:`tune_rankers` — every non-learned ranker with its one setting chosen on validation.
* :func:`tune_hybrid` — ``<method>+<ranker>`` with the mixing weight chosen on validation.
* :func:`seed_summary` — mean ± std over seeds of validation and test NDCG@10 / F@10.
* :func:`paired_verdicts` — paired bootstrap over users (seeds pooled) of A − B on test, with the
  verdict *negative* / *positive* / *no significant difference*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Evaluator:
    """Scores a scorer on the protocol's splits: ``validation`` alone (what tuning may look at) or
    ``all`` splits (once, for the chosen setting): ``{"valid": result, "test": result[, "loo"]}``.

    ``sampled = (loo split, known interactions, n_neg)`` adds ``"loo"``: the XMarket papers'
    1-positive-vs-``n_neg``-negatives NDCG@10 / HR@10 (:mod:`crossmatch.icpa.sampled`).
    """

    splits: Mapping[str, Split]
    ks: Sequence[int]
    exclude_history: bool = True
    frequency_weighting: bool = False
    sampled: tuple[Split, sp.csr_matrix, int] | None = None
    negatives: np.ndarray | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.sampled is not None and self.sampled[0].users.size:
            # one draw shared by every scorer, so their 1 + n_neg figures are paired
            object.__setattr__(self, "negatives",
                               sample_negatives(self.sampled[1], self.sampled[0].users, self.sampled[2], 0))

    def _one(self, scorer: Scorer, split: str) -> dict[str, Any]:
        return evaluate_scorer(scorer, self.splits[split], self.ks, exclude_history=self.exclude_history,
                               frequency_weighting=self.frequency_weighting)

    def validation(self, scorer: Scorer) -> float:
        """Validation NDCG@10 (−1 when no user can be evaluated): the only figure tuning sees."""
        v = self._one(scorer, "valid")["10"]["ndcg"]
        return float(v) if v == v else -1.0

    def all(self, scorer: Scorer) -> dict[str, Any]:
        out = {name: self._one(scorer, name) for name in self.splits}
        if self.sampled is not None:
            loo, known, n_neg = self.sampled
            out["loo"] = sampled_ranking(scorer, loo, known, n_neg=n_neg, negatives=self.negatives)
        return out


def tune_rankers(evaluator: Evaluator, *, train: sp.csr_matrix, cooccurrence: sp.csr_matrix,
                 ease_lambdas: Sequence[float], knn_ks: Sequence[int],
                 kinds: Sequence[str] = RANKERS) -> dict[str, dict[str, Any]]:
    """``{kind: {"result", "setting", "scorer", "tried"}}``: each ranker at its best validation setting.

    Settings are compared on validation only; the chosen one is then scored on every split.
    ``train`` is the training user–item matrix (the rankers' only input besides the
    co-occurrence graph); ties are broken by popularity for every ranker.
    """
    pop = np.asarray(ranker_matrix("popularity", H=train), dtype=np.float64)
    grids: dict[str, list[dict[str, Any]]] = {
        "popularity": [{}], "cooccurrence": [{}],
        "itemknn": [{"knn_k": int(k)} for k in knn_ks], "ease": [{"ease_lambda": float(lam)} for lam in ease_lambdas],
    }
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        tried: dict[str, float] = {}
        best: tuple[float, Any, Scorer] | None = None
        for setting in grids[kind]:
            scorer = matrix_scorer(ranker_matrix(kind, H=train, C=cooccurrence, **setting), tie_break=pop)
            value = next(iter(setting.values()), None)
            tried[str(value)] = score = evaluator.validation(scorer)
            if best is None or score > best[0]:
                best = (score, value, scorer)
        assert best is not None
        out[kind] = {"result": evaluator.all(best[2]), "setting": best[1], "scorer": best[2], "tried": tried}
    return out


def tune_hybrid(evaluator: Evaluator, learned: Scorer, ranker: Scorer, weights: Sequence[float]) -> dict[str, Any]:
    """``{"result", "weight", "tried"}``: the hybrid at the weight with the best validation NDCG@10."""
    tried = {f"{w:g}": evaluator.validation(hybrid_scorer(learned, ranker, float(w))) for w in weights}
    best = max(weights, key=lambda w: tried[f"{w:g}"])  # first of equals, as a strict > scan
    return {"result": evaluator.all(hybrid_scorer(learned, ranker, float(best))), "weight": float(best),
            "tried": tried}


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
