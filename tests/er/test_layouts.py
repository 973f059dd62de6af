"""``benchmarks.er_layouts.dirty``: DeepMatcher's dirty variant of a benchmark (values moved into the title)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from benchmarks.er_layouts import dirty, swapped


def _bench(folder: Path, rows: int = 200) -> None:
    folder.mkdir()
    for name, shift in (("tableA", 0), ("tableB", 7)):
        pl.DataFrame({"id": [str(i) for i in range(rows)],
                      "title": [f"item {i + shift}" for i in range(rows)],
                      "brand": [f"brand{i % 13}" if i % 10 else None for i in range(rows)],
                      "price": [f"{i * 1.5:.2f}" for i in range(rows)]}).write_csv(folder / f"{name}.csv")
    for name in ("train", "valid"):
        pl.DataFrame({"ltable_id": ["1", "2"], "rtable_id": ["2", "3"], "label": ["1", "0"]}).write_csv(folder / f"{name}.csv")


def test_dirty_moves_about_half_of_the_values_to_the_title_and_keeps_ids_and_pairs(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _bench(src)
    dirty(src, out)
    for name in ("train.csv", "valid.csv"):
        assert (out / name).read_bytes() == (src / name).read_bytes()
    moved = kept = 0
    for name in ("tableA", "tableB"):
        before = pl.read_csv(src / f"{name}.csv", infer_schema_length=0)
        after = pl.read_csv(out / f"{name}.csv", infer_schema_length=0)
        assert after.columns == before.columns and after["id"].to_list() == before["id"].to_list()
        for b, a in zip(before.to_dicts(), after.to_dicts(), strict=True):
            tail = a["title"][len(b["title"]):].split()
            assert a["title"].startswith(b["title"])
            expected_tail = []
            for col in ("brand", "price"):  # appended in column order, each cell emptied when moved
                if b[col] is None:
                    assert a[col] is None
                elif a[col] is None:
                    expected_tail.append(b[col])
                    moved += 1
                else:
                    assert a[col] == b[col]
                    kept += 1
            assert tail == expected_tail
    assert 0.4 < moved / (moved + kept) < 0.6


def test_dirty_is_deterministic_and_needs_a_title(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _bench(src, rows=30)
    dirty(src, tmp_path / "a")
    dirty(src, tmp_path / "b")
    for name in ("tableA.csv", "tableB.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    pl.read_csv(src / "tableA.csv").rename({"title": "name"}).write_csv(src / "tableA.csv")
    with pytest.raises(SystemExit, match="no title column"):
        dirty(src, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_swapped_exchanges_the_tables_and_the_pair_columns(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _bench(src, rows=5)
    swapped(src, out)
    assert (out / "tableA.csv").read_bytes() == (src / "tableB.csv").read_bytes()
    assert (out / "tableB.csv").read_bytes() == (src / "tableA.csv").read_bytes()
    got = pl.read_csv(out / "train.csv", infer_schema_length=0)
    assert got.columns == ["ltable_id", "rtable_id", "label"]
    assert got.rows() == [("2", "1", "1"), ("3", "2", "0")]
