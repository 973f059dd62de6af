"""Post-processing of scored candidate pairs (issue 12 §3, §6): thresholding, one-to-one, clusters.

* ``threshold``: every pair with ``P(match) ≥ t`` (one-to-many allowed).
* ``hungarian``: a maximum-weight one-to-one matching of the pairs above ``t``, solved exactly per
  connected component with ``scipy.optimize.linear_sum_assignment`` when the component has at most
  ``dense_max`` items, by the named ``greedy`` rule above that (reported, never silent).
* ``greedy``: unique-mapping clustering — pairs in decreasing probability, kept when both items are free.
* ``stable``: a stable matching (Gale–Shapley, both sides proposing, the lower-SEq one;
  ALGORITHMS.md §3) whose preferences are each item's probabilities *normalised by its own best*,
  so the two sides' rankings differ; ``power_balance`` on components within ``dense_max``.
* ``clusters``: connected components of the pairs above ``t``; every left×right pair inside a
  component of at most ``max_cluster`` items is output (transitive closure, for one-to-many
  truth); a larger component is a chain of weak links, not one entity, and keeps only its pairs above ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from crossmatch.errors import ConfigError
from crossmatch.twosided.sparse_market import SparseMarket, component_labels, solve_component

METHODS = ("threshold", "hungarian", "greedy", "stable", "clusters")


@dataclass
class Selection:
    """Indices of the kept pairs and which solver ran on how many items."""

    keep: np.ndarray
    solvers: dict[str, int] = field(default_factory=dict)
    extra: list[tuple[int, int]] = field(default_factory=list)  # clusters: closure pairs that were not candidates

    def pairs(self, l: np.ndarray, r: np.ndarray) -> set[tuple[int, int]]:
        """The output as a set of (left row, right row)."""
        return set(zip(l[self.keep].tolist(), r[self.keep].tolist(), strict=True)) | set(self.extra)


def greedy_one_to_one(l: np.ndarray, r: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Unique-mapping clustering: indices of pairs kept in decreasing ``score`` with both ends free."""
    used_l: set[int] = set()
    used_r: set[int] = set()
    keep = []
    for i in np.argsort(-score, kind="stable").tolist():
        a, b = int(l[i]), int(r[i])
        if a in used_l or b in used_r:
            continue
        used_l.add(a)
        used_r.add(b)
        keep.append(i)
    return np.asarray(sorted(keep), dtype=np.int64)


def _components(l: np.ndarray, r: np.ndarray) -> list[np.ndarray]:
    if not len(l):
        return []
    ul, li = np.unique(l, return_inverse=True)
    ur, ri = np.unique(r, return_inverse=True)
    lab, _ = component_labels(li, ri, len(ul), len(ur))
    comp = lab[li]
    order = np.argsort(comp, kind="stable")
    cuts = np.flatnonzero(np.diff(comp[order])) + 1
    return np.split(order, cuts)


def select(l: np.ndarray, r: np.ndarray, prob: np.ndarray, *, method: str, threshold: float,
           dense_max: int = 400, max_cluster: int = 8) -> Selection:
    """Indices (into the pair arrays) of the output pairs under ``method`` (see module docstring)."""
    if method not in METHODS:
        raise ConfigError(f"er post-processing must be one of {METHODS}, got {method!r}")
    l, r, prob = np.asarray(l), np.asarray(r), np.asarray(prob, dtype=np.float64)
    if not (l.shape == r.shape == prob.shape):
        raise ValueError(f"l, r, prob must have one shape, got {l.shape}, {r.shape}, {prob.shape}")
    above = np.flatnonzero(prob >= threshold)
    if method == "threshold":
        return Selection(above, {"threshold": int(len(np.unique(l[above])) + len(np.unique(r[above])))})
    if method == "greedy":
        k = greedy_one_to_one(l[above], r[above], prob[above])
        return Selection(above[k], {"greedy": int(len(np.unique(l[above])) + len(np.unique(r[above])))})
    if method == "clusters":
        return _clusters(l, r, above, max_cluster)
    keep: list[np.ndarray] = []
    solvers: dict[str, int] = {}
    for comp in _components(l[above], r[above]):
        idx = above[comp]
        ul, li = np.unique(l[idx], return_inverse=True)
        ur, ri = np.unique(r[idx], return_inverse=True)
        size = len(ul) + len(ur)
        if method == "hungarian":
            if size <= dense_max:
                W = np.zeros((len(ul), len(ur)))
                W[li, ri] = prob[idx]
                rows, cols = linear_sum_assignment(W, maximize=True)
                pos = {(a, b): p for p, (a, b) in enumerate(zip(li.tolist(), ri.tolist(), strict=True))}
                keep.append(idx[[pos[(a, b)] for a, b in zip(rows.tolist(), cols.tolist(), strict=True) if (a, b) in pos]])
                name = "hungarian"
            else:
                keep.append(idx[greedy_one_to_one(li, ri, prob[idx])])
                name = "greedy"
        else:
            best_l = np.zeros(len(ul))
            best_r = np.zeros(len(ur))
            np.maximum.at(best_l, li, prob[idx])
            np.maximum.at(best_r, ri, prob[idx])
            market = SparseMarket(len(ul), len(ur), li, ri, prob[idx] / best_l[li], prob[idx] / best_r[ri])
            res = solve_component(market, "power_balance", dense_max=dense_max)
            pos = {(a, b): p for p, (a, b) in enumerate(zip(li.tolist(), ri.tolist(), strict=True))}
            keep.append(idx[[pos[(int(a), int(b))] for a, b in zip(res.left, res.right, strict=True)]])
            name = "power_balance" if res.dense else "gs_best"
        solvers[name] = solvers.get(name, 0) + size
    out = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
    return Selection(out.astype(np.int64), solvers)


def _clusters(l: np.ndarray, r: np.ndarray, above: np.ndarray, max_cluster: int) -> Selection:
    """Transitive closure inside components; the closure's extra pairs index past ``len(l)``."""
    keep = set(above.tolist())
    extra: list[tuple[int, int]] = []
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(l.tolist(), r.tolist(), strict=True))}
    for comp in _components(l[above], r[above]):
        idx = above[comp]
        ul, ur = np.unique(l[idx]), np.unique(r[idx])
        if len(ul) + len(ur) > max_cluster:
            continue
        for a in ul.tolist():
            for b in ur.tolist():
                i = index.get((a, b))
                if i is None:
                    extra.append((a, b))
                else:
                    keep.add(i)
    n_items = int(len(np.unique(l[above])) + len(np.unique(r[above])))
    return Selection(np.asarray(sorted(keep), dtype=np.int64), {"clusters": n_items}, extra)
