"""Plausibility rules of ingest (issue 15): what parses but cannot be meant.

A value can have the right type and still be wrong: epoch *milliseconds* read as seconds land in the
year 55,000; "NULL" is a null that an export wrote as text; a newline inside an id breaks every text
format downstream; a weight of 1e308 turns the summed user–item weights into ``inf``. Each rule is a
:class:`~crossmatch.io.checks.Check` (True = bad row), so it names the file, column and first rows
like every other check. The bounds a user may disagree with are params (:class:`Rules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import polars as pl

from crossmatch.errors import ConfigError
from crossmatch.io.checks import Check

# Spellings of "no value" that exports write as text (compared case-insensitively). "NA" is not here:
# it is a real code (North America, Namibia).
NULL_TOKENS = ("null", "none", "nan", "nat", "nil", "n/a", "#n/a", "<na>", "undefined")
# C0 and C1 control characters (NUL, tab, newline, escape, ...) and the Unicode line/paragraph separators.
CONTROL = r"[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]"


@dataclass(frozen=True)
class Rules:
    """The bounds of the plausibility checks (the ``ingest`` params of the same names)."""

    min_year: int = 1970  # timestamps before this year are rejected (1900, 0001: placeholders)
    max_year: int = 2099  # ... and after it (epoch milliseconds read as seconds: year ~55,000)
    max_id_length: int = 1024  # characters of an id or a name (user, item, source, category)
    max_weight: float = 1e12  # larger weights overflow the summed edge weights
    allow_control_chars: bool = False  # accept control characters (NUL, tab, newline) inside ids

    def __post_init__(self) -> None:
        for key in ("min_year", "max_year", "max_id_length"):
            value = getattr(self, key)
            if type(value) is not int or value < 1:
                raise ConfigError(f"ingest.{key} must be an integer >= 1, got {value!r}")
        if self.min_year > self.max_year:
            raise ConfigError(f"ingest.min_year ({self.min_year}) must not exceed ingest.max_year ({self.max_year})")
        if self.max_year > 9999:  # polars' date parsing and Parquet readers elsewhere stop at year 9999
            raise ConfigError(f"ingest.max_year must be <= 9999, got {self.max_year}")
        w = self.max_weight
        if type(w) not in (int, float) or not 0 < w < float("inf"):
            raise ConfigError(f"ingest.max_weight must be a positive finite number, got {w!r}")
        if type(self.allow_control_chars) is not bool:
            raise ConfigError(f"ingest.allow_control_chars must be true or false, got {self.allow_control_chars!r}")


def name_checks(typed: str, column: str, rules: Rules) -> list[Check]:
    """Checks of an id or a name (``typed``: its parsed text column; ``column``: the column to name)."""
    c = pl.col(typed)
    checks = [
        Check("null_token", column, f"{column} is a null placeholder written as text ('NULL', 'NaN', 'None', ...)",
              c.str.to_lowercase().is_in(list(NULL_TOKENS))),
        Check("id_too_long", column, f"{column} is longer than {rules.max_id_length} characters (ingest.max_id_length)",
              c.str.len_chars() > rules.max_id_length),
    ]
    if not rules.allow_control_chars:
        checks.append(Check(
            "control_chars", column,
            f"{column} contains control characters (NUL, tab, newline, ...); "
            "set ingest.allow_control_chars: true to keep them",
            c.str.contains(CONTROL)))
    return checks


def source_name_check(typed: str, column: str | None) -> Check:
    """A source name becomes a folder name: no path separators, no leading dot (``..``, hidden folders)."""
    c = pl.col(typed)
    return Check("unsafe_source_name", column,
                 "source name cannot be a folder name (it holds '/' or '\\', or starts with '.')",
                 c.str.contains(r"[/\\]") | c.str.starts_with("."))


def unsafe_source_name(name: str) -> bool:
    """:func:`source_name_check` for one name (params, ``--source``, a file name), plus blanks at either end,
    control characters and the empty name."""
    control = any(ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029" for ch in name)
    return not name or "/" in name or "\\" in name or name.startswith(".") or name.strip() != name or control


def year_check(typed: str, rules: Rules) -> Check:
    """Timestamps outside ``[min_year, max_year]`` (``typed``: the parsed UTC datetime column)."""
    year = pl.col(typed).dt.year()
    return Check(
        "implausible_timestamp", "timestamp",
        f"timestamp is outside the years {rules.min_year}-{rules.max_year} (ingest.min_year / ingest.max_year); "
        "numbers are read as epoch seconds: epoch milliseconds land in the year ~55,000",
        pl.col(typed).is_not_null() & ((year < rules.min_year) | (year > rules.max_year)),
    )


def weight_check(typed: str, rules: Rules) -> Check:
    """Finite weights above ``max_weight`` (their sums over a user's events overflow)."""
    w = pl.col(typed)
    return Check("weight_too_large", "weight",
                 f"weight is larger than {rules.max_weight:g} (ingest.max_weight; summed weights would overflow)",
                 w.is_finite() & (w > rules.max_weight))


DATE_ONLY = r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}$"


def date_forms(raw: str) -> tuple[pl.Expr, pl.Expr]:
    """(date-only, date-time) flags of a text timestamp column: ISO dates vs ISO date-times."""
    s = pl.col(raw).str.strip_chars()
    date_only = s.str.contains(DATE_ONLY)
    with_time = s.str.contains(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}[T ]\d")
    return date_only, with_time


def mixed_dates_check(raw: str, n_date: int, n_time: int) -> Check:
    """Flags the rarer form when a text column holds both dates and date-times: the date-only rows lose
    their time of day, sort before every event of their day and may collapse into duplicates."""
    date_only, with_time = date_forms(raw)
    fewer_dates = n_date <= n_time
    return Check(
        "mixed_timestamp_forms", "timestamp",
        f"timestamp mixes date-only values ({n_date} row(s)) and date-times ({n_time} row(s)); a date has no time of "
        f"day, so give every row the same form (rows listed: the {'date-only' if fewer_dates else 'date-time'} ones)",
        date_only if fewer_dates else with_time,
    )


_SEP = "\x1f"  # joins the parts of a composite key (a control character: never inside a checked name)


def nfc(expr: pl.Expr) -> pl.Expr:
    """Category names in Unicode NFC: "é" typed as one code point or as "e" + accent is one name."""
    return expr.str.normalize("NFC")


def keys_of(frames: Mapping[str, pl.DataFrame], columns: list[str]) -> pl.Series:
    """``source SEP col1 SEP col2 ...`` for every row of every source's frame (for ``is_in`` checks)."""
    parts = [f.select(pl.concat_str([pl.lit(s), *[pl.col(c).cast(pl.String) for c in columns]], separator=_SEP))
             .to_series() for s, f in frames.items()]
    return pl.concat(parts) if parts else pl.Series([], dtype=pl.String)


def composite_key(*columns: str) -> pl.Expr:
    """The ``SEP``-joined text of ``columns`` (null when one is null)."""
    return pl.concat_str([pl.col(c) for c in columns], separator=_SEP)


def fine_parent_check(taxonomy: pl.DataFrame | None) -> Check:
    """A fine category sits under one coarse category: the taxonomy's, or (without a taxonomy) the one
    of its first item in the catalogue."""
    if taxonomy is not None:
        triples = taxonomy.select(composite_key("source", "fine_category", "category")).to_series()
        known_fine = taxonomy.select(composite_key("source", "fine_category")).to_series()
        return Check(
            "fine_category_mismatch", "fine_category",
            "fine_category sits under another coarse category in the taxonomy than the item's category",
            composite_key("_source", "_fine").is_in(known_fine.implode())
            & ~composite_key("_source", "_fine", "_cat").is_in(triples.implode()),
        )
    return Check(
        "fine_category_mismatch", "fine_category",
        "fine_category is filed under different coarse categories (rows listed: those that differ from its first item)",
        pl.col("_fine").is_not_null() & pl.col("_cat").is_not_null()
        & (pl.col("_cat") != pl.col("_cat").drop_nulls().first().over("_source", "_fine")),
    )


@dataclass(frozen=True)
class IngestConfig:
    """The ``ingest`` params: which sources, what to do with bad rows and duplicates, and the :class:`Rules`
    bounds (checked when the config is made, before any input is read)."""

    sources: list[str] | None = None
    quarantine: bool = False
    duplicates: Literal["drop", "error"] = "drop"
    seed: int = 0  # only used by adapters that re-index ids
    # Plausibility bounds (crossmatch.io.rules.Rules): rows outside them are bad rows.
    min_year: int = Rules.min_year
    max_year: int = Rules.max_year
    max_id_length: int = Rules.max_id_length
    max_weight: float = Rules.max_weight
    allow_control_chars: bool = Rules.allow_control_chars

    def __post_init__(self) -> None:
        if self.duplicates not in ("drop", "error"):
            raise ConfigError(f"ingest.duplicates must be 'drop' or 'error', got '{self.duplicates}'")
        if not isinstance(self.quarantine, bool):
            raise ConfigError(f"ingest.quarantine must be true or false, got {self.quarantine!r}")
        if self.sources is not None:
            # Each source becomes a folder under --out: a name like '../x' would write outside it.
            bad = [s for s in self.sources if unsafe_source_name(s)]
            if bad:
                raise ConfigError(f"ingest.sources: {bad[0][:60]!r} cannot be a folder name "
                                  "(it is empty, starts with '.', or holds '/', '\\', blanks or control characters)")
            if not self.sources:
                raise ConfigError("ingest.sources must list at least one source (or be null: every source found)")
            if len(set(self.sources)) < len(self.sources):
                raise ConfigError(f"ingest.sources lists a source twice: {self.sources}")
        self.rules()  # bounds checked now, before any input is read

    def rules(self) -> Rules:
        return Rules(min_year=self.min_year, max_year=self.max_year, max_id_length=self.max_id_length,
                     max_weight=self.max_weight, allow_control_chars=self.allow_control_chars)
