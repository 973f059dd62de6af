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
from crossmatch.er.scorer import PairScorer, ScorerConfig
from crossmatch.er.tables import Benchmark


def grouped_end_to_end(feats: PairFeaturizer, bench: Benchmark, cands: pl.DataFrame, *,
                       scorer: ScorerConfig | None = None, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """Precision / recall / F1 and output pairs of the thresholded scorer over the blocked candidates
    ``cands`` (columns ``l``, ``r``) of held-out left records, by ``folds``-fold cross-validation grouped
    by left record inside train.csv."""
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
    tp = n_pred = 0
    for f in range(folds):
        held = np.array([a for a, g in fold_of.items() if g == f])
        fit = ~np.isin(tl, held)
        model = PairScorer(scorer or ScorerConfig(seed=seed)).fit(X[fit], ty[fit])
        m = np.isin(cl, held)
        accept = model.predict_proba(feats.transform(cl[m], cr[m])) >= model.threshold
        n_pred += int(accept.sum())
        tp += sum((int(a), int(b)) in truth for a, b in zip(cl[m][accept], cr[m][accept], strict=True))
    return {**prf(tp, n_pred, len(truth)), "pairs": float(n_pred)}
