"""Errors the library raises for bad input.

Every error a user can cause names *where* the problem is (file, column, rows)
and *what* is wrong, so the stage layer can print it and exit non-zero without
a traceback from deep inside polars, torch or HiGHS.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_REASON = 300  # characters of the reason kept in a message (a parser may quote a whole file)
MAX_LABEL = 120  # characters of a file label or column name kept (the tail of a path: its name)


def shorten(text: str, limit: int, *, keep_end: bool = False) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (its end kept when ``keep_end``)."""
    if len(text) <= limit:
        return text
    return "..." + text[-(limit - 3):] if keep_end else text[: limit - 3] + "..."


class CrossmatchError(Exception):
    """Base class for errors caused by input or configuration, not by a bug."""


class ConfigError(CrossmatchError):
    """A parameter is missing, has the wrong type or is out of range."""


class InputError(CrossmatchError):
    """Bad input data.

    Args:
        message: what is wrong, in words.
        file: the file (or logical input name) the data came from.
        column: the offending column, when one column is at fault.
        rows: 1-based data-row numbers (header excluded) of the offending rows.
        n_bad: how many rows are bad; defaults to ``len(rows)``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        rows: Sequence[int] | None = None,
        n_bad: int | None = None,
    ) -> None:
        self.reason = message
        self.file = file
        self.column = column
        self.rows = list(rows) if rows is not None else []
        self.n_bad = n_bad if n_bad is not None else (len(self.rows) if rows is not None else None)
        super().__init__(self._format())

    def _format(self) -> str:
        # Each part is capped so that the whole message stays short (<= 500 characters) whatever the
        # input: a parser error can quote the rest of a file, a header can hold thousands of names.
        where = []
        if self.file:
            where.append(shorten(self.file, MAX_LABEL, keep_end=True))
        if self.column:
            where.append(f"column '{shorten(self.column, 60)}'")
        reason = shorten(self.reason, MAX_REASON)
        text = ": ".join(where + [reason]) if where else reason
        if self.n_bad:
            shown = ", ".join(str(r) for r in self.rows[:5])
            more = ", ..." if self.n_bad > 5 else ""
            text += f" ({self.n_bad} bad row{'s' if self.n_bad != 1 else ''}; first rows: {shown}{more})"
        return text
