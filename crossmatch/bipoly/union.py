"""A BiPoly matching plus the category pairs the labels vouch for, cross-fitted (issue 12: category blocking).

The ``labels`` similarity kind (:mod:`.labelled`) folds the labelled category pairs into ĥ and lets BiPoly
choose among them: BiPoly then pairs each category with about one partner, while the labelled pairs of one
category spread over several (Walmart–Amazon: 712 BiPoly.C pairs for 707 Amazon categories). This module keeps
the two apart instead: the matched category pairs are

    ρ = BiPoly(ĥ_base; ω, η)  ∪  {(l, r) : c_lr ≥ m},

the paper's matching on a label-free kind (eq. 3, Alg. 1 / 2) plus every category pair holding at least ``m``
tuning positives (``c_lr``, the counts of :meth:`BlockingTruth.counts`). The second set alone is the
``tune_category_pairs`` reference; the union lets BiPoly add the pairs no label reached yet. Grading it on the
positives its second set was built from would score every one of them as covered, so the choice is
**cross-fitted** like the labels kind's: the tuning positives are split into ``folds`` parts; for each part,
``c`` counts the other parts, and each (kind, ω/η point, ``m``) is scored on that part alone; the mean tradeoff over
the parts chooses, per method. The returned matching counts every tuning positive. Reporting labels are never read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from crossmatch.bipoly.grid import run_greedy
from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.matching import Matching
from crossmatch.bipoly.metrics import BlockingTruth
from crossmatch.errors import ConfigError, InputError

__all__ = ["UnionFit", "UnionParams", "cross_fitted_union", "labelled_union"]


@dataclass(frozen=True)
class UnionParams:
    """``blocking.labelled_union``: off unless ``enabled``; the methods it extends and the ``m`` it chooses among."""

    enabled: bool = False
    methods: list[str] = field(default_factory=lambda: ["bipoly_c", "bipoly_s"])
    min_counts: list[int] = field(default_factory=lambda: [1, 2, 3])
    folds: int = 5

    def __post_init__(self) -> None:
        if not self.methods or any(m not in ("bipoly_c", "bipoly_s") for m in self.methods):
            raise ConfigError(f"blocking.labelled_union.methods must be a non-empty list of bipoly_c / bipoly_s, "
                              f"got {self.methods!r}")
        if not self.min_counts or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.min_counts):
            raise ConfigError(f"blocking.labelled_union.min_counts must be a non-empty list of integers >= 1, "
                              f"got {self.min_counts!r}")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise ConfigError(f"blocking.labelled_union.folds must be an integer >= 2, got {self.folds!r}")


def _keys(counts: sp.spmatrix | sp.sparray, min_count: int,
          keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None, n_right: int) -> np.ndarray:
    """The category pairs with at least ``min_count`` positives that ``keep`` keeps, as sorted keys
    ``left * n_right + right``."""
    c = sp.coo_matrix(counts)
    sel = c.data >= min_count
    rows, cols = c.row[sel].astype(np.int64), c.col[sel].astype(np.int64)
    if keep is not None and rows.size:
        ok = keep(rows, cols)
        rows, cols = rows[ok], cols[ok]
    return np.unique(rows * n_right + cols)


def labelled_union(m: Matching, counts: sp.spmatrix | sp.sparray, min_count: int,
                   keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> Matching:
    """``m``'s pairs plus every category pair with at least ``min_count`` labelled positives (module docstring).
    ``keep(left, right)`` may drop labelled pairs (e.g. across ``partition_by`` values). F is undefined for the
    union (not a BiPoly matching in general), so ``objective`` is NaN."""
    n_left, n_right = counts.shape
    if n_left <= int(m.left.max(initial=-1)) or n_right <= int(m.right.max(initial=-1)):
        raise ValueError(f"counts {counts.shape} do not cover the matching's categories")
    labelled = _keys(counts, min_count, keep, n_right)
    keys = np.union1d(m.left * n_right + m.right, labelled)
    return Matching.from_pairs(keys // n_right, keys % n_right, method=f"{m.method}_plus_labelled", seconds=m.seconds,
                               info={"bipoly_pairs": m.n_pairs, "labelled_pairs": int(labelled.size)})


@dataclass(frozen=True)
class UnionFit:
    """Per method: the chosen (kind, rewards, m), its cross-fitted figures, and the shipped matching."""

    kind: str
    rewards: Rewards
    min_count: int
    cv_coverage: float
    cv_reduction: float
    cv_tradeoff: float
    matching: Matching


def cross_fitted_union(
    params: UnionParams, *, instances: dict[str, Instance], tune_pairs: pl.DataFrame,
    truth_of: Callable[[pl.DataFrame], BlockingTruth], points: Sequence[Rewards], host_side: Side = "left",
    seed: int = 0, keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> dict[str, UnionFit]:
    """Choose each method's (kind, ω/η, m) by the cross-fitted mean tradeoff (module docstring); ties keep the
    first in order kind, grid point, ``m`` (smallest first). ``instances`` are label-free kinds only.

    Raises:
        InputError: fewer tuning positives than folds.
    """
    if tune_pairs.height < params.folds:
        raise InputError(f"blocking.labelled_union needs at least {params.folds} tuning positives "
                         f"(its folds), got {tune_pairs.height}")
    if not instances:
        raise ConfigError("blocking.labelled_union needs a label-free similarity kind")
    # the same fold assignment as the labels kind's (crossmatch.bipoly.labelled)
    fold = np.random.default_rng(seed).permutation(tune_pairs.height) % params.folds
    splits = [(truth_of(tune_pairs.filter(pl.Series(fold != k))).counts(), truth_of(tune_pairs.filter(pl.Series(fold == k))))
              for k in range(params.folds)]
    n_right = next(iter(instances.values())).n_right
    # per (fold, m): the labelled category pairs as int64 keys l * n_right + r, built once (the grid reuses them)
    labelled = {(k, mc): _keys(counts, mc, keep, n_right) for k, (counts, _) in enumerate(splits)
                for mc in params.min_counts}
    fits: dict[str, UnionFit] = {}
    for method in params.methods:
        best: tuple[float, str, Rewards, int, float, float] | None = None
        for kind, inst in instances.items():
            for rw in points:
                m = run_greedy(method, inst, rw, host_side)
                if m is None:
                    continue
                own = m.left * n_right + m.right
                for mc in sorted(params.min_counts):
                    scores = []
                    for k, (_, held) in enumerate(splits):
                        keys = np.union1d(own, labelled[(k, mc)])
                        scores.append(held.score(keys // n_right, keys % n_right))
                    t = float(np.mean([s.tradeoff for s in scores]))
                    if best is None or t > best[0]:
                        best = (t, kind, rw, mc, float(np.mean([s.coverage for s in scores])),
                                float(np.mean([s.reduction for s in scores])))
        if best is None:
            continue
        t, kind, rw, mc, cov, red = best
        base = run_greedy(method, instances[kind], rw, host_side)
        assert base is not None  # it ran above at this setting
        fits[method] = UnionFit(kind, rw, mc, cov, red, t, labelled_union(base, truth_of(tune_pairs).counts(), mc, keep))
    return fits
