"""Read tabular inputs (csv, tsv or parquet) with errors that name the file.

CSV files are read with every column as text and lossy UTF-8 decoding: typing and
encoding problems are then found row by row by :mod:`crossmatch.io.validate`, which
can name the rows, instead of failing inside polars' parser with no row number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from crossmatch.errors import InputError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
REPLACEMENT_CHAR = "\ufffd"  # what lossy UTF-8 decoding leaves where bytes were invalid


@dataclass(frozen=True)
class Table:
    """One input file: its label for messages, the source it belongs to (if per-source), its rows."""

    file: str
    source: str | None
    frame: pl.DataFrame


def _csv_header(path: Path, separator: str) -> list[str]:
    with path.open("rb") as fh:
        first = fh.readline()
    return [h.strip() for h in first.decode("utf-8", errors="replace").rstrip("\r\n").split(separator)]


def read_table(path: str | Path, *, separator: str | None = None) -> pl.DataFrame:
    """Read one csv/tsv/parquet file.

    Raises:
        InputError: the file is missing, empty, has a header but no rows, repeats a column
            name, or cannot be parsed at all.
    """
    p = Path(path)
    label = str(path)
    if not p.exists():
        raise InputError("file not found", file=label)
    if p.is_dir():
        raise InputError("expected a file but found a directory", file=label)
    if p.stat().st_size == 0:
        raise InputError("file is empty (0 bytes)", file=label)
    suffix = p.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"unsupported file type '{suffix}'; use one of {', '.join(TABLE_SUFFIXES)}", file=label)
    if suffix in (".parquet", ".pq"):
        try:
            frame = pl.read_parquet(p)
        except Exception as exc:  # polars raises several error types for corrupt files
            raise InputError(f"not a readable parquet file ({type(exc).__name__}: {exc})", file=label) from None
    else:
        sep = separator or ("\t" if suffix == ".tsv" else ",")
        header = _csv_header(p, sep)
        dup = sorted({h for h in header if header.count(h) > 1})
        if dup:
            raise InputError(f"header repeats column name(s) {dup}", file=label)
        try:
            frame = pl.read_csv(p, separator=sep, infer_schema=False, encoding="utf8-lossy")
        except pl.exceptions.NoDataError:
            raise InputError("file is empty (no header)", file=label) from None
        except Exception as exc:
            raise InputError(f"cannot parse as CSV ({type(exc).__name__}: {exc})", file=label) from None
        frame = frame.rename({c: c.strip() for c in frame.columns})
    if frame.height == 0:
        raise InputError("file has a header but no data rows", file=label)
    return frame


def read_tables(path: str | Path, *, separator: str | None = None) -> list[Table]:
    """Read one file, or every table file of a directory.

    In a directory, each file is one source named after the file (``<source>.<ext>``) unless
    the file has a ``source`` column of its own.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in TABLE_SUFFIXES)
        if not files:
            raise InputError(f"directory holds no table files ({', '.join(TABLE_SUFFIXES)})", file=str(path))
        tables = []
        for f in files:
            frame = read_table(f, separator=separator)
            # A file with its own ``source`` column holds several sources; otherwise its name is the source.
            tables.append(Table(str(f), None if "source" in frame.columns else f.stem, frame))
        return tables
    return [Table(str(path), None, read_table(p, separator=separator))]
