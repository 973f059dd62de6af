"""Fine-grained per-source taxonomies with a planted bidirectional poly-matching.

Inside every coarse category the concepts lie on a one-dimensional axis (rank 0..n-1).
For the first two sources the axis is cut into *star groups*: a group is one fine
category on the host side and ``k >= 1`` contiguous fine categories on the client side,
with the host side drawn per group. The correspondence "fine category a of source 0 shares
concepts with fine category b of source 1" is therefore a set of stars whose centres lie on
either side: exactly a BiPoly matching (ALGORITHMS.md §1.1). Later sources get an
independent contiguous partition at their own granularity.
"""

from __future__ import annotations

import numpy as np


def _group_sizes(rng: np.random.Generator, n: int, mean: float) -> list[int]:
    sizes: list[int] = []
    left = n
    while left > 0:
        s = int(min(left, 1 + rng.poisson(max(mean - 1.0, 0.0))))
        sizes.append(s)
        left -= s
    return sizes


def _split(rng: np.random.Generator, size: int, parts: int) -> list[int]:
    """Split ``size`` consecutive concepts into ``parts`` non-empty contiguous runs."""
    if parts <= 1:
        return [size]
    cuts = np.sort(rng.choice(np.arange(1, size), size=parts - 1, replace=False))
    bounds = np.concatenate([[0], cuts, [size]])
    return np.diff(bounds).astype(int).tolist()


def star_taxonomies(
    rng: np.random.Generator, n_categories: int, per_category: int, group_mean: float, max_clients: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fine-category labels of every concept for two sources whose overlap is a BiPoly matching.

    Returns:
        ``(fine_a, fine_b)``: int arrays of shape ``(n_categories * per_category,)``; labels are
        global within each source and every fine category lies inside one coarse category.
    """
    n = n_categories * per_category
    fine_a = np.empty(n, dtype=np.int64)
    fine_b = np.empty(n, dtype=np.int64)
    next_a = next_b = 0
    for k in range(n_categories):
        start = k * per_category
        for size in _group_sizes(rng, per_category, group_mean):
            clients = int(rng.integers(1, min(max_clients, size) + 1))
            runs = _split(rng, size, clients)
            host_is_a = bool(rng.random() < 0.5)
            host = fine_a if host_is_a else fine_b
            client = fine_b if host_is_a else fine_a
            host_label = next_a if host_is_a else next_b
            client_label = next_b if host_is_a else next_a
            host[start : start + size] = host_label
            pos = start
            for j, run in enumerate(runs):
                client[pos : pos + run] = client_label + j
                pos += run
            if host_is_a:
                next_a += 1
                next_b += len(runs)
            else:
                next_b += 1
                next_a += len(runs)
            start += size
    return fine_a, fine_b


def contiguous_taxonomy(rng: np.random.Generator, n_categories: int, per_category: int, group_mean: float) -> np.ndarray:
    """Fine-category labels from an independent contiguous partition of every category's axis."""
    labels = np.empty(n_categories * per_category, dtype=np.int64)
    nxt = 0
    for k in range(n_categories):
        start = k * per_category
        for size in _group_sizes(rng, per_category, group_mean):
            labels[start : start + size] = nxt
            nxt += 1
            start += size
    return labels


def is_bipoly(pairs: set[tuple[int, int]]) -> bool:
    """True when every pair has an endpoint of degree 1 (ALGORITHMS.md §1.1)."""
    deg_l: dict[int, int] = {}
    deg_r: dict[int, int] = {}
    for a, b in pairs:
        deg_l[a] = deg_l.get(a, 0) + 1
        deg_r[b] = deg_r.get(b, 0) + 1
    return all(deg_l[a] == 1 or deg_r[b] == 1 for a, b in pairs)
