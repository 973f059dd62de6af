"""Ingest: validate raw tables, drop exact duplicates, index ids and sort logs per source.

Logs go through streaming queries: every check is counted in one pass over each file, and each
source's rows are then collected as a narrow frame of integer codes (user and item ranks, the
category's code, timestamp, weight) before the ids are put back as text for the output. Peak memory
is about one source's output plus its narrow codes, not the whole raw input
(``python -m benchmarks.bench_ingest``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from crossmatch.errors import InputError
from crossmatch.io.checks import FILE, ROW
from crossmatch.io.readers import LazyTable, Table, as_lazy
from crossmatch.io.rules import Rules
from crossmatch.io.validate import LogCheck, check_items, check_logs, load_categories, load_taxonomy

DuplicatePolicy = Literal["drop", "error"]
LOG_KEY = ("source", "user_id", "item_id", "timestamp", "weight")
_ITEM_CORE = ("item_id", "category", "title", "fine_category")
_TABLE = "_table"  # position of a row's logs table in ``log_tables``
LogSink = Callable[[str, pl.DataFrame], None]


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


def _streaming(frame: pl.LazyFrame) -> pl.DataFrame:
    return frame.collect(engine="streaming")


def _rows_in(tables: Sequence[LazyTable]) -> dict[str, int]:
    """Raw log rows per source, before any check (per-file source, or the raw ``source`` column as text)."""
    rows_in: dict[str, int] = {}
    for t in tables:
        if t.source is not None:
            rows_in[t.source] = rows_in.get(t.source, 0) + t.height
        elif "source" in t.frame.collect_schema():
            counts = _streaming(t.frame.group_by(pl.col("source").cast(pl.String)).len())
            for src, n in counts.iter_rows():
                rows_in[str(src)] = rows_in.get(str(src), 0) + int(n)
    return rows_in


def _source_codes(checked: Sequence[LogCheck], source: str, items: pl.DataFrame, categories: list[str],
                  files: Sequence[str]) -> tuple[pl.DataFrame, pl.Series]:
    """One source's clean log rows as integer codes, in file order, and its sorted user ids.

    Columns: ``user_idx`` (rank of the user id), ``item_idx`` (the catalogue's index), ``timestamp``,
    ``weight``[, ``category`` as an enum of the category table], ``_table``, ``_row``.
    """
    parts = [c.clean.filter(pl.col("source") == source).drop("source").with_columns(pl.lit(k, pl.UInt32).alias(_TABLE))
             for k, c in enumerate(checked)]
    rows = pl.concat(parts, how="diagonal_relaxed")
    users = _streaming(rows.select(pl.col("user_id").unique())).get_column("user_id").sort()
    if users.len() == 0:
        raise InputError(f"source '{source}' has no valid log rows", file=", ".join(files))
    cols = [
        pl.col("user_id").cast(pl.Enum(users)).to_physical().cast(pl.Int32).alias("user_idx"),
        pl.col("item_id").cast(pl.Enum(items.get_column("item_id"))).to_physical().cast(pl.Int32).alias("item_idx"),
        pl.col("timestamp"),
        pl.col("weight"),
    ]
    if "category" in rows.collect_schema():
        cols.append(pl.col("category").cast(pl.Enum(categories)))
    return _streaming(rows.select(*cols, pl.col(_TABLE), pl.col(ROW))), users


def _duplicate_mask(codes: pl.DataFrame, key: Sequence[str]) -> pl.Series:
    """True for every later copy of a row (same key as an earlier row).

    A 64-bit hash of the key, sorted, picks the few rows that may repeat; the exact rule (each key's
    first row is kept) then runs on those rows only, so no hash table over all rows' keys is built.
    """
    key = list(key)
    hashes = codes.select(pl.struct(key).hash(seed=0).alias("_h")).get_column("_h")
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1)).unique()
    del ordered
    later = pl.repeat(False, codes.height, dtype=pl.Boolean, eager=True).alias("_dup")
    if repeated.len() == 0:
        return later
    maybe = hashes.is_in(repeated.implode())
    idx = maybe.arg_true()
    sub = codes.select(key).gather(idx)
    sub_later = sub.select((pl.int_range(pl.len()).over(key) > 0).alias("_dup")).get_column("_dup")
    return later.scatter(idx.filter(sub_later), True)


def _drop_duplicates(codes: pl.DataFrame, policy: DuplicatePolicy, files: Sequence[str]) -> tuple[pl.DataFrame, int]:
    """Drop (or reject) later copies of a row; codes stand one-to-one for the ids, so the key is the same."""
    key = [c for c in ("user_idx", "item_idx", "timestamp", "weight", "category") if c in codes.columns]
    later = _duplicate_mask(codes, key)
    n_dup = int(later.sum())
    if n_dup and policy == "error":
        first = codes.filter(later)
        raise InputError(
            "exact duplicate rows (same source, user_id, item_id, timestamp and weight); "
            "set ingest.duplicates: drop to remove them",
            file=files[int(first.get_column(_TABLE)[0])],
            rows=first.get_column(ROW).head(5).to_list(),
            n_bad=n_dup,
        )
    return (codes.filter(~later) if n_dup else codes), n_dup


def _require_repeat_user(codes: pl.DataFrame, source: str, files: Sequence[str]) -> None:
    """Co-occurrence edges come from a user's consecutive events: a source without a user who has two
    (distinct) events would go on with no item-item edge at all and fail, or learn nothing, downstream."""
    if codes.height and int(codes.get_column("user_idx").unique_counts().max() or 0) >= 2:  # type: ignore[arg-type]
        return
    first = codes.head(5)
    raise InputError(
        f"source '{source}' has no user with two or more valid log rows ({codes.height} row(s), one per user), "
        "so no item-item co-occurrence can be built",
        file=files[int(first.get_column(_TABLE)[0])], rows=first.get_column(ROW).to_list(), n_bad=codes.height,
    )


def _decode(codes: pl.DataFrame, users: pl.Series, items: pl.DataFrame) -> pl.DataFrame:
    """The output table of one source from its sorted codes, with the ids back as text."""
    cols = [
        codes.get_column("user_idx"),
        codes.get_column("item_idx"),
        users.gather(codes.get_column("user_idx")).alias("user_id"),
        items.get_column("item_id").gather(codes.get_column("item_idx")).alias("item_id"),
        codes.get_column("timestamp"),
        codes.get_column("weight"),
    ]
    if "category" in codes.columns:
        cols.append(codes.get_column("category").cast(pl.String))
    return pl.DataFrame(cols)


def _owned(quarantined: pl.DataFrame, file_source: str | None, keep: set[str], expected: Sequence[str],
           *, shared: bool) -> pl.DataFrame:
    """The quarantined rows that belong to the sources in ``keep`` (per-file source, else the row's
    ``source`` text), plus the rows of no expected source when ``shared``."""
    if file_source is not None:
        owner = pl.lit(file_source, dtype=pl.String)
    elif "source" in quarantined.columns:
        owner = pl.col("source").str.strip_chars()
    else:
        owner = pl.lit(None, dtype=pl.String)
    no_source = owner.is_null() | ~owner.is_in(list(expected))
    return quarantined.filter(owner.is_in(sorted(keep)).fill_null(False) | (no_source.fill_null(True) & shared))


def tables_for(tables: Sequence[Table | LazyTable], source: str, expected: Sequence[str]) -> list[Table | LazyTable]:
    """The logs tables that may hold rows of ``source``: its own per-source files and every multi-source
    file; files of no expected source go with the first expected source (which reports them)."""
    return [t for t in tables if t.source is None or t.source == source
            or (t.source not in expected and source == expected[0])]


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
    log_tables: Sequence[Table | LazyTable],
    item_tables: Sequence[Table],
    category_table: Table,
    taxonomy_table: Table | None = None,
    sources: Sequence[str] | None = None,
    quarantine: bool = False,
    duplicates: DuplicatePolicy = "drop",
    only: Sequence[str] | None = None,
    sink: LogSink | None = None,
    rules: Rules | None = None,
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
        only: build the outputs (tables, report entries) of these sources only; every given table is
            still checked in full, so errors and quarantined rows do not depend on it. Default: all.
        sink: called with each source's logs table as soon as it is built (which is then not kept in
            the result, so one source's table is in memory at a time). Default: keep them all.
        rules: the plausibility bounds (years, id length, weights, control characters); default
            :class:`~crossmatch.io.rules.Rules`.

    Raises:
        InputError: file-level problems, row-level problems when not quarantining, and
            a configured source that ends up with no rows.
    """
    rules = rules or Rules()
    categories = load_categories(category_table, rules)
    if not categories:
        raise InputError("the category table lists no categories", file=category_table.file)
    taxonomy = load_taxonomy(taxonomy_table, categories, rules) if taxonomy_table is not None else None
    fine = None
    if taxonomy is not None:
        fine = {s: set(g.get_column("fine_category").to_list()) for (s,), g in taxonomy.group_by("source")}
    known = list(sources) if sources is not None else None

    item_results = [
        check_items(t, known_sources=known, categories=categories, fine_categories=fine, quarantine=quarantine,
                    taxonomy=taxonomy, rules=rules)
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
    built = list(expected) if only is None else [s for s in expected if s in set(only)]
    items = {s: _source_items(items_all, s) for s in built}
    # Every source's ids, for the unknown-item check of multi-source files (polars Series, no Python objects).
    item_keys = {s: items[s].get_column("item_id") if s in items else
                 items_all.filter(pl.col("source") == s).get_column("item_id") for s in expected}
    # ... and their categories: a log row's category must be its item's.
    item_cats = {s: items[s].select("item_id", "category") if s in items else
                 items_all.filter(pl.col("source") == s).select("item_id", "category") for s in expected}

    lazy_logs = [as_lazy(t) for t in log_tables]
    log_files = [t.file for t in lazy_logs]
    checked = [
        check_logs(t, known_sources=expected, categories=categories, items=item_keys, quarantine=quarantine,
                   item_categories=item_cats, rules=rules)
        for t in lazy_logs
    ]
    parts = [r.quarantined for r in item_results] + [r.quarantined for r in checked]
    if only is not None:
        owners = [t.source for t in item_tables] + [t.source for t in lazy_logs]
        parts = [_owned(q, o, set(built), expected, shared=bool(expected) and expected[0] in built) for q, o in zip(parts, owners, strict=True)]
    quarantined = _concat(parts)
    report: dict[str, Any] = {"sources": {}, "files": [t.file for t in (*log_tables, *item_tables)]}
    logs_out: dict[str, pl.DataFrame] = {}
    if log_tables:
        rows_in = _rows_in(lazy_logs)
        for s in built:
            codes, users = _source_codes(checked, s, items[s], categories, log_files)
            codes, n_dup = _drop_duplicates(codes, duplicates, log_files)
            _require_repeat_user(codes, s, log_files)
            # The same (unstable) sort on the same keys in the same row order as before: same output.
            codes = codes.drop(_TABLE, ROW).sort("user_idx", "timestamp", "item_idx")
            out = _decode(codes, users, items[s])
            del codes
            report["sources"][s] = {
                "rows_in": rows_in.get(s, 0),
                "duplicates_dropped": n_dup,
                "rows_out": out.height,
                "users": users.len(),
                "items": items[s].height,
                "items_with_interactions": int(out.get_column("item_idx").n_unique()),
            }
            if sink is not None:
                sink(s, out)
            else:
                logs_out[s] = out
            del out
    else:
        for s in built:
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
