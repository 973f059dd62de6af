"""End-to-end quality of the shipped output estimated on train labels only (issue 12 §1, §5).

The labelled-pair protocol scores a model on the pairs someone chose to label; the pipeline's output is
every *blocked candidate* the scorer accepts. The two can disagree: a feature can separate the labelled
pairs better and still accept more wrong candidates. :func:`grouped_end_to_end` measures the second
without touching valid.csv: the left records that have a train positive are split into folds; for each
fold the scorer is fitted on the train pairs of the other left records and decides every blocked
candidate of the held-out ones. Truth = the train positives of those records, so a candidate that is a
true match labelled only in another split counts as wrong (a lower bound on precision, equal for every
variant compared on the same candidates).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from crossmatch.er.evaluate import prf
from crossmatch.er.features import PairFeaturizer
from crossmatch.er.postprocess import select
from crossmatch.er.scorer import PairScorer, ScorerConfig
from crossmatch.er.tables import Benchmark


def grouped_end_to_end(feats: PairFeaturizer, bench: Benchmark, cands: pl.DataFrame, *,
                       scorer: ScorerConfig | None = None, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """Precision / recall / F1 and output pairs of the thresholded scorer over the blocked candidates
    ``cands`` (columns ``l``, ``r``) of held-out left records, by ``folds``-fold cross-validation grouped
    by left record inside train.csv."""
    return grouped_end_to_end_by_method(feats, bench, cands, methods=("threshold",), scorer=scorer, folds=folds,
                                        seed=seed)["threshold"]


def grouped_end_to_end_by_method(feats: PairFeaturizer, bench: Benchmark, cands: pl.DataFrame, *,
                                 methods: tuple[str, ...], scorer: ScorerConfig | None = None, folds: int = 5,
                                 seed: int = 0, dense_max: int = 400) -> dict[str, dict[str, float]]:
    """:func:`grouped_end_to_end` for each post-processing ``method`` (``crossmatch.er.postprocess``) applied
    to each fold's scored candidates: the same fits, one estimate per method."""
    if bench.train is None:
        raise ValueError("grouped_end_to_end needs train.csv")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    tl, tr = bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy()
    ty = bench.train.get_column("label").to_numpy().astype(np.int64)
    X = feats.transform(tl, tr)
    lefts = np.unique(tl[ty == 1])
    if len(lefts) < folds:
        raise ValueError(f"train.csv has positives for {len(lefts)} left records, fewer than {folds} folds")
    fold_of = dict(zip(np.random.default_rng(seed).permutation(lefts).tolist(),
                       (np.arange(len(lefts)) % folds).tolist(), strict=True))
    cl, cr = cands.get_column("l").to_numpy(), cands.get_column("r").to_numpy()
    truth = {(int(a), int(b)) for a, b, y in zip(tl, tr, ty, strict=True) if y == 1}
    tp = dict.fromkeys(methods, 0)
    n_pred = dict.fromkeys(methods, 0)
    for f in range(folds):
        held = np.array([a for a, g in fold_of.items() if g == f])
        fit = ~np.isin(tl, held)
        model = PairScorer(scorer or ScorerConfig(seed=seed)).fit(X[fit], ty[fit])
        m = np.isin(cl, held)
        hl, hr = cl[m], cr[m]
        prob = model.predict_proba(feats.transform(hl, hr))
        for method in methods:
            out = select(hl, hr, prob, method=method, threshold=model.threshold, dense_max=dense_max).pairs(hl, hr)
            n_pred[method] += len(out)
            tp[method] += len(out & truth)
    return {m: {**prf(tp[m], n_pred[m], len(truth)), "pairs": float(n_pred[m])} for m in methods}
