"""Typed views of raw columns: each returns the parsed expression; failures become null.

The validator compares "raw value present" with "parsed value present" to find the rows
that do not parse, so no cast here ever raises.
"""

from __future__ import annotations

import polars as pl

from crossmatch.errors import InputError

_TS_FORMATS_TZ = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
_TS_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")
TIMESTAMP = pl.Datetime("us", "UTC")
# Epoch seconds beyond this (year ~255,000; chrono, which prints datetimes, stops at 262,143) are clipped to
# it, so that they stay implausible (crossmatch.io.rules.year_check) instead of wrapping round to any year.
_MAX_EPOCH_S = 8_000_000_000_000


def _kind_error(file: str, column: str, dtype: pl.DataType, expected: str) -> InputError:
    return InputError(f"has dtype {dtype}, expected {expected}", file=file, column=column)


def as_text(col: str, dtype: pl.DataType, *, file: str) -> pl.Expr:
    """Ids and names: text or integers; surrounding blanks stripped, empty text is missing."""
    c = pl.col(col)
    if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
        txt = c.cast(pl.String).str.strip_chars()
    elif dtype.is_integer():
        txt = c.cast(pl.String)
    elif dtype == pl.Null:
        txt = c.cast(pl.String)
    else:
        raise _kind_error(file, col, dtype, "text or integer ids")
    return pl.when(txt == "").then(None).otherwise(txt)


def as_timestamp(col: str, dtype: pl.DataType, *, file: str) -> pl.Expr:
    """Datetimes in UTC (microseconds); integers and integer text are epoch seconds."""
    c = pl.col(col)
    if isinstance(dtype, pl.Datetime):
        ts = c.dt.replace_time_zone("UTC") if dtype.time_zone is None else c.dt.convert_time_zone("UTC")
        return ts.dt.cast_time_unit("us")
    if dtype == pl.Date:
        return c.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype.is_integer():
        return _from_epoch_s(c.cast(pl.Int64))
    if dtype.is_float():
        ok = c.is_finite()
        us = pl.when(ok).then((c.clip(-_MAX_EPOCH_S, _MAX_EPOCH_S) * 1_000_000).round(0).cast(pl.Int64)).otherwise(None)
        return pl.from_epoch(us, time_unit="us").dt.replace_time_zone("UTC")
    if dtype == pl.String:
        s = c.str.strip_chars()
        parsed = [s.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC") for f in _TS_FORMATS_TZ]
        parsed += [s.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC") for f in _TS_FORMATS]
        parsed.append(_from_epoch_s(s.str.to_integer(strict=False)))
        return pl.coalesce(parsed)
    if dtype == pl.Null:
        return c.cast(TIMESTAMP)
    raise _kind_error(file, col, dtype, "a datetime, a date, epoch seconds or ISO text")


def _from_epoch_s(seconds: pl.Expr) -> pl.Expr:
    """UTC microsecond datetimes from Int64 epoch seconds (clipped to what microseconds can hold)."""
    clipped = seconds.clip(-_MAX_EPOCH_S, _MAX_EPOCH_S)
    return pl.from_epoch(clipped, time_unit="s").dt.replace_time_zone("UTC").dt.cast_time_unit("us")


def as_number(col: str, dtype: pl.DataType, *, file: str) -> pl.Expr:
    """Floats from numeric columns or numeric text (non-numbers become null)."""
    c = pl.col(col)
    if dtype.is_numeric():
        return c.cast(pl.Float64)
    if dtype == pl.String:
        return c.str.strip_chars().cast(pl.Float64, strict=False)
    if dtype == pl.Null:
        return c.cast(pl.Float64)
    raise _kind_error(file, col, dtype, "a number")
