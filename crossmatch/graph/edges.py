"""Per-source graph tables: hold-out split, user–item and item–category edges, statistics."""

from __future__ import annotations

from typing import Any

import polars as pl

from crossmatch.errors import ConfigError


def split_holdout(logs: pl.DataFrame, fraction: float, *, min_per_user: int = 0,
                  min_train: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Time-based split: the last ``max(floor(fraction · n_u), min_per_user)`` interactions of each user.

    ``logs`` must be sorted by user, then time. Held-out rows never enter any edge table,
    so evaluation on them is leak-free (ALGORITHMS.md §2.2 step 4; XMarket protocol).
    ``min_per_user`` holds out at least that many events of every user who keeps ``min_train``
    events for training (on 5-core XMarket ``floor(0.1 · n_u)`` is 0 for most users).
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"edges: holdout_fraction must lie in [0, 1), got {fraction}")
    if fraction == 0.0 and min_per_user == 0:
        return logs, logs.head(0)
    pos = pl.int_range(pl.len()).over("user_idx")
    n = pl.len().over("user_idx").cast(pl.Int64)
    held = (n.cast(pl.Float64) * fraction).floor().cast(pl.Int64)
    if min_per_user > 0:
        held = pl.when(n - min_train >= min_per_user).then(pl.max_horizontal(held, pl.lit(min_per_user)))\
            .otherwise(held)
    test = pos >= n - held
    flagged = logs.with_columns(test.alias("_test"))
    return flagged.filter(~pl.col("_test")).drop("_test"), flagged.filter(pl.col("_test")).drop("_test")


def split_train_valid_test(logs: pl.DataFrame, test_fraction: float, valid_fraction: float, *,
                           min_per_user: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Per-user, time-ordered train / validation / test split (issue 10 protocol).

    The last ``test_fraction`` of each user's events is the test set, the ``valid_fraction``
    before it the validation set (each at least ``min_per_user`` events when the user keeps one
    training event). Settings are chosen on validation; test is reported.
    """
    rest, test = split_holdout(logs, test_fraction, min_per_user=min_per_user)
    if valid_fraction == 0.0 and min_per_user == 0:
        return rest, rest.head(0), test
    # The validation share is of the user's whole history, not of what is left after the test.
    n_all = logs.group_by("user_idx").len().rename({"len": "_n"})
    r = rest.join(n_all, on="user_idx", how="left", maintain_order="left")
    pos = pl.int_range(pl.len()).over("user_idx")
    n = pl.len().over("user_idx").cast(pl.Int64)
    held = (pl.col("_n").cast(pl.Float64) * valid_fraction).floor().cast(pl.Int64)
    if min_per_user > 0:
        held = pl.when(n - 1 >= min_per_user).then(pl.max_horizontal(held, pl.lit(min_per_user))).otherwise(held)
    held = pl.min_horizontal(held, n - 1)
    flagged = r.with_columns((pos >= n - held).alias("_v")).drop("_n")
    return flagged.filter(~pl.col("_v")).drop("_v"), flagged.filter(pl.col("_v")).drop("_v"), test


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


def _number(x: Any) -> float:
    """A numeric Series' max / mean as a float (0 when empty or all null); polars types it as any
    Python literal (dates, strings ...) since a Series is not typed by its dtype."""
    return float(x or 0)


def _quantiles(values: pl.Series) -> dict[str, float]:
    if values.len() == 0:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    return {
        "p50": float(values.quantile(0.5, "nearest") or 0),
        "p90": float(values.quantile(0.9, "nearest") or 0),
        "p99": float(values.quantile(0.99, "nearest") or 0),
        "max": _number(values.max()),
        "mean": _number(values.mean()),
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
