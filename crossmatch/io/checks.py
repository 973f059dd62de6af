"""A tiny row-check engine: every check is a boolean polars expression (True = bad row).

All checks of a table are evaluated in one pass. In strict mode the first failing check
becomes an :class:`~crossmatch.errors.InputError` naming the file, the column, the number
of bad rows and the first row numbers; in quarantine mode every bad row is set aside with
the reason of its first failing check and the clean rows go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from crossmatch.errors import InputError

ROW = "_row"  # 1-based data-row number inside its file (header excluded)
FILE = "_file"


@dataclass(frozen=True)
class Check:
    """One row-level rule."""

    reason: str  # short code used in reports, e.g. "negative_weight"
    column: str | None
    message: str
    bad: pl.Expr


@dataclass
class Problem:
    """A failed check: how many rows, and the first few row numbers."""

    reason: str
    file: str
    column: str | None
    message: str
    n_bad: int
    rows: list[int]

    def to_error(self, more: int = 0) -> InputError:
        msg = self.message + (f"; {more} other check(s) also fail in this file" if more else "")
        return InputError(msg, file=self.file, column=self.column, rows=self.rows, n_bad=self.n_bad)


@dataclass
class CheckResult:
    clean: pl.DataFrame
    quarantined: pl.DataFrame  # _file, _row, reason, then the raw columns as text
    problems: list[Problem] = field(default_factory=list)


def with_row_numbers(frame: pl.DataFrame, file: str) -> pl.DataFrame:
    return frame.with_columns(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW), pl.lit(file).alias(FILE)
    )


def run_checks(
    frame: pl.DataFrame,
    checks: Sequence[Check],
    *,
    file: str,
    quarantine: bool,
    raw_columns: Sequence[str],
) -> tuple[pl.DataFrame, pl.DataFrame, list[Problem]]:
    """Evaluate ``checks`` on ``frame`` (which must carry ``_row``).

    Returns:
        ``(kept, quarantined, problems)``. ``kept`` still has every column of ``frame``.

    Raises:
        InputError: in strict mode, for the first check that any row fails.
    """
    if not checks:
        return frame, _empty_quarantine(raw_columns), []
    names = [f"__bad{i}" for i in range(len(checks))]
    flagged = frame.with_columns([c.bad.fill_null(False).alias(n) for c, n in zip(checks, names, strict=True)])
    counts = flagged.select([pl.col(n).sum() for n in names]).row(0)
    problems: list[Problem] = []
    for check, name, count in zip(checks, names, counts, strict=True):
        if count:
            rows = flagged.filter(pl.col(name)).get_column(ROW).head(5).to_list()
            problems.append(Problem(check.reason, file, check.column, check.message, int(count), rows))
    if problems and not quarantine:
        raise problems[0].to_error(more=len(problems) - 1)
    if not problems:
        return frame, _empty_quarantine(raw_columns), []
    reason = pl.coalesce(
        [pl.when(pl.col(n)).then(pl.lit(c.reason)) for c, n in zip(checks, names, strict=True)]
    ).alias("reason")
    flagged = flagged.with_columns(reason)
    bad = flagged.filter(pl.col("reason").is_not_null())
    quarantined = bad.select(
        pl.col(FILE),
        pl.col(ROW),
        pl.col("reason"),
        *[pl.col(c).cast(pl.String) for c in raw_columns],
    )
    kept = flagged.filter(pl.col("reason").is_null()).drop([*names, "reason"])
    return kept, quarantined, problems


def _empty_quarantine(raw_columns: Sequence[str]) -> pl.DataFrame:
    schema = {FILE: pl.String, ROW: pl.Int64, "reason": pl.String} | {c: pl.String for c in raw_columns}
    return pl.DataFrame(schema=schema)


def missing_columns_error(file: str, columns: Sequence[str], required: Sequence[str]) -> InputError | None:
    missing = [c for c in required if c not in columns]
    if not missing:
        return None
    return InputError(
        f"missing required column(s) {missing}; found {list(columns)}", file=file, column=missing[0]
    )


def _streaming(frame: pl.LazyFrame) -> pl.DataFrame:
    return frame.collect(engine="streaming")


def run_checks_lazy(
    frame: pl.LazyFrame,
    checks: Sequence[Check],
    *,
    file: str,
    quarantine: bool,
    raw_columns: Sequence[str],
) -> tuple[pl.LazyFrame, pl.DataFrame, list[Problem]]:
    """:func:`run_checks` for a lazy ``frame``: the same problems, messages and quarantine rows.

    One streaming pass counts the bad rows of every check; only failing checks cost another
    pass each (for their first row numbers). ``kept`` stays lazy (the bad rows filtered out).
    """
    if not checks:
        return frame, _empty_quarantine(raw_columns), []
    bad = [c.bad.fill_null(False) for c in checks]
    counts = _streaming(frame.select([b.sum().alias(f"__bad{i}") for i, b in enumerate(bad)])).row(0)
    problems: list[Problem] = []
    for check, b, count in zip(checks, bad, counts, strict=True):
        if count:
            rows = _streaming(frame.filter(b).select(pl.col(ROW)).head(5)).get_column(ROW).to_list()
            problems.append(Problem(check.reason, file, check.column, check.message, int(count), rows))
    if problems and not quarantine:
        raise problems[0].to_error(more=len(problems) - 1)
    if not problems:
        return frame, _empty_quarantine(raw_columns), []
    reason = pl.coalesce([pl.when(b).then(pl.lit(c.reason)) for c, b in zip(checks, bad, strict=True)])
    quarantined = _streaming(
        frame.filter(pl.any_horizontal(bad)).select(
            pl.lit(file).alias(FILE), pl.col(ROW), reason.alias("reason"), *[pl.col(c).cast(pl.String) for c in raw_columns]
        )
    )
    return frame.filter(~pl.any_horizontal(bad)), quarantined, problems
