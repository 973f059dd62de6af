"""What a set of input files holds, from their headers and source columns (``crossmatch init``).

:func:`inspect_inputs` opens the logs, item catalogues, category table and optional taxonomy lazily (the
readers' file-level checks: missing, empty, unparseable, repeated column names), checks the column contracts
of :mod:`crossmatch.io.schema` with ingest's own messages, and finds the sources: the ``source`` column's
values, or the file names of a folder with one file per source. Row-level rules (ids, timestamps, weights,
categories) are ingest's: they run in the pipeline's first stage, over every row.

It also reports which item columns the ICPA model reads as features (``cat_*`` and ``num_*``: see
:func:`feature_columns`), so a user learns before training that a column named ``brand`` is kept but unused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from crossmatch.errors import InputError, shorten
from crossmatch.io.checks import missing_columns_error
from crossmatch.io.readers import LazyTable, scan_table, scan_tables
from crossmatch.io.rules import unsafe_source_name
from crossmatch.io.schema import (
    CATEGORICAL_PREFIX,
    CATEGORY_REQUIRED,
    DENSE_PREFIX,
    ITEM_OPTIONAL,
    ITEM_REQUIRED,
    LOG_REQUIRED,
    TAXONOMY_REQUIRED,
)


@dataclass(frozen=True)
class InputSummary:
    """The sources and columns found in a set of input files."""

    sources: list[str]  # sources with logs, in name order (every one has items too)
    catalogue_only: list[str]  # sources with items but no logs (ingest, given logs, rejects them)
    item_columns: list[str]  # union over the item files
    has_title: bool
    has_fine_category: bool
    features: dict[str, list[str]]  # {"categorical": [...], "dense": [...], "unused": [...]}
    log_rows: int
    n_categories: int  # distinct names in the category table


def feature_columns(columns: Sequence[str]) -> dict[str, list[str]]:
    """Item columns by role: ``cat_*`` categorical and ``num_*`` dense features of the ICPA model; every
    other non-schema column is kept by ingest (blocking can block on text columns) but is no ICPA feature."""
    extra = [c for c in columns if c not in (*ITEM_REQUIRED, *ITEM_OPTIONAL)]
    return {"categorical": [c for c in extra if c.startswith(CATEGORICAL_PREFIX)],
            "dense": [c for c in extra if c.startswith(DENSE_PREFIX)],
            "unused": [c for c in extra if not c.startswith((CATEGORICAL_PREFIX, DENSE_PREFIX))]}


def _sources_of(tables: Sequence[LazyTable], what: str) -> set[str]:
    """Sources of each file: its own (per-source file) or the distinct values of its ``source`` column."""
    found: set[str] = set()
    for t in tables:
        if t.source is not None:
            found.add(t.source)
            continue
        names = t.frame.collect_schema().names()
        if "source" not in names:
            raise InputError(f"{what}: no 'source' column; give a folder with one file per source "
                             f"(<source>.csv) or add the column; found {names}", file=t.file, column="source")
        values = t.frame.select(pl.col("source").cast(pl.String).unique()).collect(engine="streaming")
        found.update(v for v in values.get_column("source").to_list() if v is not None)
    return found


def _check_columns(tables: Sequence[LazyTable], required: Sequence[str]) -> list[str]:
    """Every file has the required columns (``source`` unless per-source); returns the union of columns."""
    union: list[str] = []
    for t in tables:
        names = t.frame.collect_schema().names()
        err = missing_columns_error(t.file, names, [*required, *(["source"] if t.source is None else [])])
        if err:
            raise err
        union += [c for c in names if c not in union]
    return union


def _unsafe(sources: set[str], file: str) -> None:
    bad = sorted(s for s in sources if unsafe_source_name(s))
    if bad:
        raise InputError(f"source name {shorten(bad[0], 60)!r} cannot be a folder name (it is empty, starts with "
                         "'.', or holds '/', '\\', blanks or control characters)", file=file, column="source")


def inspect_inputs(*, logs: str | Path, items: str | Path, categories: str | Path,
                   taxonomy: str | Path | None = None) -> InputSummary:
    """Open the inputs lazily, check their columns and find their sources (see the module doc).

    Raises:
        InputError: a file-level problem, a missing required column, an unsafe source name, a source with
            logs but no items, fewer than one source with logs.
    """
    log_tables, item_tables = scan_tables(logs), scan_tables(items)
    _check_columns(log_tables, LOG_REQUIRED)
    item_columns = _check_columns(item_tables, ITEM_REQUIRED)
    cat_table = scan_table(categories)
    err = missing_columns_error(cat_table.file, cat_table.frame.collect_schema().names(), CATEGORY_REQUIRED)
    if err:
        raise err
    if taxonomy is not None:
        tax = scan_table(taxonomy)
        err = missing_columns_error(tax.file, tax.frame.collect_schema().names(), TAXONOMY_REQUIRED)
        if err:
            raise err
    log_sources, item_sources = _sources_of(log_tables, "logs"), _sources_of(item_tables, "items")
    _unsafe(log_sources, str(logs))
    _unsafe(item_sources, str(items))
    no_items = sorted(log_sources - item_sources)
    if no_items:
        raise InputError(f"source(s) {no_items} have logs but no items (item sources: {sorted(item_sources)})",
                         file=str(items))
    if not log_sources:
        raise InputError("no source has logs", file=str(logs))
    return InputSummary(
        sources=sorted(log_sources), catalogue_only=sorted(item_sources - log_sources), item_columns=item_columns,
        has_title="title" in item_columns, has_fine_category="fine_category" in item_columns,
        features=feature_columns(item_columns), log_rows=sum(t.height for t in log_tables),
        n_categories=int(cat_table.frame.select(pl.col("category").n_unique()).collect().item()),
    )
