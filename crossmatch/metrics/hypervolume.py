"""Pareto fronts of per-source losses and the hypervolume under them (ICPA §2.6 rationale).

ICPA's phase 1 minimises random convex combinations of the per-source losses, which
approximately minimises the hypervolume *under* the Pareto front: the volume of the region
between the origin and the front, ``{z ≥ 0 : z ≤ p for some front point p}``. Smaller is better.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _as_points(points: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"points must have shape (n_points, n_objectives) with n >= 1, got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("points must be finite")
    if (p < 0).any():
        raise ValueError("losses must be non-negative for the hypervolume under the front")
    return p


def pareto_front(points: ArrayLike) -> NDArray[np.bool_]:
    """Mask of the non-dominated points for minimisation (duplicates: the first one is kept)."""
    p = _as_points(points)
    n = len(p)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if not keep[i]:
            continue
        dominated_by = np.all(p <= p[i], axis=1) & np.any(p < p[i], axis=1)
        same = np.all(p == p[i], axis=1)
        same[: i + 1] = False
        if dominated_by.any():
            keep[i] = False
        keep[same] = False
    return keep


def hypervolume_under(points: ArrayLike) -> float:
    """Volume of the union of the boxes ``[0, p]`` over the points (exact, by slicing the last axis)."""
    p = _as_points(points)
    p = p[pareto_front(p)]
    return float(_union_volume(p))


def _union_volume(p: NDArray[np.float64]) -> float:
    d = p.shape[1]
    if d == 1:
        return float(p[:, 0].max())
    # Sweep the last coordinate from the top: between consecutive levels the cross-section is
    # the (d-1)-dimensional union of the boxes that reach at least that high.
    levels = np.unique(p[:, -1])[::-1]
    total = 0.0
    for k, top in enumerate(levels):
        bottom = levels[k + 1] if k + 1 < len(levels) else 0.0
        active = p[p[:, -1] >= top, :-1]
        total += (top - bottom) * _union_volume(active[pareto_front_max(active)])
    return total


def pareto_front_max(points: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Mask of the points not contained in another point's box ``[0, q]`` (maximisation)."""
    n = len(points)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        inside = np.all(points >= points[i], axis=1)
        inside[i] = False
        strictly = inside & np.any(points > points[i], axis=1)
        equal_earlier = inside & ~strictly & (np.arange(n) < i)
        if strictly.any() or equal_earlier.any():
            keep[i] = False
    return keep
