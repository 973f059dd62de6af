"""Readers, type coercion and the real-data adapters."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from crossmatch.errors import InputError
from crossmatch.io import Table, ingest, read_table, read_tables
from crossmatch.io.adapters import UNCATEGORISED, walmart_amazon, xmarket
from crossmatch.io.coerce import as_timestamp


def test_timestamp_formats():
    raw = pl.DataFrame({"t": ["2015-12-27", "2024-01-01T10:00:00", "2024-01-01 10:00:00.5", "2024-01-01T10:00:00+02:00", "1700000000", "nope"]})
    got = raw.select(as_timestamp("t", pl.String, file="x")).get_column("t").to_list()
    utc = timezone.utc
    assert got[0] == datetime(2015, 12, 27, tzinfo=utc)
    assert got[1] == datetime(2024, 1, 1, 10, tzinfo=utc)
    assert got[2] == datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=utc)
    assert got[3] == datetime(2024, 1, 1, 8, tzinfo=utc)
    assert got[4] == datetime.fromtimestamp(1700000000, tz=utc)
    assert got[5] is None


def test_read_table_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="expected a file"):
        read_table(tmp_path)
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(InputError, match="unsupported file type"):
        read_table(tmp_path / "a.xlsx")
    (tmp_path / "d.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(InputError, match=r"repeats column name\(s\) \['a'\]"):
        read_table(tmp_path / "d.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="not a readable parquet file"):
        read_table(tmp_path / "bad.parquet")


def test_read_tables_folder_uses_file_names_as_sources(tmp_path):
    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "alpha.parquet")
    pl.DataFrame({"source": ["beta"], "x": [2]}).write_csv(tmp_path / "mixed.csv")
    tables = {t.file.split("/")[-1]: t for t in read_tables(tmp_path)}
    assert tables["alpha.parquet"].source == "alpha"
    assert tables["mixed.csv"].source is None


def test_xmarket_adapter_hides_asins():
    frame = pl.DataFrame({"userId": ["u1", "u1", "u2"], "itemId": ["B01", "B02", "B01"], "rate": ["5.0", "3.0", "4.0"], "date": ["2015-01-02", "2015-01-03", "2016-05-05"]})
    a = xmarket({"ca": Table("ca.txt", "ca", frame), "de": Table("de.txt", "de", frame)}, seed=1)
    res = ingest(log_tables=a.log_tables, item_tables=a.item_tables, category_table=a.category_table)
    ids_ca = set(res.items["ca"].get_column("item_id").to_list())
    ids_de = set(res.items["de"].get_column("item_id").to_list())
    assert not ids_ca & ids_de and not any("B0" in i for i in ids_ca)
    truth = a.concepts
    assert truth.filter(pl.col("source") == "ca").height == 2
    assert res.logs["ca"].get_column("weight").to_list() == [5.0, 3.0, 4.0]


def test_walmart_amazon_adapter_maps_empty_category():
    ta = pl.DataFrame({"id": ["0"], "title": ["tv"], "category": ["televisions"], "brand": ["x"], "modelno": ["1"], "price": ["9.5"]})
    tb = pl.DataFrame({"id": ["0", "1"], "title": ["tv set", "cable"], "category": ["tvs", None], "brand": ["x", "y"], "modelno": ["1", "2"], "price": ["9", ""]})
    pairs = pl.DataFrame({"ltable_id": ["0", "0"], "rtable_id": ["0", "1"], "label": ["1", "0"]})
    a = walmart_amazon(Table("A", None, ta), Table("B", None, tb), [Table("p", None, pairs)])
    res = ingest(log_tables=[], item_tables=a.item_tables, category_table=a.category_table, taxonomy_table=a.taxonomy_table)
    assert UNCATEGORISED in res.items["amazon"].get_column("fine_category").to_list()
    assert a.product_truth.rows() == [("walmart", "walmart-0", "amazon", "amazon-0", "p")]  # split = file stem


def test_real_data_sizes_match_the_data_readme(shared_data):
    from crossmatch.io.adapters import read_dataset

    xm = read_dataset("xmarket", shared_data / "xmarket_electronics", seed=0)
    rows = {t.source: t.frame.height for t in xm.log_tables}
    assert rows == {"ca": 44779, "de": 17300, "fr": 17624, "in": 2015, "mx": 17095}
    wa = read_dataset("walmart_amazon", shared_data / "walmart_amazon", seed=0)
    res = ingest(log_tables=[], item_tables=wa.item_tables, category_table=wa.category_table, taxonomy_table=wa.taxonomy_table)
    assert res.items["walmart"].height == 2554 and res.items["amazon"].height == 22074
    tax = dict(res.taxonomy.group_by("source").len().iter_rows())
    # The README's 707 Amazon values count the empty category, which becomes "(uncategorised)".
    assert tax == {"walmart": 63, "amazon": 707}
    amazon = res.items["amazon"].get_column("fine_category")
    assert (amazon == UNCATEGORISED).sum() == 1229
    assert wa.product_truth.height == 576 + 193
    assert dict(wa.product_truth.group_by("split").len().iter_rows()) == {"train": 576, "valid": 193}
