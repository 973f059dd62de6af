"""Read tabular inputs (csv, tsv or parquet) with errors that name the file.

CSV files are read with every column as text and lossy UTF-8 decoding: typing and
encoding problems are then found row by row by :mod:`crossmatch.io.validate`, which
can name the rows, instead of failing inside polars' parser with no row number.

:func:`scan_table` / :func:`scan_tables` open the same files lazily (``pl.scan_parquet`` /
``pl.scan_csv``) with the same file-level checks, so that large logs are validated and
normalised by streaming queries instead of being held in memory whole.
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


@dataclass(frozen=True)
class LazyTable:
    """One input file opened lazily: like :class:`Table`, plus its row count (known without reading it)."""

    file: str
    source: str | None
    frame: pl.LazyFrame
    height: int


def as_lazy(table: Table | LazyTable) -> LazyTable:
    """A lazy view of an in-memory or lazy table."""
    if isinstance(table, LazyTable):
        return table
    return LazyTable(table.file, table.source, table.frame.lazy(), table.frame.height)


def _csv_header(path: Path, separator: str) -> list[str]:
    with path.open("rb") as fh:
        first = fh.readline()
    return [h.strip() for h in first.decode("utf-8", errors="replace").rstrip("\r\n").split(separator)]


def _check_file(p: Path, label: str) -> str:
    """File-level checks shared by the eager and the lazy reader; returns the lower-case suffix."""
    if not p.exists():
        raise InputError("file not found", file=label)
    if p.is_dir():
        raise InputError("expected a file but found a directory", file=label)
    if p.stat().st_size == 0:
        raise InputError("file is empty (0 bytes)", file=label)
    suffix = p.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"unsupported file type '{suffix}'; use one of {', '.join(TABLE_SUFFIXES)}", file=label)
    return suffix


def read_table(path: str | Path, *, separator: str | None = None) -> pl.DataFrame:
    """Read one csv/tsv/parquet file.

    Raises:
        InputError: the file is missing, empty, has a header but no rows, repeats a column
            name, or cannot be parsed at all.
    """
    p = Path(path)
    label = str(path)
    suffix = _check_file(p, label)
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


def scan_table(path: str | Path, *, separator: str | None = None, source: str | None = None) -> LazyTable:
    """Open one csv/tsv/parquet file lazily, with :func:`read_table`'s file-level checks.

    Only the schema and the row count are read here (for CSV, one streaming pass that also
    finds files polars cannot parse). ``source`` is the per-file source (``None`` when the
    file has a ``source`` column).

    Raises:
        InputError: as :func:`read_table`.
    """
    p = Path(path)
    label = str(path)
    suffix = _check_file(p, label)
    try:
        if suffix in (".parquet", ".pq"):
            frame = pl.scan_parquet(p)
            frame.collect_schema()
        else:
            sep = separator or ("\t" if suffix == ".tsv" else ",")
            header = _csv_header(p, sep)
            dup = sorted({h for h in header if header.count(h) > 1})
            if dup:
                raise InputError(f"header repeats column name(s) {dup}", file=label)
            frame = pl.scan_csv(p, separator=sep, infer_schema=False, encoding="utf8-lossy")
            frame = frame.rename({c: c.strip() for c in frame.collect_schema().names()})
        height = int(frame.select(pl.len()).collect(engine="streaming").item())
    except InputError:
        raise
    except pl.exceptions.NoDataError:
        raise InputError("file is empty (no header)", file=label) from None
    except Exception as exc:  # polars raises several error types for corrupt files
        kind = "not a readable parquet file" if suffix in (".parquet", ".pq") else "cannot parse as CSV"
        raise InputError(f"{kind} ({type(exc).__name__}: {exc})", file=label) from None
    if height == 0:
        raise InputError("file has a header but no data rows", file=label)
    if source is None and "source" not in frame.collect_schema().names():
        source = p.stem
    return LazyTable(label, source, frame, height)


def table_files(path: str | Path) -> list[Path]:
    """The table files of a folder, in name order (one file: itself)."""
    p = Path(path)
    if not p.is_dir():
        return [p]
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in TABLE_SUFFIXES)
    if not files:
        raise InputError(f"directory holds no table files ({', '.join(TABLE_SUFFIXES)})", file=str(path))
    return files


def scan_tables(path: str | Path, *, separator: str | None = None) -> list[LazyTable]:
    """:func:`read_tables`, lazily: one file, or every table file of a directory (a file without a
    ``source`` column is the source named after it)."""
    p = Path(path)
    if p.is_dir():
        return [scan_table(f, separator=separator) for f in table_files(p)]
    table = scan_table(p, separator=separator)
    return [LazyTable(table.file, None, table.frame, table.height)]
