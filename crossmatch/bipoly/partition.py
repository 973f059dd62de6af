"""Partitions capped in size for the exact ILPs (issue 14, item 6).

The ILP of a partition grows with its candidate pairs and HiGHS's time with it much faster: at 25× the
default world one coarse category holds ~200 fine categories per side and its ILP does not finish within
any useful limit. :func:`cap_parts` gives every ILP at most ``max_nodes`` categories (both sides):

1. a partition within the cap is kept as it is;
2. a larger one is cut by *capped single linkage*: candidate pairs are taken strongest first and join
   their two clusters unless the union would exceed ``max_nodes``; pairs left between clusters are
   dropped. Every connected component that fits the cap stays whole (the ILP's objective is a sum over
   components, so that piece is solved exactly); a component above the cap loses only pairs weaker than
   every pair that holds a cluster together;
3. the clusters are packed first-fit (largest first) into pieces of at most ``max_nodes`` categories, so
   small components do not each cost a HiGHS start.

Deterministic: ties in the similarity are broken by the pair's position in the instance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crossmatch.bipoly.grid import split_by_groups
from crossmatch.bipoly.instance import Instance

Part = tuple[np.ndarray, np.ndarray, Instance]


def capped_clusters(inst: Instance, max_nodes: int) -> np.ndarray:
    """A cluster label per node (left nodes first, then right) with at most ``max_nodes`` nodes per cluster,
    built by capped single linkage over the candidate pairs (strongest first)."""
    m = inst.n_left
    parent = np.arange(m + inst.n_right)
    size = np.ones(m + inst.n_right, dtype=np.int64)

    def find(u: int) -> int:
        root = u
        while parent[root] != root:
            root = parent[root]
        while parent[u] != root:  # path compression
            parent[u], u = root, parent[u]
        return int(root)

    order = np.lexsort((np.arange(inst.n_pairs), -inst.weight))
    for a, b in zip(inst.left[order].tolist(), (inst.right[order] + m).tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb and size[ra] + size[rb] <= max_nodes:
            if size[ra] < size[rb]:
                ra, rb = rb, ra
            parent[rb] = ra
            size[ra] += size[rb]
    return np.array([find(u) for u in range(m + inst.n_right)], dtype=np.int64)


def pack(labels: np.ndarray, max_nodes: int) -> np.ndarray:
    """Clusters packed first-fit, largest first (ties: smallest label), into bins of at most ``max_nodes``
    nodes; returns the bin of every node."""
    ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.lexsort((ids, -counts))
    room: list[int] = []
    bin_of = np.empty(ids.size, dtype=np.int64)
    for c in order.tolist():
        need = int(counts[c])
        for b, free in enumerate(room):
            if free >= need:
                room[b] -= need
                bin_of[c] = b
                break
        else:
            room.append(max_nodes - need)
            bin_of[c] = len(room) - 1
    return bin_of[inverse]


def cap_parts(parts: Sequence[Part], max_nodes: int | None) -> tuple[list[Part], dict[str, int]]:
    """Every part with more than ``max_nodes`` categories (both sides) split as the module says; parts
    within the cap, or every part when ``max_nodes`` is None, are kept. Returns the parts (node ids in
    the original instance) and counts: parts ``split``, candidate pairs ``dropped``, ``n_parts`` after."""
    if max_nodes is None:
        return list(parts), {"split": 0, "dropped": 0, "n_parts": len(parts)}
    out: list[Part] = []
    split = dropped = 0
    for li, ri, sub in parts:
        if sub.n_left + sub.n_right <= max_nodes:
            out.append((li, ri, sub))
            continue
        split += 1
        bins = pack(capped_clusters(sub, max_nodes), max_nodes)
        pieces = split_by_groups(sub, bins[: sub.n_left], bins[sub.n_left :])
        dropped += sub.n_pairs - sum(p.n_pairs for _, _, p in pieces)
        out.extend((li[pl_], ri[pr_], p) for pl_, pr_, p in pieces)
    return out, {"split": split, "dropped": dropped, "n_parts": len(out)}
