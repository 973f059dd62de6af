"""The token-presence vocabulary size of the pair scorer, chosen on train's out-of-fold F1 (issue 12 §3).

The featurizer holds one presence feature per frequent token (:class:`crossmatch.er.features.PairFeaturizer`,
``token_vocab``); a smaller vocabulary is a prefix of a larger one, so every candidate size is a column subset of
one feature matrix and the choice refits only the scorer.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from crossmatch.er.features import PairFeaturizer
from crossmatch.er.scorer import PairScorer, ScorerConfig


def token_columns(feats: PairFeaturizer, size: int) -> np.ndarray:
    """Column indices of ``feats.names`` with the token-presence features of only the ``size`` most frequent
    tokens (the vocabulary is ordered by frequency, so a smaller vocabulary is a prefix of a larger one)."""
    keep = {f"token:{t}" for t in feats.vocab[:size]}
    return np.array([i for i, n in enumerate(feats.names) if n not in feats.token_names or n in keep], dtype=np.int64)


def choose_token_vocab(X: np.ndarray, y: np.ndarray, feats: PairFeaturizer, sizes: tuple[int, ...],
                       scorer: ScorerConfig, *, seeds: int = 1,
                       min_gain: float = 0.0) -> tuple[np.ndarray, PairScorer, dict[str, Any]]:
    """The vocabulary size of ``sizes`` whose scorer has the best out-of-fold F1 on the train pairs, with its
    columns and fitted scorer (issue 12 §3). The F1 of a size is the mean over ``seeds`` fold splits
    (``scorer.seed``, ``+1``, …); a larger size replaces the best so far only when it gains at least ``min_gain``
    (and strictly more than 0), so a difference within the fold-split noise keeps the smaller vocabulary.
    ``X`` = ``feats.transform`` of the train pairs, with ``feats.token_vocab`` ≥ every size. Train only, as every
    other choice of the scorer: valid is never read. The returned scorer is the one fitted with ``scorer.seed``."""
    if X.ndim != 2 or X.shape[1] != len(feats.names):
        raise ValueError(f"X must be feats.transform output with {len(feats.names)} columns, got shape {X.shape}")
    if max(sizes, default=0) > feats.token_vocab:
        raise ValueError(f"token vocabulary sizes {sorted(set(sizes))} exceed the featurizer's {feats.token_vocab}")
    if seeds < 1 or not min_gain >= 0.0:
        raise ValueError(f"seeds must be >= 1 and min_gain >= 0, got {seeds} and {min_gain}")
    best: tuple[int, np.ndarray, PairScorer, float] | None = None
    oof: dict[str, float] = {}
    for size in sorted(set(sizes)):
        cols = token_columns(feats, size)
        fits = [PairScorer(replace(scorer, seed=scorer.seed + i)).fit(X[:, cols], y) for i in range(seeds)]
        score = float(np.mean([f.oof_f1 for f in fits]))
        oof[str(size)] = round(score, 6)
        if best is None or (score > best[3] and score - best[3] >= min_gain):
            best = (size, cols, fits[0], score)
    assert best is not None
    return best[1], best[2], {"chosen": best[0], "oof_f1_train": oof, "seeds": seeds, "min_gain": min_gain}
