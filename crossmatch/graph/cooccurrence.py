"""Item–item co-occurrence edges (ALGORITHMS.md §2.2, following M2GRL).

For every user (or query) the interacted items are ordered by time, ``s_1..s_T``; every
pair of positions ``a < b`` with ``b − a ≤ window`` and ``s_a ≠ s_b`` adds 1 to the weight of
the undirected edge ``{s_a, s_b}``. Weights count every occurrence over all sequences
(Ambiguity 2.2-A: window on positions, per-occurrence counts, no self-pairs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import polars as pl

from crossmatch.errors import ConfigError


def cooccurrence_edges(
    logs: pl.DataFrame | pl.LazyFrame,
    *,
    window: int = 9,
    n_items: int | None = None,
    user: str = "user_idx",
    item: str = "item_idx",
) -> pl.DataFrame:
    """Co-occurrence edges of logs that are already sorted by user, then time.

    The ``window`` offsets become ``window`` shifted copies of the item column; rows whose
    shifted partner belongs to the same user form a pair. Each pair is packed into one
    ``Int64`` key ``min·n + max`` so a single hash aggregation counts them.

    Args:
        logs: rows sorted by ``user`` then time (ingest guarantees this order).
        window: largest position gap ``b − a`` that still forms a pair (paper: 9).
        n_items: number of distinct item indices (``max + 1`` when omitted).

    Returns:
        ``src, dst, weight`` (Int32, Int32, Int64) with ``src < dst``, sorted by ``src, dst``.
    """
    if window < 1:
        raise ConfigError(f"edges: window must be >= 1, got {window}")
    lf = logs.lazy().select(pl.col(user), pl.col(item).cast(pl.Int64))
    if n_items is None:
        n_items = int(lf.select(pl.col(item).max()).collect().item() or 0) + 1
    n = max(int(n_items), 1)
    parts = []
    for k in range(1, window + 1):
        a = pl.col(item)
        b = pl.col(item).shift(-k)
        parts.append(
            lf.select(
                (pl.min_horizontal(a, b) * n + pl.max_horizontal(a, b)).alias("key"),
                ((pl.col(user) == pl.col(user).shift(-k)) & (a != b)).alias("keep"),
            )
            .filter(pl.col("keep"))
            .select("key")
        )
    counts = pl.concat(parts).group_by("key").agg(pl.len().cast(pl.Int64).alias("weight"))
    return (
        counts.select(
            (pl.col("key") // n).cast(pl.Int32).alias("src"),
            (pl.col("key") % n).cast(pl.Int32).alias("dst"),
            "weight",
        )
        .sort("src", "dst")
        .collect()
    )


def cooccurrence_edges_loop(users: Sequence[int], items: Sequence[int], *, window: int = 9) -> dict[tuple[int, int], int]:
    """Straightforward per-user Python loop; the reference the polars version must equal.

    ``users``/``items`` are parallel sequences already sorted by user, then time.
    """
    counts: dict[tuple[int, int], int] = defaultdict(int)
    seq: list[int] = []
    current = None

    def flush(s: list[int]) -> None:
        t = len(s)
        for a in range(t):
            x = s[a]
            for b in range(a + 1, min(a + window + 1, t)):
                y = s[b]
                if x != y:
                    counts[(x, y) if x < y else (y, x)] += 1

    for u, i in zip(users, items, strict=True):
        if u != current:
            flush(seq)
            seq = []
            current = u
        seq.append(i)
    flush(seq)
    return dict(counts)
