"""Small hand-made multi-source graphs for the ICPA unit tests."""

from __future__ import annotations

import numpy as np
import polars as pl

from crossmatch.icpa import MultiSourceGraph, SourceFrames, build_multisource_graph


def source_frames(n_items: int, n_users: int, categories: list[str], *, seed: int, n_cat: int = 2,
                  n_dense: int = 3, edges_per_item: int = 4, empty_edges: bool = False) -> SourceFrames:
    """A random source: items spread over ``categories``, co-occurrence edges mostly inside a category."""
    rng = np.random.default_rng(seed)
    cats = [categories[i % len(categories)] for i in range(n_items)]
    items = {"item_idx": np.arange(n_items, dtype=np.int32), "item_id": [f"s{seed}-i{i}" for i in range(n_items)],
             "category": cats}
    for c in range(n_cat):
        items[f"cat_{c}"] = rng.integers(0, 5, n_items).astype(np.int64)
    for d in range(n_dense):
        items[f"num_{d}"] = rng.normal(size=n_items)
    pairs: dict[tuple[int, int], int] = {}
    if not empty_edges:
        for a in range(n_items):
            same = [b for b in range(n_items) if cats[b] == cats[a] and b != a]
            for b in rng.choice(same, size=min(edges_per_item, len(same)), replace=False):
                key = (min(a, int(b)), max(a, int(b)))
                pairs[key] = pairs.get(key, 0) + int(rng.integers(1, 4))
    src = np.array([k[0] for k in pairs], dtype=np.int32)
    dst = np.array([k[1] for k in pairs], dtype=np.int32)
    w = np.array(list(pairs.values()), dtype=np.int64)
    users = rng.integers(0, n_users, n_items * 2)
    ui = pl.DataFrame({"user_idx": users.astype(np.int32), "item_idx": rng.integers(0, n_items, users.size).astype(np.int32),
                       "weight": np.ones(users.size)}).unique(["user_idx", "item_idx"]).sort("user_idx", "item_idx")
    return SourceFrames(pl.DataFrame(items), pl.DataFrame({"src": src, "dst": dst, "weight": w}), ui)


def toy_graph(sizes: tuple[int, ...] = (30, 24, 12), categories: tuple[str, ...] = ("a", "b", "c"),
              missing: dict[int, str] | None = None, seed: int = 0) -> MultiSourceGraph:
    """Sources ``s0, s1, …``; ``missing[j] = c`` removes category ``c`` from source ``j``."""
    frames = {}
    for j, n in enumerate(sizes):
        cats = [c for c in categories if not (missing and missing.get(j) == c)]
        frames[f"s{j}"] = source_frames(n, max(4, n // 2), cats, seed=seed + j, n_cat=1 + j % 2, n_dense=2 + j)
    return build_multisource_graph(frames)
