"""Category similarity informed by the tuning labels, cross-fitted (issue 12: BiPoly's category blocking).

BiPoly's similarity ĥ (paper Sec. IV, eq. 1) is lexical or embedding-based: it never sees which category
pairs the labelled product pairs actually fall into, although reusing exactly those category pairs already
blocks better than any lexical BiPoly on Walmart–Amazon (the ``tune_category_pairs`` reference). The
``labels`` kind adds them to a base kind:

    ĥ_labels(l, r) = ĥ_base(l, r) + α · log(1 + c_lr) / log(1 + max c),   rescaled to a maximum of 1,

with ``c_lr`` the tuning positives whose left item is in category ``l`` and right item in ``r``. Tuning it
on the same positives would grade the similarity on the pairs it was built from, so the grid is
**cross-fitted**: the tuning positives are split into ``folds`` parts; for each part, ``c`` counts the
other parts and every greedy method at every ω/η point (and every α) is scored on that part alone; the
mean tradeoff over parts chooses α and each method's rewards. The returned instance counts every tuning
positive at the chosen α. Reporting labels are never read here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from crossmatch.bipoly.grid import GridRow, best_rows, run_greedy
from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.metrics import BlockingTruth
from crossmatch.errors import ConfigError, InputError

__all__ = ["LabelFit", "LabelParams", "cross_fitted_labels", "label_instance"]


@dataclass(frozen=True)
class LabelParams:
    """The ``labels`` similarity kind (module docstring); off unless ``enabled``."""

    enabled: bool = False
    base: str = "tfidf"  # a kind computed by the blocking (it must be in best_of, or the similarity)
    alphas: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0])
    folds: int = 5

    def __post_init__(self) -> None:
        if not self.alphas or any(not isinstance(a, (int, float)) or isinstance(a, bool) or a < 0
                                  for a in self.alphas):
            raise ConfigError(f"blocking.labels.alphas must be a non-empty list of numbers >= 0, got {self.alphas!r}")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise ConfigError(f"blocking.labels.folds must be an integer >= 2, got {self.folds!r}")


def label_instance(base: Instance, counts: sp.spmatrix | sp.sparray, alpha: float) -> Instance:
    """``ĥ_labels`` of the module docstring on ``base``'s candidate pairs plus every labelled category pair."""
    c = sp.csr_matrix(counts, dtype=np.float64)
    if c.shape != (base.n_left, base.n_right):
        raise ValueError(f"counts must be [{base.n_left}, {base.n_right}] (the instance's categories), got {c.shape}")
    if c.nnz and c.data.min() < 0:
        raise ValueError("counts must be >= 0")
    rate = c.copy()
    if rate.nnz:
        rate.data = np.log1p(rate.data) / np.log1p(rate.data.max())
    m = (base.csr() + alpha * rate).tocoo()
    keep = m.data > 0
    top = float(m.data[keep].max()) if keep.any() else 1.0
    out = sp.csr_matrix((m.data[keep] / top, (m.row[keep], m.col[keep])), shape=c.shape)
    return Instance.from_sparse(out, left_names=base.left_names, right_names=base.right_names)


@dataclass(frozen=True)
class LabelFit:
    """The cross-fitted choice: α, each method's best row (mean figures over folds), every row, the instance."""

    alpha: float
    best: dict[str, GridRow]
    rows: list[GridRow]
    instance: Instance
    folds: int

    def describe(self) -> dict[str, object]:
        return {"alpha": self.alpha, "folds": self.folds,
                "cv_tradeoff": {mt: r.tradeoff for mt, r in self.best.items()}}


def _mean_rows(per_fold: list[dict[tuple[str, tuple[float, ...]], GridRow]]) -> list[GridRow]:
    """Per (method, rewards): the mean of each figure over the folds, in grid order (as ``best_rows`` breaks ties).
    The tradeoff is the mean of the folds' tradeoffs (what each fold scored), not the harmonic mean of the means."""
    keys = set.intersection(*(set(d) for d in per_fold))
    rows = []
    for key in (k for k in per_fold[0] if k in keys):
        rs = [d[key] for d in per_fold]
        rows.append(GridRow(rs[0].method, rs[0].rewards, float(np.mean([r.coverage for r in rs])),
                            float(np.mean([r.reduction for r in rs])), float(np.mean([r.tradeoff for r in rs])),
                            int(round(np.mean([r.n_pairs for r in rs]))), float(np.mean([r.objective for r in rs]))))
    return rows


def cross_fitted_labels(
    params: LabelParams, *, base: Instance, tune_pairs: pl.DataFrame, truth_of: Callable[[pl.DataFrame], BlockingTruth],
    methods: Sequence[str], points: Sequence[Rewards], host_side: Side = "left", seed: int = 0,
    select: Callable[[dict[str, GridRow]], float] | None = None, restrict: Callable[[Instance], Instance] | None = None,
) -> LabelFit:
    """Choose α and each greedy method's rewards by the cross-fitted grid (module docstring).

    Args:
        base: the base kind's instance (category similarity without labels).
        tune_pairs: the tuning positives (one row per labelled true product pair).
        truth_of: the blocking truth (category counts, catalogue sizes) of a subset of ``tune_pairs``.
        select: how a fold-averaged ``{method: best row}`` at one α is graded (default: the best tradeoff
            over the methods).
        restrict: applied to every instance, the folds' and the returned one (e.g. the ``partition_by`` cut),
            so the setting is chosen on instances shaped like the one that ships.
    Raises:
        InputError: fewer tuning positives than folds.
        ConfigError: no greedy method to tune.
    """
    if not methods:
        raise ConfigError("the labels similarity is tuned through the greedy methods; blocking.methods has none")
    cut = restrict or (lambda inst: inst)
    if tune_pairs.height < params.folds:
        raise InputError(f"the labels similarity needs at least {params.folds} tuning positives "
                         f"(blocking.labels.folds), got {tune_pairs.height}")
    fold = np.random.default_rng(seed).permutation(tune_pairs.height) % params.folds
    grade = select or (lambda best: max(r.tradeoff for r in best.values()))
    # per fold: counts of the other folds, truth of this one (computed once, used for every α)
    splits = [(truth_of(tune_pairs.filter(pl.Series(fold != k))).counts(), truth_of(tune_pairs.filter(pl.Series(fold == k))))
              for k in range(params.folds)]
    by_alpha: dict[float, list[GridRow]] = {}
    for alpha in params.alphas:
        per_fold: list[dict[tuple[str, tuple[float, ...]], GridRow]] = []
        for counts, held in splits:
            inst = cut(label_instance(base, counts, alpha))
            got: dict[tuple[str, tuple[float, ...]], GridRow] = {}
            for mt in methods:
                for rw in points:
                    m = run_greedy(mt, inst, rw, host_side)
                    if m is None:
                        continue
                    s = held.score_matching(m)
                    got[(mt, rw.as_tuple())] = GridRow(mt, rw, s.coverage, s.reduction, s.tradeoff, m.n_pairs,
                                                       m.objective)
            per_fold.append(got)
        by_alpha[float(alpha)] = _mean_rows(per_fold)
    # ties: the smaller α (closer to the label-free base)
    alpha = max(sorted(by_alpha), key=lambda a: (grade(best_rows(by_alpha[a])), -a))
    instance = cut(label_instance(base, truth_of(tune_pairs).counts(), alpha))
    return LabelFit(alpha, best_rows(by_alpha[alpha]), by_alpha[alpha], instance, params.folds)
