"""Read tabular inputs (csv, tsv or parquet) with errors that name the file.

CSV files are read with every column as text and lossy UTF-8 decoding: typing and
encoding problems are then found row by row by :mod:`crossmatch.io.validate`, which
can name the rows, instead of failing inside polars' parser with no row number.

:func:`scan_table` / :func:`scan_tables` open the same files lazily (``pl.scan_parquet`` /
``pl.scan_csv``) with the same file-level checks, so that large logs are validated and
normalised by streaming queries instead of being held in memory whole.

Before polars parses a CSV file, :func:`check_csv_bytes` reads its bytes once, in chunks, for what
polars would mis-read silently or at great cost: CR-only line endings (the whole file becomes one
header line), an unterminated quote (the rest of the file becomes one field, or the file seems to
have no rows) and blank lines (each becomes a row of nulls, and polars' streaming CSV reader holds
a morsel of such rows per chunk of bytes, so a file of blank lines costs hundreds of bytes of memory
per byte; rejected here, the memory stays bounded by a chunk).
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from crossmatch.errors import InputError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
REPLACEMENT_CHAR = "\ufffd"  # what lossy UTF-8 decoding leaves where bytes were invalid
_CHUNK = 1 << 20  # bytes read at a time by check_csv_bytes
_BLANK = re.compile(rb"\n(?=\r?\n)")  # a line end followed by an empty line


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


def check_path(p: Path, label: str) -> None:
    """The path exists: a symbolic link that loops or points nowhere is named as such, not "not found"."""
    if p.exists():
        return
    if p.is_symlink():
        try:
            os.stat(p)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InputError("symbolic link loop (the link resolves to itself)", file=label) from None
        raise InputError(f"broken symbolic link (points to '{os.readlink(p)}', which does not exist)", file=label)
    raise InputError("file not found", file=label)


def _blank_lines(path: Path) -> list[int]:
    """Line numbers (1-based) of the first five blank lines outside quoted fields."""
    found: list[int] = []
    lines = quotes = 0  # line ends and quote characters before the current chunk
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            chunk += fh.readline()  # whole lines only, so a blank line never straddles two chunks
            # The leading "\n" stands for the previous chunk's last line end (or the file's start).
            buf = b"\n" + chunk
            pos = nl = q = 0  # buf[:pos] holds nl line ends and q quotes
            for m in _BLANK.finditer(buf):
                end = m.start() + 1  # the blank line starts here
                nl += buf.count(b"\n", pos, end)
                q += buf.count(b'"', pos, end)
                pos = end
                if (quotes + q) % 2 == 0:  # outside a quoted field
                    found.append(lines + nl)
                    if len(found) == 5:
                        return found
            quotes += chunk.count(b'"')
            lines += chunk.count(b"\n")
    return found


def check_csv_bytes(path: Path, label: str) -> None:
    """One pass over a CSV file's bytes, in chunks: CR-only line endings, an unterminated quote,
    blank lines (see the module doc). Blank lines inside quoted fields are data, not blank lines.

    Raises:
        InputError: naming the line of the problem.
    """
    quotes = newlines = returns = 0
    last_quote_line = 0
    maybe_blank = False
    tail = b"\n"  # the previous chunk's last two bytes (a blank line may straddle two chunks); first: the start
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            n_quotes = chunk.count(b'"')
            if n_quotes:
                last_quote_line = newlines + chunk.count(b"\n", 0, chunk.rfind(b'"')) + 1
            if not maybe_blank:
                maybe_blank = _BLANK.search(chunk) is not None or _BLANK.search(tail + chunk[:2]) is not None
            tail = chunk[-2:]
            quotes += n_quotes
            newlines += chunk.count(b"\n")
            returns += chunk.count(b"\r")
    if returns and not newlines:
        raise InputError("has CR-only line endings (old Mac style), so it reads as one line; "
                         "convert the line ends to LF or CRLF", file=label)
    if quotes % 2:
        raise InputError(f"unterminated quote: the quoted field opened on line {last_quote_line} never closes "
                         "(an odd number of '\"' characters in the file)", file=label)
    if maybe_blank:  # the exact, quote-aware search runs only when a blank line may exist
        blank = _blank_lines(path)
        if blank:
            shown = ", ".join(str(n) for n in blank) + (", ..." if len(blank) == 5 else "")
            raise InputError(f"blank line(s) at line {shown}; remove them (a blank line is not a row)", file=label)


def _check_file(p: Path, label: str) -> str:
    """File-level checks shared by the eager and the lazy reader; returns the lower-case suffix."""
    check_path(p, label)
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
        check_csv_bytes(p, label)
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
        tables = []
        for f in table_files(p):
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
            check_csv_bytes(p, label)
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
    # A link that loops or points nowhere is listed too, so that reading it says so (not skipped silently).
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in TABLE_SUFFIXES
                   and (f.is_file() or (f.is_symlink() and not f.exists())))
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
