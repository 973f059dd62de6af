"""Hostile input rows (issue 15): values that parse but cannot be meant, in csv and in parquet.

Every case runs the ingest stage on a copy of the tiny world with one thing made hostile and asserts
what a user must get: exit code 2, one message of at most 500 characters that names the file, the
column and the first offending rows, no file written or changed anywhere under the test's folder
(not outside ``--out``, and the previous outputs there intact), no traceback.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from crossmatch.synth import World, generate_world, make_config
from tests.conftest import run_stage

SOURCES = ["alpha", "beta", "gamma"]
FORMATS = ["csv", "parquet"]
PARAMS = "ingest: {sources: [alpha, beta, gamma]}\n"
PARAMS_NO_SOURCES = "ingest: {}\n"  # the default: every source found in the data is accepted


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(make_config("tiny", seed=3))


@dataclass
class Layout:
    """One test's inputs (under ``root/raw``) and outputs (deep under ``root/work``)."""

    root: Path
    fmt: str
    logs: Path
    items: Path
    categories: Path
    taxonomy: Path | None
    params: Path
    out: Path
    quarantine: Path
    report: Path

    def args(self) -> list[str]:
        args = ["--params", str(self.params), "--logs", str(self.logs), "--items", str(self.items),
                "--categories", str(self.categories), "--out", str(self.out),
                "--quarantine-file", str(self.quarantine), "--report", str(self.report)]
        return args + (["--taxonomy", str(self.taxonomy)] if self.taxonomy is not None else [])


def write(frame: pl.DataFrame, path: Path) -> Path:
    """``frame`` as csv or parquet, by the path's suffix."""
    if path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


def base_logs(world: World) -> pl.DataFrame:
    """The world's logs with ISO text timestamps (what a csv export holds; parquet stores the same text)."""
    return world.logs.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"))


def make_layout(root: Path, world: World, fmt: str, *, logs: pl.DataFrame | None = None,
                items: dict[str, pl.DataFrame] | None = None, categories: pl.DataFrame | None = None,
                taxonomy: pl.DataFrame | None = None, with_taxonomy: bool = True,
                params: str = PARAMS) -> Layout:
    """Write the inputs in ``fmt`` and a previous run's outputs (which a rejected run must keep)."""
    raw = root / "raw"
    (raw / "items").mkdir(parents=True)
    lay = Layout(
        root=root, fmt=fmt,
        logs=write(base_logs(world) if logs is None else logs, raw / f"logs.{fmt}"),
        items=raw / "items",
        categories=write(world.categories if categories is None else categories, raw / f"categories.{fmt}"),
        taxonomy=write(world.taxonomy if taxonomy is None else taxonomy, raw / f"taxonomy.{fmt}") if with_taxonomy else None,
        params=root / "params.yaml",
        out=root / "work" / "a" / "b" / "ingested",
        quarantine=root / "work" / "a" / "b" / "rejected.parquet",
        report=root / "work" / "a" / "b" / "ingest.json",
    )
    for s, frame in (world.items if items is None else items).items():
        write(frame, raw / "items" / f"{s}.{fmt}")
    lay.params.write_text(params)
    (lay.out / "alpha").mkdir(parents=True)
    (lay.out / "alpha" / "logs.parquet").write_bytes(b"previous logs")
    lay.quarantine.write_bytes(b"previous quarantine")
    lay.report.write_text('{"previous": true}\n')
    return lay


def snapshot(root: Path) -> dict[str, Any]:
    """Every folder, file (its content hash) and link (its target) under ``root``."""
    seen: dict[str, Any] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                seen[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                seen[rel] = "dir"
            else:
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def assert_rejected(lay: Layout, *fragments: str, args: list[str] | None = None, module: str = "ingest") -> str:
    """Run the stage; exit 2 with a short message holding every fragment; nothing under root changed."""
    before = snapshot(lay.root)
    proc = run_stage(module, *(lay.args() if args is None else args), cwd=lay.root)
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{err[-3000:]}"
    assert "Traceback" not in err and len(err) <= 500, f"{len(err)} characters:\n{err[:3000]}"
    flat = " ".join(err.split())
    for frag in fragments:
        assert frag in flat, f"{frag!r} not in message:\n{err}"
    after = snapshot(lay.root)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"a rejected run wrote, changed or removed: {changed}"
    return flat


def put(frame: pl.DataFrame, column: str, row: int, value: Any) -> pl.DataFrame:
    """``frame`` with data row ``row`` (1-based) of ``column`` set to ``value`` (the column becomes text
    when the value is text and the column is not)."""
    col = pl.col(column)
    if isinstance(value, str) and frame.schema[column] != pl.String:
        col = col.cast(pl.String)
    dtype = pl.String if isinstance(value, str) else frame.schema[column]
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row - 1).then(pl.lit(value, dtype=dtype)).otherwise(col).alias(column))


def typed_timestamps(logs: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as a UTC datetime column (what a parquet export holds)."""
    return logs.with_columns(pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us", time_zone="UTC"))


def epoch(logs: pl.DataFrame, fmt: str, scale: int) -> pl.DataFrame:
    """Every timestamp as epoch seconds × ``scale`` (integers in parquet, integer text in csv)."""
    ts = typed_timestamps(logs).get_column("timestamp").dt.epoch("s") * scale
    return logs.with_columns((ts.cast(pl.String) if fmt == "csv" else ts).alias("timestamp"))


def year(logs: pl.DataFrame, fmt: str, value: datetime) -> pl.DataFrame:
    """Row 4's timestamp set to ``value`` (ISO text in csv, a datetime column in parquet)."""
    if fmt == "csv":
        return put(logs, "timestamp", 4, value.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0"))
    return put(typed_timestamps(logs), "timestamp", 4, value)


def one_per_source(logs: pl.DataFrame) -> pl.DataFrame:
    return logs.group_by("source", maintain_order=True).head(1).select(logs.columns)


def other_category(logs: pl.DataFrame, row: int) -> pl.DataFrame:
    """Row ``row``'s category replaced by another category of the table (its item keeps its own)."""
    cats = logs.get_column("category").unique().sort().to_list()
    current = logs.get_column("category")[row - 1]
    return put(logs, "category", row, next(c for c in cats if c != current))


YEARS_MSG = "timestamp is outside the years 1970-2099"
CONTROL_MSG = "contains control characters"
NULL_MSG = "null placeholder written as text"

# (case id, mutation of the logs frame, params, message fragments (after the file name))
LOG_CASES: list[tuple[str, Callable[[pl.DataFrame, str], pl.DataFrame], str, tuple[str, ...]]] = [
    ("epoch-milliseconds", lambda f, fmt: epoch(f, fmt, 1000), PARAMS,
     ("column 'timestamp'", YEARS_MSG, "epoch milliseconds", "first rows: 1, 2, 3, 4, 5, ...")),
    ("epoch-microseconds", lambda f, fmt: epoch(f, fmt, 1_000_000), PARAMS,
     ("column 'timestamp'", YEARS_MSG, "first rows: 1, 2, 3")),
    ("year-0001", lambda f, fmt: year(f, fmt, datetime(1, 1, 1, tzinfo=timezone.utc)), PARAMS,
     ("column 'timestamp'", YEARS_MSG, "1 bad row; first rows: 4")),
    ("year-1900", lambda f, fmt: year(f, fmt, datetime(1900, 1, 1, tzinfo=timezone.utc)), PARAMS,
     ("column 'timestamp'", YEARS_MSG, "1 bad row; first rows: 4")),
    ("year-2100", lambda f, fmt: year(f, fmt, datetime(2100, 1, 1, 12, tzinfo=timezone.utc)), PARAMS,
     ("column 'timestamp'", YEARS_MSG, "1 bad row; first rows: 4")),
    ("negative-epoch", lambda f, fmt: put(epoch(f, fmt, 1), "timestamp", 6, "-1" if fmt == "csv" else -1), PARAMS,
     ("column 'timestamp'", YEARS_MSG, "1 bad row; first rows: 6")),
    ("date-and-datetime-mixed", lambda f, fmt: put(put(f, "timestamp", 3, "2024-03-01"), "timestamp", 9, "2024-03-02"),
     PARAMS, ("column 'timestamp'", "mixes date-only values (2 row(s)) and date-times", "first rows: 3, 9")),
    ("weight-1e308", lambda f, fmt: put(put(f, "weight", 2, 1e308), "weight", 3, 1e308), PARAMS,
     ("column 'weight'", "weight is larger than 1e+12", "2 bad rows; first rows: 2, 3")),
    ("weight-inf", lambda f, fmt: put(f, "weight", 5, float("inf")), PARAMS,
     ("column 'weight'", "weight is NaN or infinite", "first rows: 5")),
    ("weight-nan", lambda f, fmt: put(f, "weight", 7, float("nan")), PARAMS,
     ("column 'weight'", "weight is NaN or infinite", "first rows: 7")),
    ("weight-negative", lambda f, fmt: put(f, "weight", 8, -2.5), PARAMS,
     ("column 'weight'", "weight is negative", "first rows: 8")),
    ("user-NULL", lambda f, fmt: put(f, "user_id", 3, "NULL"), PARAMS, ("column 'user_id'", NULL_MSG, "first rows: 3")),
    ("user-NaN", lambda f, fmt: put(f, "user_id", 4, "NaN"), PARAMS, ("column 'user_id'", NULL_MSG, "first rows: 4")),
    ("item-None", lambda f, fmt: put(f, "item_id", 5, "None"), PARAMS, ("column 'item_id'", NULL_MSG, "first rows: 5")),
    ("item-n/a", lambda f, fmt: put(f, "item_id", 6, "n/a"), PARAMS, ("column 'item_id'", NULL_MSG, "first rows: 6")),
    ("user-empty", lambda f, fmt: put(f, "user_id", 2, ""), PARAMS,
     ("column 'user_id'", "user_id is missing or empty", "first rows: 2")),
    ("user-NUL-byte", lambda f, fmt: put(f, "user_id", 3, "alpha-u\x00000022"), PARAMS,
     ("column 'user_id'", CONTROL_MSG, "first rows: 3")),
    ("user-bell-character", lambda f, fmt: put(f, "user_id", 4, "alpha\x07u"), PARAMS,
     ("column 'user_id'", CONTROL_MSG, "first rows: 4")),
    ("user-embedded-newline", lambda f, fmt: put(f, "user_id", 5, "alpha-u\n000015"), PARAMS,
     ("column 'user_id'", CONTROL_MSG, "first rows: 5")),
    ("item-line-separator", lambda f, fmt: put(f, "item_id", 6, "alpha-i\u2028000013"), PARAMS,
     ("column 'item_id'", CONTROL_MSG, "first rows: 6")),
    ("user-10MB", lambda f, fmt: put(f, "user_id", 7, "u" * 10_000_000), PARAMS,
     ("column 'user_id'", "longer than 1024 characters (ingest.max_id_length)", "first rows: 7")),
    ("source-a/b", lambda f, fmt: put(f, "source", 3, "a/b"), PARAMS_NO_SOURCES,
     ("column 'source'", "cannot be a folder name", "first rows: 3")),
    ("source-escapes-out", lambda f, fmt: put(put(f, "source", 2, "../../escaped"), "source", 4, "../../escaped"),
     PARAMS_NO_SOURCES, ("column 'source'", "cannot be a folder name", "first rows: 2, 4")),
    ("source-NULL", lambda f, fmt: put(f, "source", 5, "NULL"), PARAMS_NO_SOURCES,
     ("column 'source'", NULL_MSG, "first rows: 5")),
    ("one-row-per-source", lambda f, fmt: one_per_source(f), PARAMS,
     ("source 'alpha' has no user with two or more valid log rows", "first rows: 1")),
    ("category-not-the-items", lambda f, fmt: other_category(f, 3), PARAMS,
     ("column 'category'", "category differs from the item's category", "1 bad row; first rows: 3")),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case, mutate, params, fragments", LOG_CASES, ids=[c[0] for c in LOG_CASES])
def test_hostile_log_rows(case: str, mutate: Callable[[pl.DataFrame, str], pl.DataFrame], params: str,
                          fragments: tuple[str, ...], fmt: str, world: World, tmp_path: Path) -> None:
    lay = make_layout(tmp_path, world, fmt, logs=mutate(base_logs(world), fmt), params=params)
    assert_rejected(lay, f"logs.{fmt}", *fragments)


def test_float_epoch_beyond_any_datetime_is_implausible_not_a_traceback(world: World, tmp_path: Path) -> None:
    """Parquet float timestamps of 1e300 seconds used to overflow inside polars (a traceback)."""
    logs = epoch(base_logs(world), "parquet", 1).with_columns(pl.col("timestamp").cast(pl.Float64))
    lay = make_layout(tmp_path, world, "parquet", logs=put(logs, "timestamp", 2, 1e300))
    assert_rejected(lay, "logs.parquet", "column 'timestamp'", YEARS_MSG, "first rows: 2")


def test_widened_year_range_accepts_old_timestamps(world: World, tmp_path: Path) -> None:
    """ingest.min_year is a rule a user may disagree with: widened, the 1900 row is accepted."""
    logs = year(base_logs(world), "csv", datetime(1900, 6, 1, tzinfo=timezone.utc))
    lay = make_layout(tmp_path, world, "csv", logs=logs, params="ingest: {sources: [alpha, beta, gamma], min_year: 1900}\n")
    proc = run_stage("ingest", *lay.args(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert pl.read_parquet(lay.out / "alpha" / "logs.parquet").get_column("timestamp").dt.year().min() == 1900


def test_control_characters_kept_when_allowed(world: World, tmp_path: Path) -> None:
    logs = put(base_logs(world), "user_id", 3, "alpha-u\t000022")
    params = "ingest: {sources: [alpha, beta, gamma], allow_control_chars: true}\n"
    lay = make_layout(tmp_path, world, "parquet", logs=logs, params=params)
    proc = run_stage("ingest", *lay.args(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    users = pl.read_parquet(lay.out / "alpha" / "logs.parquet").get_column("user_id")
    assert "alpha-u\t000022" in users.to_list()


def _nfd_world(world: World) -> tuple[pl.DataFrame, dict[str, pl.DataFrame], pl.DataFrame, pl.DataFrame]:
    """The first category renamed "café": NFC in the category table and taxonomy, NFD in items and logs."""
    old = world.categories.get_column("category")[0]
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd

    def rename(frame: pl.DataFrame, to: str) -> pl.DataFrame:
        return frame.with_columns(pl.col("category").replace(old, to))
    items = {s: rename(f, nfd) for s, f in world.items.items()}
    return rename(base_logs(world), nfd), items, rename(world.categories, nfc), rename(world.taxonomy, nfc)


@pytest.mark.parametrize("fmt", FORMATS)
def test_category_names_are_compared_in_nfc(fmt: str, world: World, tmp_path: Path) -> None:
    """The same name typed in NFD (items, logs) and NFC (tables) is one category, written in NFC."""
    logs, items, categories, taxonomy = _nfd_world(world)
    lay = make_layout(tmp_path, world, fmt, logs=logs, items=items, categories=categories, taxonomy=taxonomy)
    proc = run_stage("ingest", *lay.args(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = pl.concat([pl.read_parquet(lay.out / s / "items.parquet").get_column("category") for s in SOURCES])
    assert unicodedata.normalize("NFC", "café") in written.to_list()
    assert unicodedata.normalize("NFD", "café") not in written.to_list()


def test_valid_input_is_accepted_and_previous_outputs_replaced(world: World, tmp_path: Path) -> None:
    """The harness itself: the untouched world passes (so each case above fails for its one change)."""
    lay = make_layout(tmp_path, world, "csv")
    proc = run_stage("ingest", *lay.args(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert pl.read_parquet(lay.out / "alpha" / "logs.parquet").height > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_per_source_run_rejects_like_the_all_source_run(fmt: str, world: World, tmp_path: Path) -> None:
    """The default pipeline's ``ingest_source@S`` items: same check, same message, nothing written to
    the source's folder or its part."""
    lay = make_layout(tmp_path, world, fmt, logs=epoch(base_logs(world), fmt, 1000))
    part = tmp_path / "work" / "parts" / "alpha"
    part.mkdir(parents=True)
    (part / "report.json").write_text('{"previous": true}\n')
    args = [*lay.args()[:lay.args().index("--out")], "--taxonomy", str(lay.taxonomy), "--source", "alpha",
            "--out", str(lay.out / "alpha"), "--part", str(part)]
    assert_rejected(lay, f"logs.{fmt}", "column 'timestamp'", YEARS_MSG, "first rows: 1, 2, 3", args=args)


def test_quarantine_sets_implausible_rows_aside_with_their_reason(world: World, tmp_path: Path) -> None:
    """With ingest.quarantine the new rules quarantine rows like the old ones: each with its reason."""
    logs = put(put(put(base_logs(world), "user_id", 3, "NULL"), "timestamp", 5, "1900-01-01T00:00:00"),
               "weight", 8, 1e300)
    params = "ingest: {sources: [alpha, beta, gamma], quarantine: true}\n"
    lay = make_layout(tmp_path, world, "csv", logs=logs, params=params)
    proc = run_stage("ingest", *lay.args(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rejected = pl.read_parquet(lay.quarantine).sort("_row")
    assert rejected.get_column("_row").to_list() == [3, 5, 8]
    assert rejected.get_column("reason").to_list() == ["null_token", "implausible_timestamp", "weight_too_large"]
