"""The first three stages on the tiny preset: outputs exist with the documented columns."""

from __future__ import annotations

import json

import polars as pl


def test_tiny_outputs_have_contract_columns(tiny_data):
    for source in ("alpha", "beta", "gamma"):
        logs = pl.read_parquet(tiny_data.ingested / source / "logs.parquet")
        assert logs.columns[:6] == ["user_idx", "item_idx", "user_id", "item_id", "timestamp", "weight"]
        assert logs.equals(logs.sort("user_idx", "timestamp", "item_idx"))
        items = pl.read_parquet(tiny_data.ingested / source / "items.parquet")
        assert items.get_column("item_idx").to_list() == list(range(items.height))
        ii = pl.read_parquet(tiny_data.edges / source / "item_item.parquet")
        assert ii.columns == ["src", "dst", "weight"]
        assert (ii.get_column("src") < ii.get_column("dst")).all()
    stats = json.loads((tiny_data.metrics / "edges.json").read_text())
    assert set(stats["sources"]) == {"alpha", "beta", "gamma"}
