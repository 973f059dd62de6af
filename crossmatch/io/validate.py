"""Schema and row validation of logs, item catalogues and category tables (ingest's checks).

Besides types and references, every id and name passes the plausibility rules of
:mod:`crossmatch.io.rules`; category names are compared and written in Unicode NFC, so two names that
look the same are the same name; an item's fine category must sit under the item's coarse category,
and a log row's category must be its item's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import polars as pl

from crossmatch.errors import InputError, shorten
from crossmatch.io.checks import (
    ROW,
    Check,
    CheckResult,
    Problem,
    missing_columns_error,
    run_checks,
    run_checks_lazy,
    with_row_numbers,
)
from crossmatch.io.coerce import as_number, as_text, as_timestamp
from crossmatch.io.readers import REPLACEMENT_CHAR, LazyTable, Table
from crossmatch.io.rules import (
    Rules,
    composite_key,
    date_forms,
    fine_parent_check,
    keys_of,
    mixed_dates_check,
    name_checks,
    nfc,
    source_name_check,
    unsafe_source_name,
    weight_check,
    year_check,
)
from crossmatch.io.schema import (
    CATEGORICAL_PREFIX,
    CATEGORY_REQUIRED,
    DENSE_PREFIX,
    ITEM_OPTIONAL,
    ITEM_REQUIRED,
    LOG_OPTIONAL,
    LOG_REQUIRED,
    TAXONOMY_REQUIRED,
)


def _utf8_checks(frame: pl.DataFrame | pl.Schema) -> list[Check]:
    schema = frame if isinstance(frame, pl.Schema) else frame.schema
    return [
        Check(
            "invalid_utf8",
            col,
            "contains bytes that are not valid UTF-8",
            pl.col(col).str.contains(REPLACEMENT_CHAR, literal=True),
        )
        for col, dtype in schema.items()
        if dtype == pl.String and not col.startswith("_")
    ]


def _source_checks(
    table: Table | LazyTable, frame: pl.DataFrame | pl.LazyFrame, known: Collection[str] | None, rules: Rules
) -> tuple[pl.DataFrame | pl.LazyFrame, list[Check]]:
    """Adds the typed ``_source`` column and its checks (per-file source or ``source`` column)."""
    checks: list[Check] = []
    schema = frame.collect_schema()
    if table.source is not None and unsafe_source_name(table.source):
        raise InputError(f"the source name '{shorten(table.source, 60)}' taken from the file name cannot be a "
                         "folder name (it starts with '.' or holds a separator or blanks)", file=table.file)
    if "source" in schema:
        frame = frame.with_columns(as_text("source", schema["source"], file=table.file).alias("_source"))
        checks.append(Check("null_source", "source", "source is missing", pl.col("_source").is_null()))
        checks += [*name_checks("_source", "source", rules), source_name_check("_source", "source")]
        if table.source is not None:
            checks.append(
                Check(
                    "source_mismatch",
                    "source",
                    f"source differs from the file's source '{table.source}'",
                    pl.col("_source") != table.source,
                )
            )
    else:
        frame = frame.with_columns(pl.lit(table.source, dtype=pl.String).alias("_source"))
    if known is not None:
        known_list = sorted(known)
        checks.append(
            Check(
                "unknown_source",
                "source" if "source" in schema else None,
                f"unknown source (known sources: {known_list})",
                pl.col("_source").is_not_null() & ~pl.col("_source").is_in(known_list),
            )
        )
    return frame, checks


def _unknown_category(column: str, categories: Collection[str]) -> Check:
    return Check(
        "unknown_category",
        "category",
        "category is not in the category table",
        pl.col(column).is_not_null() & ~pl.col(column).is_in(sorted(categories)),
    )


def _unknown_per_source(
    reason: str, column: str, typed: str, known: Mapping[str, Collection[str] | pl.Series], message: str
) -> Check:
    """``typed`` (a per-source value such as an item id) must be known for its row's source."""
    parts = [values.cast(pl.String) if isinstance(values, pl.Series) else pl.Series(sorted(values), dtype=pl.String)
             for values in known.values()]
    keys = pl.concat([(f"{s}\x1f" + part) for s, part in zip(known, parts, strict=True)]) if parts else \
        pl.Series([], dtype=pl.String)
    key = pl.concat_str([pl.col("_source"), pl.lit("\x1f"), pl.col(typed)])
    return Check(reason, column, message, pl.col(typed).is_not_null() & ~key.is_in(keys.implode()))


@dataclass
class LogCheck:
    """A validated logs table: its clean rows (lazy), the rows set aside, the failed checks."""

    clean: pl.LazyFrame  # source, user_id, item_id, timestamp, weight[, category], _row
    quarantined: pl.DataFrame  # _file, _row, reason, then the raw columns as text
    problems: list[Problem] = field(default_factory=list)


def check_logs(
    table: Table | LazyTable,
    *,
    known_sources: Collection[str] | None,
    categories: Collection[str] | None = None,
    items: Mapping[str, Collection[str] | pl.Series] | None = None,
    quarantine: bool = False,
    item_categories: Mapping[str, pl.DataFrame] | None = None,
    rules: Rules | None = None,
) -> LogCheck:
    """Validate and type one logs table with streaming queries (the table is never held whole).

    Returns the clean rows as a lazy frame with columns ``source, user_id, item_id, timestamp,
    weight[, category], _row``. See :mod:`crossmatch.io.schema` for the contract.
    ``item_categories`` (per source: ``item_id, category``) makes a row's category that is not its
    item's an error; ``rules``: the plausibility bounds (default :class:`~crossmatch.io.rules.Rules`).

    Raises:
        InputError: file-level problems always; row-level problems unless ``quarantine``.
    """
    lazy = table if isinstance(table, LazyTable) else LazyTable(table.file, table.source, table.frame.lazy(),
                                                                  table.frame.height)
    schema = lazy.frame.collect_schema()
    required = list(LOG_REQUIRED) + ([] if lazy.source is not None else ["source"])
    err = missing_columns_error(lazy.file, schema.names(), required)
    if err:
        raise err
    rules = rules or Rules()
    frame: pl.LazyFrame = lazy.frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    typed, checks = _source_checks(lazy, frame, known_sources, rules)
    assert isinstance(typed, pl.LazyFrame)
    frame = typed
    checks = _utf8_checks(schema) + checks
    file = lazy.file
    frame = frame.with_columns(
        as_text("user_id", schema["user_id"], file=file).alias("_user"),
        as_text("item_id", schema["item_id"], file=file).alias("_item"),
        as_timestamp("timestamp", schema["timestamp"], file=file).alias("_ts"),
        as_number("weight", schema["weight"], file=file).alias("_w"),
    )
    ts_raw = pl.col("timestamp")
    ts_missing = ts_raw.is_null() if schema["timestamp"] != pl.String else (ts_raw.is_null() | (ts_raw.str.strip_chars() == ""))
    w_raw = pl.col("weight")
    w_missing = w_raw.is_null() if schema["weight"] != pl.String else (w_raw.is_null() | (w_raw.str.strip_chars() == ""))
    checks += [
        Check("null_id", "user_id", "user_id is missing or empty", pl.col("_user").is_null()),
        *name_checks("_user", "user_id", rules),
        Check("null_id", "item_id", "item_id is missing or empty", pl.col("_item").is_null()),
        *name_checks("_item", "item_id", rules),
        Check("missing_timestamp", "timestamp", "timestamp is missing", ts_missing),
        Check(
            "bad_timestamp",
            "timestamp",
            "timestamp cannot be parsed (expected ISO date/datetime or epoch seconds; NaN is not a time)",
            ~ts_missing & pl.col("_ts").is_null(),
        ),
        year_check("_ts", rules),
    ]
    if schema["timestamp"] == pl.String:
        # Whether dates and date-times are mixed is a fact about the whole column: one streaming pass
        # over that column (the row checks then flag the rarer form's rows).
        date_only, with_time = date_forms("timestamp")
        n_date, n_time = lazy.frame.select(date_only.sum().alias("d"), with_time.sum().alias("t")).collect(
            engine="streaming").row(0)
        if n_date and n_time:
            checks.append(mixed_dates_check("timestamp", int(n_date), int(n_time)))
    checks += [
        Check("missing_weight", "weight", "weight is missing", w_missing),
        Check("bad_dtype", "weight", "weight is not a number", ~w_missing & pl.col("_w").is_null()),
        Check("nonfinite_weight", "weight", "weight is NaN or infinite", pl.col("_w").is_not_null() & ~pl.col("_w").is_finite()),
        Check("negative_weight", "weight", "weight is negative", pl.col("_w") < 0),
        weight_check("_w", rules),
    ]
    has_cat = "category" in schema
    if has_cat:
        frame = frame.with_columns(nfc(as_text("category", schema["category"], file=file)).alias("_cat"))
        checks.append(Check("null_category", "category", "category is missing", pl.col("_cat").is_null()))
        checks += name_checks("_cat", "category", rules)
        if categories is not None:
            checks.append(_unknown_category("_cat", categories))
    if items is not None:
        unknown = _unknown_per_source("unknown_item", "item_id", "_item", items,
                                      "item_id is not in that source's item catalogue")
        checks.append(unknown)
        if has_cat and item_categories is not None:
            triples = keys_of(item_categories, ["item_id", "category"])
            checks.append(Check(
                "category_mismatch", "category", "category differs from the item's category in the item catalogue",
                pl.col("_cat").is_not_null() & ~unknown.bad.fill_null(True)
                & ~composite_key("_source", "_item", "_cat").is_in(triples.implode()),
            ))
    raw_cols = [c for c in (*LOG_OPTIONAL, *LOG_REQUIRED) if c in schema]
    kept, quarantined, problems = run_checks_lazy(frame, checks, file=file, quarantine=quarantine, raw_columns=raw_cols)
    out_cols = [
        pl.col("_source").alias("source"),
        pl.col("_user").alias("user_id"),
        pl.col("_item").alias("item_id"),
        pl.col("_ts").alias("timestamp"),
        pl.col("_w").alias("weight"),
    ]
    if has_cat:
        out_cols.append(pl.col("_cat").alias("category"))
    return LogCheck(kept.select(*out_cols, pl.col(ROW)), quarantined, problems)


def _typed_features(raw: pl.DataFrame, features: list[str]) -> tuple[dict[str, pl.Expr], list[Check], list[pl.Expr]]:
    """The ICPA feature columns of a text (CSV) catalogue, typed as a parquet one would be: ``num_*`` numbers
    (text that is no number: a bad row) and ``cat_*`` integer codes (integer text as is; any other text
    encoded by the rank of its value, 0 first). Other feature columns pass as they are."""
    parsed: dict[str, pl.Expr] = {}
    checks: list[Check] = []
    out: list[pl.Expr] = []
    for c in features:
        if raw.schema[c] != pl.String or not c.startswith((CATEGORICAL_PREFIX, DENSE_PREFIX)):
            out.append(pl.col(c))
        elif c.startswith(DENSE_PREFIX):
            parsed[f"_num_{c}"] = as_number(c, pl.String(), file="")
            checks.append(Check("bad_number", c, "dense feature (num_*) is not a number",
                                pl.col(f"_num_{c}").is_null() & pl.col(c).str.strip_chars().ne("")))
            out.append(pl.col(f"_num_{c}").alias(c))
        else:
            text = raw.get_column(c).str.strip_chars()
            ints = text.str.to_integer(strict=False)
            as_ints = not (ints.is_null() & text.is_not_null() & text.ne("")).any()
            code = (pl.col(c).str.strip_chars().str.to_integer(strict=False) if as_ints
                    else pl.col(c).str.strip_chars().rank("dense") - 1)
            out.append(code.cast(pl.Int64).alias(c))
    return parsed, checks, out


def check_items(
    table: Table,
    *,
    known_sources: Collection[str] | None,
    categories: Collection[str] | None = None,
    fine_categories: Mapping[str, Collection[str]] | None = None,
    quarantine: bool = False,
    taxonomy: pl.DataFrame | None = None,
    rules: Rules | None = None,
) -> CheckResult:
    """Validate one item catalogue: ids present and unique per source, categories known, each fine
    category under one coarse category (the taxonomy's, when given), features of scalar types.

    Returns clean rows with ``source, item_id, category[, title, fine_category]`` then the
    feature columns, in file order.
    """
    rules = rules or Rules()
    raw = table.frame
    required = list(ITEM_REQUIRED) + ([] if table.source is not None else ["source"])
    err = missing_columns_error(table.file, raw.columns, required)
    if err:
        raise err
    features = [c for c in raw.columns if c not in (*ITEM_REQUIRED, *ITEM_OPTIONAL)]
    for c in features:
        if isinstance(raw.schema[c], (pl.List, pl.Array, pl.Struct, pl.Object)):
            raise InputError(f"feature column has the nested type {type(raw.schema[c]).__name__}; a feature must be "
                             "a number, text or true/false (one value per item)", file=table.file, column=c)
    typed, checks = _source_checks(table, with_row_numbers(raw, table.file), known_sources, rules)
    assert isinstance(typed, pl.DataFrame)
    parsed, feature_checks, feature_cols = _typed_features(raw, features)
    frame = typed.with_columns(**parsed)
    checks = _utf8_checks(raw) + checks + feature_checks
    frame = frame.with_columns(
        as_text("item_id", raw.schema["item_id"], file=table.file).alias("_item"),
        nfc(as_text("category", raw.schema["category"], file=table.file)).alias("_cat"),
    )
    checks += [
        Check("null_id", "item_id", "item_id is missing or empty", pl.col("_item").is_null()),
        *name_checks("_item", "item_id", rules),
        Check(
            "duplicate_item",
            "item_id",
            "item_id appears more than once in the catalogue",
            pl.col("_item").is_not_null() & (pl.int_range(pl.len()).over("_source", "_item") > 0),
        ),
        Check("null_category", "category", "category is missing", pl.col("_cat").is_null()),
        *name_checks("_cat", "category", rules),
    ]
    if categories is not None:
        checks.append(_unknown_category("_cat", categories))
    if "fine_category" in raw.columns:
        frame = frame.with_columns(
            nfc(as_text("fine_category", raw.schema["fine_category"], file=table.file)).alias("_fine"))
        checks += name_checks("_fine", "fine_category", rules)
        if fine_categories is not None:
            checks.append(
                _unknown_per_source(
                    "unknown_fine_category", "fine_category", "_fine", fine_categories,
                    "fine_category is not in that source's taxonomy",
                )
            )
        checks.append(fine_parent_check(taxonomy))
    raw_cols = [c for c in ("source", "item_id", "category", "fine_category") if c in raw.columns]
    kept, quarantined, problems = run_checks(
        frame, checks, file=table.file, quarantine=quarantine, raw_columns=raw_cols
    )
    head = [pl.col("_source").alias("source"), pl.col("_item").alias("item_id"), pl.col("_cat").alias("category")]
    if "title" in raw.columns:
        head.append(pl.col("title").cast(pl.String).fill_null(""))
    if "fine_category" in raw.columns:
        head.append(pl.col("_fine").alias("fine_category"))
    clean = kept.select(*head, *feature_cols, pl.col("_file"), pl.col(ROW))
    return CheckResult(clean, quarantined, problems)


def load_categories(table: Table, rules: Rules | None = None) -> list[str]:
    """The shared coarse categories (Unicode NFC); every one present, non-empty and listed once."""
    rules = rules or Rules()
    raw = table.frame
    err = missing_columns_error(table.file, raw.columns, CATEGORY_REQUIRED)
    if err:
        raise err
    frame = with_row_numbers(raw, table.file).with_columns(
        nfc(as_text("category", raw.schema["category"], file=table.file)).alias("_cat")
    )
    checks = _utf8_checks(raw) + [
        Check("null_category", "category", "category is missing or empty", pl.col("_cat").is_null()),
        *name_checks("_cat", "category", rules),
        Check(
            "duplicate_category",
            "category",
            "category is listed more than once (names compared in Unicode NFC, so 'é' as one or two code points match)",
            pl.col("_cat").is_not_null() & (pl.int_range(pl.len()).over("_cat") > 0),
        ),
    ]
    kept, _, _ = run_checks(frame, checks, file=table.file, quarantine=False, raw_columns=["category"])
    return kept.get_column("_cat").to_list()


def load_taxonomy(table: Table, categories: Collection[str], rules: Rules | None = None) -> pl.DataFrame:
    """Per-source fine categories, each under a known coarse category (``source, fine_category, category``;
    names in Unicode NFC)."""
    rules = rules or Rules()
    raw = table.frame
    err = missing_columns_error(table.file, raw.columns, TAXONOMY_REQUIRED)
    if err:
        raise err
    frame = with_row_numbers(raw, table.file).with_columns(
        *[(as_text(c, raw.schema[c], file=table.file) if c == "source" else
           nfc(as_text(c, raw.schema[c], file=table.file))).alias(f"_{c}") for c in TAXONOMY_REQUIRED]
    )
    checks = _utf8_checks(raw)
    for c in TAXONOMY_REQUIRED:
        checks += [Check("null_id", c, f"{c} is missing or empty", pl.col(f"_{c}").is_null()),
                   *name_checks(f"_{c}", c, rules)]
    checks += [
        _unknown_category("_category", categories),
        Check(
            "duplicate_fine_category",
            "fine_category",
            "fine_category is listed more than once for its source",
            pl.int_range(pl.len()).over("_source", "_fine_category") > 0,
        ),
    ]
    kept, _, _ = run_checks(frame, checks, file=table.file, quarantine=False, raw_columns=list(TAXONOMY_REQUIRED))
    return kept.select(*[pl.col(f"_{c}").alias(c) for c in TAXONOMY_REQUIRED])
