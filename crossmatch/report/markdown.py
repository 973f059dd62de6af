"""Small markdown helpers (tables, numbers) shared by the report and the README results table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: fixed decimals for floats, thousands separators for integers."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None,
          digits: int = 3) -> str:
    """A GitHub-markdown table of ``rows`` (missing cells print as ``–``)."""
    heads = list(headers or columns)
    out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    for r in rows:
        out.append("| " + " | ".join(fmt(r.get(c), digits) for c in columns) + " |")
    return "\n".join(out)
