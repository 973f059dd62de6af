"""Hostile catalogues, category tables and files (issue 15): bad names, inconsistent taxonomies, nested
feature columns, CR-only line ends, unterminated quotes, blank lines, folders and symbolic link loops.

The same harness as :mod:`tests.foundation.test_hostile_inputs`: exit code 2, a message of at most 500
characters naming the file (and column and first rows for row problems), nothing under the test's
folder written or changed (the previous outputs intact), no traceback.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from crossmatch.synth import World, generate_world, make_config
from tests.conftest import run_stage
from tests.foundation.test_hostile_inputs import (
    CONTROL_MSG,
    FORMATS,
    NULL_MSG,
    PARAMS,
    Layout,
    assert_rejected,
    base_logs,
    make_layout,
    put,
)

Items = dict[str, pl.DataFrame]


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(make_config("tiny", seed=3))


def _beta(items: Items, fn: Callable[[pl.DataFrame], pl.DataFrame]) -> Items:
    return {s: fn(f) if s == "beta" else f for s, f in items.items()}


def _nested(kind: str) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """A feature column of a nested type (only parquet can hold one)."""
    def add(frame: pl.DataFrame) -> pl.DataFrame:
        n = frame.height
        if kind == "struct":
            col = pl.Series("extra", [{"a": i, "b": "x"} for i in range(n)])
        elif kind == "list":
            col = pl.Series("extra", [[i, i + 1] for i in range(n)])
        else:
            col = pl.Series("extra", [[float(i), 0.0] for i in range(n)], dtype=pl.Array(pl.Float64, 2))
        return frame.with_columns(col)
    return add


# (case id, mutation of beta's catalogue, params, with taxonomy, message fragments after "beta.<fmt>")
ITEM_CASES: list[tuple[str, Callable[[pl.DataFrame], pl.DataFrame], str, bool, tuple[str, ...]]] = [
    ("item-NULL", lambda f: put(f, "item_id", 3, "NULL"), PARAMS, True, ("column 'item_id'", NULL_MSG, "first rows: 3")),
    ("item-NUL-byte", lambda f: put(f, "item_id", 4, "beta-i\x00000016"), PARAMS, True,
     ("column 'item_id'", CONTROL_MSG, "first rows: 4")),
    ("item-longer-than-param", lambda f: put(f, "item_id", 5, "beta-i0000150000000"),
     "ingest: {sources: [alpha, beta, gamma], max_id_length: 16}\n", True,
     ("column 'item_id'", "longer than 16 characters", "first rows: 5")),
    ("category-with-newline", lambda f: put(f, "category", 6, "tire\nju"), PARAMS, True,
     ("column 'category'", CONTROL_MSG, "first rows: 6")),
    ("fine-category-under-other-coarse", lambda f: put(f, "category", 2, "catane"), PARAMS, True,
     ("column 'fine_category'", "sits under another coarse category in the taxonomy", "1 bad row; first rows: 2")),
    ("fine-category-under-two-coarse", lambda f: put(f, "fine_category", 2, f.get_column("fine_category")[0]), PARAMS,
     False, ("column 'fine_category'", "filed under different coarse categories", "1 bad row; first rows: 2")),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case, mutate, params, with_taxonomy, fragments", ITEM_CASES, ids=[c[0] for c in ITEM_CASES])
def test_hostile_catalogue_rows(case: str, mutate: Callable[[pl.DataFrame], pl.DataFrame], params: str,
                                with_taxonomy: bool, fragments: tuple[str, ...], fmt: str, world: World,
                                tmp_path: Path) -> None:
    lay = make_layout(tmp_path, world, fmt, items=_beta(world.items, mutate), params=params,
                      with_taxonomy=with_taxonomy)
    assert_rejected(lay, f"beta.{fmt}", *fragments)


@pytest.mark.parametrize("kind", ["struct", "list", "array"])
def test_nested_feature_column(kind: str, world: World, tmp_path: Path) -> None:
    lay = make_layout(tmp_path, world, "parquet", items=_beta(world.items, _nested(kind)))
    assert_rejected(lay, "beta.parquet", "column 'extra'", "feature column has the nested type")


@pytest.mark.parametrize("fmt", FORMATS)
def test_hidden_catalogue_file_is_no_source_name(fmt: str, world: World, tmp_path: Path) -> None:
    """A file's name is its source's name, and so a folder name: '._beta' (a macOS resource file) is not one."""
    lay = make_layout(tmp_path, world, fmt, params="ingest: {}\n")
    (lay.items / f"._beta.{fmt}").write_bytes((lay.items / f"beta.{fmt}").read_bytes())
    assert_rejected(lay, f"._beta.{fmt}", "'._beta' taken from the file name cannot be a folder name")


def _categories_plus(world: World, *names: str) -> pl.DataFrame:
    return pl.concat([world.categories, pl.DataFrame({"category": list(names)})])


CATEGORY_CASES = [
    ("nfc-and-nfd-twice", (unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")),
     ("listed more than once", "Unicode NFC"), 2),
    ("newline-in-name", ("spare\nparts",), (CONTROL_MSG,), 1),
    ("None-as-name", ("None",), (NULL_MSG,), 1),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case, names, fragments, bad", CATEGORY_CASES, ids=[c[0] for c in CATEGORY_CASES])
def test_hostile_category_table(case: str, names: tuple[str, ...], fragments: tuple[str, ...], bad: int, fmt: str,
                                world: World, tmp_path: Path) -> None:
    lay = make_layout(tmp_path, world, fmt, categories=_categories_plus(world, *names))
    row = world.categories.height + bad
    assert_rejected(lay, f"categories.{fmt}", "column 'category'", *fragments, f"first rows: {row}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_character_in_taxonomy(fmt: str, world: World, tmp_path: Path) -> None:
    lay = make_layout(tmp_path, world, fmt, taxonomy=put(world.taxonomy, "fine_category", 3, "tireju:\tviru"))
    assert_rejected(lay, f"taxonomy.{fmt}", "column 'fine_category'", CONTROL_MSG, "first rows: 3")


# --- files: what polars would mis-read, silently or at great cost -------------------------------------------


def _csv_layout(tmp_path: Path, world: World) -> Layout:
    return make_layout(tmp_path, world, "csv")


def test_cr_only_line_endings_in_logs(world: World, tmp_path: Path) -> None:
    lay = _csv_layout(tmp_path, world)
    lay.logs.write_bytes(lay.logs.read_bytes().replace(b"\n", b"\r"))
    assert_rejected(lay, "logs.csv", "CR-only line endings")


def test_cr_only_line_endings_in_category_table(world: World, tmp_path: Path) -> None:
    lay = _csv_layout(tmp_path, world)
    lay.categories.write_bytes(lay.categories.read_bytes().replace(b"\n", b"\r"))
    assert_rejected(lay, "categories.csv", "CR-only line endings")


def _open_quote(path: Path, line: int) -> None:
    """Open a quote at the start of a field on ``line`` (1-based) that never closes."""
    lines = path.read_bytes().split(b"\n")
    cells = lines[line - 1].split(b",")
    cells[1] = b'"' + cells[1]
    lines[line - 1] = b",".join(cells)
    path.write_bytes(b"\n".join(lines))


def test_unterminated_quote_in_logs(world: World, tmp_path: Path) -> None:
    """polars quoted ~200,000 characters of the file in its error (or read no rows at all)."""
    lay = _csv_layout(tmp_path, world)
    _open_quote(lay.logs, 40)
    assert_rejected(lay, "logs.csv", "unterminated quote", "opened on line 40")


def test_unterminated_quote_in_catalogue(world: World, tmp_path: Path) -> None:
    lay = _csv_layout(tmp_path, world)
    _open_quote(lay.items / "gamma.csv", 3)
    assert_rejected(lay, "gamma.csv", "unterminated quote", "opened on line 3")


def test_file_of_blank_lines(world: World, tmp_path: Path) -> None:
    """A header and 2 MB of blank lines: rejected from a byte scan, before polars makes a row of nulls of each
    (which cost hundreds of bytes of memory per byte of file)."""
    lay = _csv_layout(tmp_path, world)
    header = lay.logs.read_bytes().split(b"\n", 1)[0]
    lay.logs.write_bytes(header + b"\n" + b"\n" * 2_000_000)
    assert_rejected(lay, "logs.csv", "blank line(s) at line 2, 3, 4, 5, 6, ...")


def test_blank_lines_between_rows(world: World, tmp_path: Path) -> None:
    lay = _csv_layout(tmp_path, world)
    lines = lay.logs.read_bytes().split(b"\n")
    lay.logs.write_bytes(b"\n".join(lines[:10] + [b"", b"\r"] + lines[10:]))
    assert_rejected(lay, "logs.csv", "blank line(s) at line 11, 12;")


def test_blank_line_inside_a_quoted_title_is_data(world: World, tmp_path: Path) -> None:
    """The byte scan knows quotes: an empty line inside a quoted field is part of the value (accepted)."""
    items = _beta(world.items, lambda f: put(f, "title", 2, "first paragraph\n\nsecond paragraph"))
    lay = make_layout(tmp_path, world, "csv", items=items)
    proc = run_stage("ingest", *lay.args(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    titles = pl.read_parquet(lay.out / "beta" / "items.parquet").get_column("title").to_list()
    assert "first paragraph\n\nsecond paragraph" in titles


def test_trailing_blank_lines_in_catalogue(world: World, tmp_path: Path) -> None:
    lay = _csv_layout(tmp_path, world)
    beta = lay.items / "beta.csv"
    n_lines = beta.read_bytes().count(b"\n")
    beta.write_bytes(beta.read_bytes() + b"\n\n")
    assert_rejected(lay, "beta.csv", f"blank line(s) at line {n_lines + 1}, {n_lines + 2};")


def test_wide_header_without_required_columns_is_a_short_message(world: World, tmp_path: Path) -> None:
    lay = _csv_layout(tmp_path, world)
    lay.logs.write_text(",".join(f"column_{i}" for i in range(5000)) + "\n" + ",".join("1" * 5000) + "\n")
    assert_rejected(lay, "logs.csv", "missing required column(s)")


def test_corrupt_parquet_is_a_short_message(world: World, tmp_path: Path) -> None:
    lay = make_layout(tmp_path, world, "parquet")
    lay.logs.write_bytes(b"PAR1" + os.urandom(200_000))
    assert_rejected(lay, "logs.parquet", "not a readable parquet file")


@pytest.mark.parametrize("what", ["categories", "taxonomy"])
def test_folder_where_a_file_is_expected(what: str, world: World, tmp_path: Path) -> None:
    """A folder used to be read as its first file: now it is named as a folder."""
    lay = _csv_layout(tmp_path, world)
    folder = tmp_path / "raw" / f"{what}_dir"
    folder.mkdir()
    (folder / f"{what}.csv").write_bytes(getattr(lay, what).read_bytes())
    setattr(lay, what, folder)
    assert_rejected(lay, f"{what}_dir", "expected a file but found a directory")


@pytest.mark.parametrize("what", ["logs", "categories", "taxonomy"])
def test_symbolic_link_loop(what: str, world: World, tmp_path: Path) -> None:
    """A link to itself used to be reported as "file not found"."""
    lay = _csv_layout(tmp_path, world)
    loop = tmp_path / "raw" / f"loop_{what}.csv"
    os.symlink(loop, loop)
    setattr(lay, what, loop)
    assert_rejected(lay, f"loop_{what}.csv", "symbolic link loop")


def test_symbolic_link_loop_inside_the_catalogue_folder(world: World, tmp_path: Path) -> None:
    """A folder's looping link was skipped silently: one source's catalogue would go missing unnamed."""
    lay = _csv_layout(tmp_path, world)
    loop = lay.items / "delta.csv"
    os.symlink(loop, loop)
    assert_rejected(lay, "delta.csv", "symbolic link loop")


def test_broken_symbolic_link(world: World, tmp_path: Path) -> None:
    lay = _csv_layout(tmp_path, world)
    link = tmp_path / "raw" / "taxonomy_link.csv"
    os.symlink(tmp_path / "raw" / "moved_away.csv", link)
    lay.taxonomy = link
    assert_rejected(lay, "taxonomy_link.csv", "broken symbolic link", "moved_away.csv")


# --- edges: a source with no co-occurrence edge ------------------------------------------------------------


def test_edges_rejects_a_source_without_cooccurrence(world: World, tmp_path: Path) -> None:
    """Two events per user, one held out for test and one for validation: no training pair is left.
    The edges stage now says so (before: 0 edges, and a failure or nothing learnt downstream)."""
    logs = base_logs(world).sort("source", "user_id", "timestamp").group_by("source", "user_id", maintain_order=True).head(2)
    lay = make_layout(tmp_path, world, "parquet", logs=logs.select(base_logs(world).columns))
    proc = run_stage("ingest", *lay.args(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "edges.yaml").write_text("edges: {window: 9, holdout_fraction: 0.1, valid_fraction: 0.1, min_per_user: 1}\n")
    edges_out = tmp_path / "work" / "edges"
    (edges_out / "alpha").mkdir(parents=True)
    (edges_out / "alpha" / "item_item.parquet").write_bytes(b"previous edges")
    args = ["--params", str(tmp_path / "edges.yaml"), "--ingested", str(lay.out), "--out", str(edges_out),
            "--stats", str(tmp_path / "work" / "edges.json")]
    assert_rejected(lay, "alpha/logs.parquet", "source 'alpha' gives no item-item co-occurrence edge",
                    args=args, module="edges")
