"""The pair scorer: gradient boosting on pair features, calibrated, with a no-match decision (issue 12 §3).

Everything is fitted on the *training* pairs only: out-of-fold probabilities from a k-fold
cross-validation inside train give (i) an isotonic calibration map and (ii) the decision
threshold that maximises out-of-fold F1. Validation pairs are never looked at, so the valid
figure a stage reports is held out. New pairs are scored either by a model refitted on all training
pairs (``refit: full``) or by the k fold models themselves, their calibrated probabilities averaged
(``refit: folds``; like scikit-learn's ``CalibratedClassifierCV(ensemble=True)``, but with one calibration
map fitted on the pooled out-of-fold scores): then the models that score are the ones whose out-of-fold scores
set the calibration and the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from crossmatch.errors import ConfigError


@dataclass(frozen=True)
class ScorerConfig:
    """Gradient-boosting settings and how the threshold is chosen."""

    max_iter: int = 300
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    l2_regularization: float = 0.0
    folds: int = 5
    threshold: float | None = None  # None: maximise out-of-fold F1 on train; a number: fixed
    seed: int = 0
    # a bag of `ensemble` boosters whose probabilities are averaged; each sees a random `max_features` share of
    # the features at every split (scikit-learn's own subsampling), which is what makes the members differ:
    # below 10,000 rows the booster is otherwise deterministic whatever its seed
    ensemble: int = 1
    max_features: float = 1.0
    # which models score new pairs: "full" refits on all training pairs, which is more confident than the fold
    # models whose out-of-fold scores chose the calibration and threshold, so more pairs clear the threshold;
    # "folds" averages the k fold models' calibrated probabilities (no refit). Chosen on a nested estimate inside
    # train (benchmarks/er_refit_choice.py): mean F1 over three benchmarks 0.8868 (full) vs 0.8907 (folds)
    refit: str = "folds"

    def __post_init__(self) -> None:
        if self.max_iter < 1 or self.learning_rate <= 0 or self.max_leaf_nodes < 2:
            raise ConfigError("er scorer: max_iter >= 1, learning_rate > 0 and max_leaf_nodes >= 2 required")
        if self.folds < 2:
            raise ConfigError(f"er scorer.folds must be >= 2, got {self.folds}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"er scorer.threshold must be in (0, 1) or null, got {self.threshold}")
        if self.ensemble < 1 or not 0.0 < self.max_features <= 1.0:
            raise ConfigError(f"er scorer: ensemble >= 1 and max_features in (0, 1] required, got {self.ensemble} "
                              f"and {self.max_features}")
        if self.refit not in ("full", "folds"):
            raise ConfigError(f"er scorer.refit must be 'full' or 'folds', got {self.refit!r}")
        # a YAML `1` arrives as an int, which scikit-learn reads as a count and refuses only at fit time
        object.__setattr__(self, "max_features", float(self.max_features))


def best_f1_threshold(prob: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(threshold, F1)`` maximising F1 of ``prob >= threshold`` (midpoints between distinct scores)."""
    order = np.argsort(-prob, kind="stable")
    p, t = prob[order], y[order].astype(np.float64)
    tp = np.cumsum(t)
    k = np.arange(1, len(p) + 1)
    last = np.r_[p[1:] != p[:-1], True]  # a cut is only possible after the last of equal scores
    f1 = np.where(last, 2 * tp / (k + t.sum()), -1.0)
    i = int(np.argmax(f1))
    nxt = p[i + 1] if i + 1 < len(p) else p[i] - 1e-6
    return float((p[i] + nxt) / 2), float(max(f1[i], 0.0))


class PairScorer:
    """Fit on labelled pair features; :meth:`predict_proba` returns calibrated match probabilities."""

    def __init__(self, config: ScorerConfig | None = None) -> None:
        self.config = config or ScorerConfig()
        self.threshold = 0.5
        self.oof_f1 = float("nan")
        self.empty = np.zeros(0, dtype=bool)

    def _fit_bag(self, X: np.ndarray, y: np.ndarray) -> list[HistGradientBoostingClassifier]:
        c = self.config
        return [HistGradientBoostingClassifier(max_iter=c.max_iter, learning_rate=c.learning_rate,
                                               max_leaf_nodes=c.max_leaf_nodes, l2_regularization=c.l2_regularization,
                                               max_features=c.max_features,
                                               random_state=c.seed + 7_919 * i).fit(X, y)
                for i in range(c.ensemble)]

    @staticmethod
    def _bag_proba(bag: list[HistGradientBoostingClassifier], X: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_proba(X)[:, 1] for m in bag], axis=0)

    def fit(self, X: np.ndarray, y: np.ndarray) -> PairScorer:
        y = np.asarray(y).astype(np.int64)
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise ValueError(f"X must be [n, f] with n = len(y) = {y.shape[0]}, got {X.shape}")
        n_pos = int(y.sum())
        if n_pos < self.config.folds or len(y) - n_pos < self.config.folds:
            raise ConfigError(f"training pairs need at least {self.config.folds} positives and negatives "
                              f"(have {n_pos} and {len(y) - n_pos})")
        oof = np.zeros(len(y))
        members: list[tuple[list[HistGradientBoostingClassifier], np.ndarray]] = []
        for tr, te in StratifiedKFold(self.config.folds, shuffle=True, random_state=self.config.seed).split(X, y):
            empty = empty_columns(X[tr])
            bag = self._fit_bag(fill_empty(X[tr], empty), y[tr])
            oof[te] = self._bag_proba(bag, fill_empty(X[te], empty))
            members.append((bag, empty))
        self.calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(oof, y)
        cal = self.calibrator.predict(oof)
        self.oof_scores = np.asarray(cal, dtype=np.float64)  # calibrated, per training pair, from a model without it
        if self.config.threshold is None:
            self.threshold, self.oof_f1 = best_f1_threshold(cal, y)
        else:
            self.threshold = self.config.threshold
            self.oof_f1 = _f1(cal >= self.threshold, y)
        self.empty = empty_columns(X)
        # (bag, its empty columns) per scoring member: one full refit, or the fold models
        self.members = members if self.config.refit == "folds" else [(self._fit_bag(fill_empty(X, self.empty), y),
                                                                      self.empty)]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated ``P(match)`` per pair."""
        if not hasattr(self, "members"):
            raise ValueError("PairScorer.predict_proba called before fit")
        if X.shape[0] == 0:
            return np.zeros(0)
        if X.ndim != 2 or X.shape[1] != len(self.empty):
            raise ValueError(f"X must have the {len(self.empty)} feature columns the scorer was fitted on, got {X.shape}")
        return np.mean([np.asarray(self.calibrator.predict(self._bag_proba(bag, fill_empty(X, empty))), dtype=np.float64)
                        for bag, empty in self.members], axis=0)


def empty_columns(X: np.ndarray, min_values: int = 5) -> np.ndarray:
    """Columns with fewer than ``min_values`` values in ``X`` (issue 12 §3; an attribute empty in both tables gives
    one with none). scikit-learn's binning cannot fit a column it has seen no value of, and above 10,000 rows its early
    stopping bins only a random 90 % of them: a column with k values is empty there with probability 0.1^k."""
    if not X.shape[0]:
        return np.zeros(X.shape[1], dtype=bool)
    return np.asarray((~np.isnan(X)).sum(axis=0) < min_values)


def fill_empty(X: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """``X`` with the columns that were (nearly) empty at fit time set to 0: constant, so the model ignores them
    (issue 12 §3; :func:`empty_columns`)."""
    if not empty.any():
        return X
    out = np.array(X, dtype=np.float64, copy=True)
    out[:, empty] = 0.0
    return out


def _f1(pred: np.ndarray, y: np.ndarray) -> float:
    tp = float((pred & (y == 1)).sum())
    return 2 * tp / max(float(pred.sum()) + float((y == 1).sum()), 1.0)
