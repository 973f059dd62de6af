"""End-to-end quality of the shipped output estimated on train labels only (issue 12 §1, §5).

The labelled-pair protocol scores a model on the pairs someone chose to label; the pipeline's output is
every *blocked candidate* the scorer accepts, after post-processing. The two can disagree: a feature can
separate the labelled pairs better and still accept more wrong candidates, and a one-to-one rule can lose
labelled recall and still give a far better output. :func:`grouped_end_to_end_by_method` measures the
output without touching valid.csv: every left record of the candidates is put in one of ``folds`` folds (``match``
runs it on :func:`crossmatch.er.pipeline.oriented`, so "left" is the smaller table);
each fold's candidates are scored by a scorer fitted on the train pairs of the *other* folds' records
(out-of-fold probabilities for the whole candidate set), each post-processing then runs once on the whole
set, as it does in the pipeline, and its output is counted on the left records that have a train
positive, against those positives. An output pair that is a true match labelled only in another split
counts as wrong, so precision is a lower bound — tighter for one-to-one rules than for rules that keep
several partners per record.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from crossmatch.er.evaluate import prf
from crossmatch.er.features import PairFeaturizer
from crossmatch.er.postprocess import select
from crossmatch.er.scorer import PairScorer, ScorerConfig
from crossmatch.er.tables import Benchmark


def hard_negative_rows(cands: pl.DataFrame, train: pl.DataFrame, per_record: int) -> np.ndarray:
    """Row indices into ``cands`` of the hard negatives drawn from the blocked candidates (issue 12 §3): for every
    left record with a positive in ``train``, its ``per_record`` most similar candidates (blocking cosine; ties by
    right row) that are not pairs of ``train`` — the partner a record has is labelled, its nearest look-alikes are
    most likely not partners (not always: a record with several true partners loses the unlabelled ones; see
    :func:`held_out_pair_f1`). Only train.csv is read: a candidate listed in valid.csv is drawn like any other."""
    if per_record < 0:
        raise ValueError(f"per_record must be >= 0, got {per_record}")
    if not per_record or not train.height:
        return np.zeros(0, dtype=np.int64)
    pos_left = train.filter(pl.col("label") == 1).select("l").unique()
    drawn = (cands.select("l", "r", "similarity").with_row_index("i").join(pos_left, on="l", how="semi")
             .join(train.select("l", "r"), on=["l", "r"], how="anti")
             .sort(["l", "similarity", "r", "i"], descending=[False, True, False, False])
             .filter(pl.int_range(pl.len()).over("l") < per_record))
    return drawn.get_column("i").to_numpy().astype(np.int64)


def hard_negatives(cands: pl.DataFrame, train: pl.DataFrame, per_record: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(l, r)`` rows of :func:`hard_negative_rows`."""
    rows = hard_negative_rows(cands, train, per_record)
    return (cands.get_column("l").to_numpy()[rows].astype(np.int64), cands.get_column("r").to_numpy()[rows].astype(np.int64))


def grouped_end_to_end(feats: PairFeaturizer, bench: Benchmark, cands: pl.DataFrame, *,
                       scorer: ScorerConfig | None = None, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """Precision / recall / F1 and output pairs of the thresholded scorer over the blocked candidates
    ``cands`` (columns ``l``, ``r``), out of fold, grouped by left record (see the module docstring)."""
    return grouped_end_to_end_by_method(feats, bench, cands, methods=("threshold",), scorer=scorer, folds=folds,
                                        seed=seed)["threshold"]


def grouped_end_to_end_by_method(feats: PairFeaturizer, bench: Benchmark, cands: pl.DataFrame, *,
                                 methods: tuple[str, ...], scorer: ScorerConfig | None = None, folds: int = 5,
                                 seed: int = 0, dense_max: int = 400, train_features: np.ndarray | None = None,
                                 cand_features: np.ndarray | None = None,
                                 hard: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, dict[str, float]]:
    """:func:`grouped_end_to_end` for each post-processing ``method`` (``crossmatch.er.postprocess``), each run on
    the whole candidate set's out-of-fold probabilities at the mean of the folds' thresholds.
    ``train_features`` / ``cand_features``: ``feats.transform`` of the train pairs / of ``cands`` when the
    caller already has them (the pipeline does), so nothing is featurised twice. ``hard``: the features and left
    rows of extra negative pairs (:func:`hard_negatives`); each fold's scorer trains on those of its own records."""
    if bench.train is None:
        raise ValueError("grouped_end_to_end needs train.csv")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    tl, tr = bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy()
    ty = bench.train.get_column("label").to_numpy().astype(np.int64)
    labelled = np.unique(tl[ty == 1])
    if len(labelled) < folds:
        raise ValueError(f"train.csv has positives for {len(labelled)} left records, fewer than {folds} folds")
    cl, cr = cands.get_column("l").to_numpy(), cands.get_column("r").to_numpy()
    rng = np.random.default_rng(seed)
    # the labelled records are dealt round-robin so every fold holds some; the others at random
    fold_of = dict(zip(rng.permutation(labelled).tolist(), (np.arange(len(labelled)) % folds).tolist(), strict=True))
    rest = np.setdiff1d(np.unique(np.r_[cl, tl]), labelled)
    fold_of.update(zip(rest.tolist(), rng.integers(0, folds, len(rest)).tolist(), strict=True))
    f_train = np.array([fold_of[a] for a in tl.tolist()], dtype=np.int64)
    f_cand = np.array([fold_of[a] for a in cl.tolist()], dtype=np.int64)
    X = feats.transform(tl, tr) if train_features is None else train_features
    Xc = feats.transform(cl, cr) if cand_features is None else cand_features
    if X.shape[0] != len(tl) or Xc.shape[0] != len(cl):
        raise ValueError(f"features must have one row per train pair ({len(tl)}) and candidate ({len(cl)}), "
                         f"got {X.shape[0]} and {Xc.shape[0]}")
    Xh, hl = hard if hard is not None else (np.zeros((0, X.shape[1])), np.zeros(0, dtype=np.int64))
    if Xh.shape[0] != len(hl) or (len(hl) and Xh.shape[1] != X.shape[1]):
        raise ValueError(f"hard negatives need one feature row of {X.shape[1]} columns per left row, got {Xh.shape} "
                         f"for {len(hl)}")
    f_hard = np.array([fold_of[a] for a in hl.tolist()], dtype=np.int64)
    prob = np.zeros(len(cl))
    thresholds = []
    for f in range(folds):
        fit, extra = f_train != f, f_hard != f
        model = PairScorer(scorer or ScorerConfig(seed=seed)).fit(np.r_[X[fit], Xh[extra]],
                                                                  np.r_[ty[fit], np.zeros(int(extra.sum()), np.int64)])
        thresholds.append(model.threshold)
        m = f_cand == f
        if m.any():
            prob[m] = model.predict_proba(Xc[m])
    truth = {(int(a), int(b)) for a, b, y in zip(tl, tr, ty, strict=True) if y == 1}
    counted = set(labelled.tolist())
    out: dict[str, dict[str, float]] = {}
    for method in methods:
        pairs = select(cl, cr, prob, method=method, threshold=float(np.mean(thresholds)), dense_max=dense_max).pairs(cl, cr)
        pairs = {p for p in pairs if p[0] in counted}
        out[method] = {**prf(len(pairs & truth), len(pairs), len(truth)), "pairs": float(len(pairs))}
    return out


def held_out_pair_f1(X: np.ndarray, train: pl.DataFrame, cands: pl.DataFrame, cand_features: np.ndarray, *,
                     per_record: int, scorer: ScorerConfig | None = None, folds: int = 5, seed: int = 0) -> float:
    """Labelled-pair F1 of the scorer on held-out *train pairs* when it trains with ``per_record`` hard negatives.

    The folds split train.csv's pairs (not its records), as valid.csv is split from the same records: a record
    with two true partners can have one in the fitting pairs and the other held out, and the hard negatives are
    drawn knowing only the fitting pairs — so a held-out true partner can be drawn as a negative, exactly as a
    valid.csv partner can in the pipeline. Grouping by record (:func:`grouped_end_to_end_by_method`) cannot see
    that: :func:`hard_negatives` never draws a pair of the train it is given. A held-out *negative* pair can be
    drawn too and is then trained on with its true label, which flatters held-out precision for ``per_record`` > 0
    (the pipeline does the same with valid.csv's negatives). ``X``: features of ``train``'s pairs;
    ``cand_features``: of ``cands``' rows."""
    from sklearn.model_selection import StratifiedKFold

    y = train.get_column("label").to_numpy().astype(np.int64)
    pred = np.zeros(len(y), dtype=bool)
    for fit, out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        rows = hard_negative_rows(cands, train[fit], per_record)
        model = PairScorer(scorer or ScorerConfig(seed=seed)).fit(
            np.r_[X[fit], cand_features[rows]], np.r_[y[fit], np.zeros(len(rows), np.int64)])
        pred[out] = model.predict_proba(X[out]) >= model.threshold
    return prf(float((pred & (y == 1)).sum()), float(pred.sum()), float(y.sum()))["f1"]
