"""Item feature columns from a csv catalogue, as the README states them: ``cat_*`` categorical (integers or
text, encoded), ``num_*`` dense numbers, any other column kept but no ICPA feature."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from crossmatch.errors import InputError
from crossmatch.icpa import SourceFrames, build_multisource_graph
from crossmatch.io import Table, ingest, read_table


def _ingest(tmp_path: Path, items_csv: str):
    (tmp_path / "items.csv").write_text(items_csv)
    (tmp_path / "logs.csv").write_text("user_id,item_id,timestamp,weight\n"
                                       "u1,a,2024-01-01,1\nu1,b,2024-01-02,1\nu1,c,2024-01-03,1\n")
    (tmp_path / "cats.csv").write_text("category\ntv\n")
    return ingest(log_tables=[Table("logs.csv", "s", read_table(tmp_path / "logs.csv"))],
                  item_tables=[Table("items.csv", "s", read_table(tmp_path / "items.csv"))],
                  category_table=Table("cats.csv", None, read_table(tmp_path / "cats.csv")))


def test_csv_features_are_typed_and_reach_the_icpa_graph(tmp_path: Path) -> None:
    res = _ingest(tmp_path, "item_id,category,cat_brand,cat_size,num_price,colour\n"
                            "a,tv,sony,3,1.5,red\nb,tv,lg,0,2,blue\nc,tv,sony,1,10,red\n")
    items = res.items["s"]
    assert items.schema["cat_brand"] == pl.Int64 and items.schema["cat_size"] == pl.Int64
    assert items.schema["num_price"] == pl.Float64 and items.schema["colour"] == pl.String
    assert items.get_column("cat_brand").to_list() == [1, 0, 1]  # lg 0, sony 1 (value order)
    assert items.get_column("cat_size").to_list() == [3, 0, 1]  # integer text kept as those integers
    ii = pl.DataFrame({"src": [0], "dst": [1], "weight": [1.0]})
    ui = pl.DataFrame({"user_idx": [0, 0], "item_idx": [0, 1], "weight": [1.0, 1.0]})
    graph = build_multisource_graph({"s": SourceFrames(items, ii, ui)})
    schema = graph.sources[0].schema
    assert schema.cat_cardinalities == (2, 4) and schema.n_dense == 1  # colour is no feature


def test_a_dense_feature_that_is_no_number_is_a_bad_row(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        _ingest(tmp_path, "item_id,category,num_price\na,tv,1.5\nb,tv,cheap\nc,tv,3\n")
    msg = str(exc.value)
    assert "num_price" in msg and "not a number" in msg and "2" in msg
