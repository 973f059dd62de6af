"""Per-source graph tables: hold-out split, user–item and item–category edges, statistics."""

from __future__ import annotations

from typing import Any

import polars as pl

from crossmatch.errors import ConfigError


def split_holdout(logs: pl.DataFrame, fraction: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Time-based split: the last ``floor(fraction · n_u)`` interactions of each user are held out.

    ``logs`` must be sorted by user, then time. Held-out rows never enter any edge table,
    so evaluation on them is leak-free (ALGORITHMS.md §2.2 step 4; XMarket protocol).
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"edges: holdout_fraction must lie in [0, 1), got {fraction}")
    if fraction == 0.0:
        return logs, logs.head(0)
    pos = pl.int_range(pl.len()).over("user_idx")
    n = pl.len().over("user_idx")
    test = pos >= n - (n.cast(pl.Float64) * fraction).floor().cast(pl.UInt32)
    flagged = logs.with_columns(test.alias("_test"))
    return flagged.filter(~pl.col("_test")).drop("_test"), flagged.filter(pl.col("_test")).drop("_test")


def user_item_edges(logs: pl.DataFrame) -> pl.DataFrame:
    """``user_idx, item_idx, weight, count, last_ts``: summed weight and number of interactions."""
    return (
        logs.group_by("user_idx", "item_idx")
        .agg(
            pl.col("weight").sum().alias("weight"),
            pl.len().cast(pl.Int64).alias("count"),
            pl.col("timestamp").max().alias("last_ts"),
        )
        .sort("user_idx", "item_idx")
    )


def item_category_edges(items: pl.DataFrame) -> pl.DataFrame:
    """``item_idx, category[, fine_category]`` for every catalogue item."""
    cols = ["item_idx", "category"] + (["fine_category"] if "fine_category" in items.columns else [])
    return items.select(cols).sort("item_idx")


def _quantiles(values: pl.Series) -> dict[str, float]:
    if values.len() == 0:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    return {
        "p50": float(values.quantile(0.5, "nearest") or 0),
        "p90": float(values.quantile(0.9, "nearest") or 0),
        "p99": float(values.quantile(0.99, "nearest") or 0),
        "max": float(values.max() or 0),
        "mean": float(values.mean() or 0),
    }


def graph_stats(
    n_users: int, n_items: int, item_item: pl.DataFrame, user_item: pl.DataFrame, n_train: int, n_test: int
) -> dict[str, Any]:
    """Node and edge counts plus degree quantiles of the item–item and user–item graphs."""
    ends = pl.concat([item_item.select(pl.col("src").alias("i")), item_item.select(pl.col("dst").alias("i"))])
    deg = ends.group_by("i").len().get_column("len")
    full = pl.concat([deg.cast(pl.Int64), pl.Series([0] * (n_items - deg.len()), dtype=pl.Int64)])
    user_deg = user_item.group_by("user_idx").len().get_column("len").cast(pl.Int64)
    return {
        "users": n_users,
        "items": n_items,
        "events_train": n_train,
        "events_heldout": n_test,
        "item_item_edges": item_item.height,
        "item_item_weight": int(item_item.get_column("weight").sum() or 0),
        "user_item_edges": user_item.height,
        "isolated_items": int(n_items - deg.len()),
        "item_degree": _quantiles(full),
        "user_degree": _quantiles(user_deg),
    }
