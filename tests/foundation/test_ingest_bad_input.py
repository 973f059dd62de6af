"""Bad input to the ingest stage: a clear message (file, column, count, rows), exit 2, nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from crossmatch.synth import generate_world, make_config
from tests.conftest import run_stage

SOURCES = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def world():
    return generate_world(make_config("tiny", seed=3))


def _layout(tmp: Path, world, *, duplicates: str = "drop", quarantine: bool = False) -> dict[str, Path]:
    raw = tmp / "raw"
    (raw / "items").mkdir(parents=True)
    logs = world.logs.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"))
    logs.write_csv(raw / "logs.csv")
    for s, f in world.items.items():
        f.write_parquet(raw / "items" / f"{s}.parquet")
    world.categories.write_csv(raw / "categories.csv")
    world.taxonomy.write_parquet(raw / "taxonomy.parquet")
    params = tmp / "params.yaml"
    params.write_text(
        f"ingest: {{sources: {SOURCES}, quarantine: {str(quarantine).lower()}, duplicates: {duplicates}}}\n"
    )
    return {
        "params": params,
        "logs": raw / "logs.csv",
        "items": raw / "items",
        "categories": raw / "categories.csv",
        "taxonomy": raw / "taxonomy.parquet",
        "out": tmp / "ingested",
        "quarantine": tmp / "quarantine" / "rejected.parquet",
        "report": tmp / "metrics" / "ingest.json",
    }


def _ingest(p: dict[str, Path]):
    return run_stage(
        "ingest",
        "--params", str(p["params"]), "--logs", str(p["logs"]), "--items", str(p["items"]),
        "--categories", str(p["categories"]), "--taxonomy", str(p["taxonomy"]), "--out", str(p["out"]),
        "--quarantine-file", str(p["quarantine"]), "--report", str(p["report"]),
    )


def _edit_csv(path: Path, fn: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")


def _set_cell(lines: list[str], row: int, column: str, value: str) -> list[str]:
    """Set one cell of data row ``row`` (1-based) in CSV lines without quoting surprises."""
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    return lines


def _assert_failed(proc, p: dict[str, Path], *fragments: str) -> str:
    err = proc.stderr
    assert proc.returncode == 2, f"expected exit 2, got {proc.returncode}\n{proc.stdout}\n{err}"
    assert "Traceback" not in err
    flat = " ".join(err.split())
    for frag in fragments:
        assert frag in flat, f"{frag!r} not in message:\n{err}"
    for key in ("out", "quarantine", "report"):
        assert not p[key].exists(), f"{key} output was written despite the error"
    leftovers = [f for f in p["out"].parent.iterdir() if f.name.startswith(".ingested")]
    assert not leftovers, f"temporary output left behind: {leftovers}"
    return flat


def test_valid_input_passes(tmp_path, world):
    p = _layout(tmp_path, world)
    proc = _ingest(p)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(p["report"].read_text())
    assert set(report["sources"]) == set(SOURCES)
    assert pl.read_parquet(p["quarantine"]).height == 0


def test_missing_column(tmp_path, world):
    p = _layout(tmp_path, world)
    pl.read_csv(p["logs"]).drop("weight").write_csv(p["logs"])
    _assert_failed(_ingest(p), p, "logs.csv", "column 'weight'", "missing required column(s) ['weight']")


def test_wrong_dtype_text_in_number_column(tmp_path, world):
    p = _layout(tmp_path, world)
    _edit_csv(p["logs"], lambda ls: _set_cell(ls, 4, "weight", "heavy"))
    _assert_failed(_ingest(p), p, "logs.csv", "column 'weight'", "not a number", "1 bad row", "first rows: 4")


def test_wrong_dtype_whole_column_in_parquet(tmp_path, world):
    p = _layout(tmp_path, world)
    frame = pl.read_csv(p["logs"]).with_columns(pl.col("weight").cast(pl.Int64).map_elements(lambda w: [w], return_dtype=pl.List(pl.Int64)))
    p["logs"].unlink()
    p["logs"] = p["logs"].with_suffix(".parquet")
    frame.write_parquet(p["logs"])
    _assert_failed(_ingest(p), p, "logs.parquet", "column 'weight'", "has dtype List(Int64), expected a number")


def test_null_ids(tmp_path, world):
    p = _layout(tmp_path, world)
    _edit_csv(p["logs"], lambda ls: _set_cell(_set_cell(ls, 2, "user_id", ""), 7, "user_id", "  "))
    _assert_failed(_ingest(p), p, "column 'user_id'", "user_id is missing or empty", "2 bad rows", "first rows: 2, 7")


def test_unparseable_timestamp(tmp_path, world):
    p = _layout(tmp_path, world)
    _edit_csv(p["logs"], lambda ls: _set_cell(ls, 5, "timestamp", "yesterday"))
    _assert_failed(_ingest(p), p, "column 'timestamp'", "timestamp cannot be parsed", "first rows: 5")


def test_nan_timestamp(tmp_path, world):
    p = _layout(tmp_path, world)
    frame = world.logs.with_columns((pl.col("timestamp").dt.epoch("s").cast(pl.Float64)).alias("timestamp"))
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 9).then(float("nan")).otherwise(pl.col("timestamp")).alias("timestamp")
    )
    p["logs"].unlink()
    p["logs"] = p["logs"].with_suffix(".parquet")
    frame.write_parquet(p["logs"])
    _assert_failed(_ingest(p), p, "column 'timestamp'", "NaN is not a time", "first rows: 10")


def test_negative_weight(tmp_path, world):
    p = _layout(tmp_path, world)
    _edit_csv(p["logs"], lambda ls: _set_cell(_set_cell(ls, 3, "weight", "-1.5"), 11, "weight", "-0.1"))
    _assert_failed(_ingest(p), p, "column 'weight'", "weight is negative", "2 bad rows", "first rows: 3, 11")


def test_unknown_source(tmp_path, world):
    p = _layout(tmp_path, world)
    _edit_csv(p["logs"], lambda ls: _set_cell(ls, 6, "source", "delta"))
    _assert_failed(_ingest(p), p, "column 'source'", "unknown source", "first rows: 6")


def test_empty_file(tmp_path, world):
    p = _layout(tmp_path, world)
    p["logs"].write_bytes(b"")
    _assert_failed(_ingest(p), p, "logs.csv", "file is empty")


def test_header_only_file(tmp_path, world):
    p = _layout(tmp_path, world)
    _edit_csv(p["logs"], lambda ls: ls[:1])
    _assert_failed(_ingest(p), p, "logs.csv", "has a header but no data rows")


def test_empty_source(tmp_path, world):
    p = _layout(tmp_path, world)
    pl.read_csv(p["logs"]).filter(pl.col("source") != "gamma").write_csv(p["logs"])
    _assert_failed(_ingest(p), p, "logs.csv", "source 'gamma' has no valid log rows")


def test_duplicate_rows_when_policy_is_error(tmp_path, world):
    p = _layout(tmp_path, world, duplicates="error")
    frame = pl.read_csv(p["logs"]).unique(maintain_order=True)
    pl.concat([frame.head(5), frame.slice(2, 1), frame.slice(5)]).write_csv(p["logs"])
    _assert_failed(_ingest(p), p, "logs.csv", "exact duplicate rows", "1 bad row", "first rows: 6")


def test_duplicate_item_ids_in_catalogue(tmp_path, world):
    p = _layout(tmp_path, world)
    beta = p["items"] / "beta.parquet"
    frame = pl.read_parquet(beta)
    pl.concat([frame, frame.head(2)]).write_parquet(beta)
    n = frame.height
    _assert_failed(
        _ingest(p), p, "beta.parquet", "column 'item_id'", "appears more than once", "2 bad rows",
        f"first rows: {n + 1}, {n + 2}",
    )


def test_non_utf8_bytes(tmp_path, world):
    p = _layout(tmp_path, world)
    data = bytearray(p["logs"].read_bytes())
    lines = data.split(b"\n")
    lines[8] = lines[8].replace(b"alpha-u", b"alpha-\xff\xfeu", 1) if b"alpha-u" in lines[8] else lines[8].replace(b"-u", b"-\xff\xfeu", 1)
    p["logs"].write_bytes(b"\n".join(lines))
    _assert_failed(_ingest(p), p, "column 'user_id'", "not valid UTF-8", "first rows: 8")


def test_category_not_in_table(tmp_path, world):
    p = _layout(tmp_path, world)
    _edit_csv(p["logs"], lambda ls: _set_cell(ls, 12, "category", "spaceships"))
    _assert_failed(_ingest(p), p, "column 'category'", "category is not in the category table", "first rows: 12")


def test_item_not_in_catalogue(tmp_path, world):
    p = _layout(tmp_path, world)
    _edit_csv(p["logs"], lambda ls: _set_cell(ls, 2, "item_id", "alpha-i999999"))
    _assert_failed(_ingest(p), p, "column 'item_id'", "not in that source's item catalogue", "first rows: 2")


def test_quarantine_moves_bad_rows_and_continues(tmp_path, world):
    p = _layout(tmp_path, world, quarantine=True)
    _edit_csv(
        p["logs"],
        lambda ls: _set_cell(_set_cell(_set_cell(ls, 3, "weight", "-2"), 4, "timestamp", "soon"), 9, "source", "delta"),
    )
    proc = _ingest(p)
    assert proc.returncode == 0, proc.stderr
    q = pl.read_parquet(p["quarantine"]).sort("_row")
    assert q.get_column("_row").to_list() == [3, 4, 9]
    assert q.get_column("reason").to_list() == ["negative_weight", "bad_timestamp", "unknown_source"]
    report = json.loads(p["report"].read_text())
    assert report["quarantined_rows"] == 3
    assert report["quarantined_by_reason"] == {"bad_timestamp": 1, "negative_weight": 1, "unknown_source": 1}
    kept = sum(
        pl.read_parquet(p["out"] / s / "logs.parquet").height + report["sources"][s]["duplicates_dropped"]
        for s in SOURCES
    )
    assert kept == world.logs.height - 3
