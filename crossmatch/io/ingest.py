"""Ingest: validate raw tables, drop exact duplicates, index ids and sort logs per source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from crossmatch.errors import InputError
from crossmatch.io.checks import FILE, ROW
from crossmatch.io.readers import Table
from crossmatch.io.validate import check_items, check_logs, load_categories, load_taxonomy

DuplicatePolicy = Literal["drop", "error"]
LOG_KEY = ("source", "user_id", "item_id", "timestamp", "weight")
_ITEM_CORE = ("item_id", "category", "title", "fine_category")


@dataclass
class IngestResult:
    """Per-source normalised tables plus what was set aside and a report."""

    logs: dict[str, pl.DataFrame]  # user_idx, item_idx, user_id, item_id, timestamp, weight[, category]
    items: dict[str, pl.DataFrame]  # item_idx, item_id, category[, title, fine_category], features
    categories: pl.DataFrame
    taxonomy: pl.DataFrame | None
    quarantined: pl.DataFrame
    report: dict[str, Any] = field(default_factory=dict)


def _concat(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(list(frames), how="diagonal_relaxed") if frames else pl.DataFrame()


def _drop_duplicates(logs: pl.DataFrame, policy: DuplicatePolicy) -> tuple[pl.DataFrame, int]:
    key = [c for c in (*LOG_KEY, "category") if c in logs.columns]
    later = pl.int_range(pl.len()).over(key) > 0
    flagged = logs.with_columns(later.alias("_dup"))
    n_dup = int(flagged.get_column("_dup").sum())
    if n_dup and policy == "error":
        first = flagged.filter(pl.col("_dup"))
        raise InputError(
            "exact duplicate rows (same source, user_id, item_id, timestamp and weight); "
            "set ingest.duplicates: drop to remove them",
            file=str(first.get_column(FILE)[0]),
            rows=first.get_column(ROW).head(5).to_list(),
            n_bad=n_dup,
        )
    return flagged.filter(~pl.col("_dup")).drop("_dup"), n_dup


def _source_items(items_all: pl.DataFrame, source: str) -> pl.DataFrame:
    part = items_all.filter(pl.col("source") == source).drop("source", FILE, ROW)
    # In a single multi-source catalogue, features of other sources are all-null here: drop them.
    keep = [c for c in part.columns if c in _ITEM_CORE or part.get_column(c).null_count() < part.height]
    return index_items(part.select(keep))


def index_items(items: pl.DataFrame) -> pl.DataFrame:
    """Assign ``item_idx`` = rank of ``item_id`` within the source (deterministic, dense, Int32)."""
    return items.sort("item_id").with_columns(pl.int_range(pl.len(), dtype=pl.Int32).alias("item_idx")).select(
        "item_idx", pl.exclude("item_idx")
    )


def normalise_logs(logs: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Attach dense ``user_idx``/``item_idx`` and sort by user, then time, then item."""
    users = logs.select(pl.col("user_id").unique().sort()).with_columns(
        pl.int_range(pl.len(), dtype=pl.Int32).alias("user_idx")
    )
    out = logs.join(users, on="user_id", how="left").join(
        items.select("item_id", "item_idx"), on="item_id", how="left"
    )
    cols = ["user_idx", "item_idx", "user_id", "item_id", "timestamp", "weight"]
    if "category" in out.columns:
        cols.append("category")
    return out.select(cols).sort("user_idx", "timestamp", "item_idx")


def ingest(
    *,
    log_tables: Sequence[Table],
    item_tables: Sequence[Table],
    category_table: Table,
    taxonomy_table: Table | None = None,
    sources: Sequence[str] | None = None,
    quarantine: bool = False,
    duplicates: DuplicatePolicy = "drop",
) -> IngestResult:
    """Validate and normalise raw inputs (the ``ingest`` stage's computation).

    Args:
        log_tables: interaction logs; may be empty for catalogue-only data (e.g. Walmart–Amazon).
        item_tables: item catalogues.
        category_table: the shared coarse categories.
        taxonomy_table: optional per-source fine categories.
        sources: the expected sources; ``None`` accepts whatever the item catalogues hold.
        quarantine: set bad rows aside (with their reason) instead of failing.
        duplicates: ``drop`` exact duplicate log rows (counted in the report) or fail on them.

    Raises:
        InputError: file-level problems, row-level problems when not quarantining, and
            a configured source that ends up with no rows.
    """
    categories = load_categories(category_table)
    if not categories:
        raise InputError("the category table lists no categories", file=category_table.file)
    taxonomy = load_taxonomy(taxonomy_table, categories) if taxonomy_table is not None else None
    fine = None
    if taxonomy is not None:
        fine = {s: set(g.get_column("fine_category").to_list()) for (s,), g in taxonomy.group_by("source")}
    known = list(sources) if sources is not None else None

    item_results = [
        check_items(t, known_sources=known, categories=categories, fine_categories=fine, quarantine=quarantine)
        for t in item_tables
    ]
    items_all = _concat([r.clean for r in item_results])
    if items_all.height == 0:
        raise InputError("no valid item rows in the item catalogue(s)", file=", ".join(t.file for t in item_tables))
    present_sources = sorted(items_all.get_column("source").unique().to_list())
    expected = known if known is not None else present_sources
    for s in expected:
        if s not in present_sources:
            raise InputError(
                f"source '{s}' has no items in the catalogue(s)", file=", ".join(t.file for t in item_tables)
            )
    items = {s: _source_items(items_all, s) for s in expected}
    item_ids = {s: f.get_column("item_id").to_list() for s, f in items.items()}

    log_results = [
        check_logs(t, known_sources=expected, categories=categories, items=item_ids, quarantine=quarantine)
        for t in log_tables
    ]
    quarantined = _concat([r.quarantined for r in item_results] + [r.quarantined for r in log_results])
    report: dict[str, Any] = {"sources": {}, "files": [t.file for t in (*log_tables, *item_tables)]}
    logs_out: dict[str, pl.DataFrame] = {}
    if log_tables:
        logs_all = _concat([r.clean for r in log_results])
        rows_in: dict[str, int] = {}
        for t in log_tables:
            if t.source is not None:
                rows_in[t.source] = rows_in.get(t.source, 0) + t.frame.height
            elif "source" in t.frame.columns:
                counts = t.frame.group_by(pl.col("source").cast(pl.String)).len()
                for s, n in counts.iter_rows():
                    rows_in[str(s)] = rows_in.get(str(s), 0) + int(n)
        for s in expected:
            part = logs_all.filter(pl.col("source") == s)
            if part.height == 0:
                raise InputError(
                    f"source '{s}' has no valid log rows", file=", ".join(t.file for t in log_tables)
                )
            part, n_dup = _drop_duplicates(part, duplicates)
            logs_out[s] = normalise_logs(part.drop(FILE, ROW), items[s])
            report["sources"][s] = {
                "rows_in": rows_in.get(s, 0),
                "duplicates_dropped": n_dup,
                "rows_out": logs_out[s].height,
                "users": int(logs_out[s].get_column("user_idx").n_unique()),
                "items": items[s].height,
                "items_with_interactions": int(logs_out[s].get_column("item_idx").n_unique()),
            }
    else:
        for s in expected:
            report["sources"][s] = {"items": items[s].height}
    by_reason = (
        {r: int(n) for r, n in quarantined.group_by("reason").len().sort("reason").iter_rows()}
        if quarantined.height
        else {}
    )
    report["quarantined_rows"] = quarantined.height
    report["quarantined_by_reason"] = by_reason
    report["categories"] = len(categories)
    return IngestResult(
        logs=logs_out,
        items=items,
        categories=pl.DataFrame({"category": categories}),
        taxonomy=taxonomy,
        quarantined=quarantined,
        report=report,
    )
