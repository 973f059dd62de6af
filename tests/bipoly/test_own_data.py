"""Blocking on a user's own data (issue 14, item 5): no truth files, only the required item columns.

Without labelled pairs nothing is tuned (every method at ``blocking.untuned``) and the metrics say so with
null quality figures; without ``fine_category`` the coarse ``category`` is matched; without ``title`` the
category names are the text. The blocks keep the format ``stages/match.py`` reads.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from crossmatch.bipoly.blocking import run_blocking
from crossmatch.bipoly.config import BlockingParams, IlpParams, UntunedParams
from crossmatch.bipoly.items import blocking_items
from crossmatch.errors import ConfigError, InputError
from crossmatch.twosided.block_match import candidate_pairs
from tests.conftest import run_stage

SMALL = {"left": "a", "right": "b", "partition_by": None, "runner": "thread", "workers": 1,
         "grid": {"omega": [-1.0, 1.0, 1.0], "eta": [-1.0, 1.0, 1.0]},
         "ilp": {"methods": ["bipoly"], "time_limit": 5, "mip_gap": 0.0}, "scenario": {"enabled": False}}


def _catalogue(prefix: str, cats: list[str], per: int = 2) -> pl.DataFrame:
    """Only the required columns: item_id and the coarse category."""
    return pl.DataFrame({"item_id": [f"{prefix}{c}{k}" for c in cats for k in range(per)],
                         "category": [c for c in cats for _ in range(per)]})


def test_blocking_items_fill_in_what_is_missing() -> None:
    bare = blocking_items(_catalogue("a", ["home_kitchen"]), source="a")
    assert bare.fine_from_coarse and bare.title_from_names
    assert bare.items.get_column("fine_category").to_list() == ["home_kitchen"] * 2
    assert bare.items.get_column("title").to_list() == ["home kitchen"] * 2
    full = pl.DataFrame({"item_id": ["x"], "category": ["c"], "fine_category": ["c_f"], "title": ["a kettle"]})
    kept = blocking_items(full, source="a")
    assert not kept.fine_from_coarse and not kept.title_from_names and kept.items.equals(full)
    with pytest.raises(InputError, match="category"):
        blocking_items(pl.DataFrame({"item_id": ["x"]}), source="a")


def test_no_truth_no_fine_category_no_title_blocks_by_category_names() -> None:
    left = _catalogue("a", ["home_kitchen", "garden_tools", "toys_games"])
    right = _catalogue("b", ["kitchen_home", "tools_garden", "books"])
    res = run_blocking(BlockingParams(**SMALL), left_items=left, right_items=right, truth_pairs=None)
    m = res.metrics
    assert m["tuned"] is False and m["protocol"] is None and m["references"] is None and m["n_true_pairs"] is None
    assert m["untuned"] == {"omega": -1.0, "eta": -1.0, "similarity": "tfidf"}
    assert m["columns"]["a"] == {"category": "category", "text": "category names"}
    for name, row in m["methods"].items():  # no fake numbers: only the reduction is measurable
        assert row["coverage"] is None and row["tradeoff"] is None, name
        assert 0.0 <= row["reduction"] <= 1.0
    # categories sharing name tokens are blocked together; "books" shares none and stays alone
    pairs = set(zip(res.blocks.get_column("left").to_list(), res.blocks.get_column("right").to_list(), strict=True))
    assert pairs == {("home_kitchen", "kitchen_home"), ("garden_tools", "tools_garden")}
    assert res.blocks.columns == ["block_id", "left", "right"] and res.blocks.dtypes[0] == pl.Int64
    assert res.candidates.height == 2 * 2 * 2
    # stages/match.py expands these blocks over the items' categories into the same candidate pairs
    items_l, items_r = (blocking_items(x, source=s).items for x, s in ((left, "a"), (right, "b")))
    expanded = candidate_pairs(items_l, items_r, blocks=res.blocks, max_pairs=1000)
    assert expanded.left.size == res.candidates.height


def test_with_truth_but_only_required_columns_is_tuned() -> None:
    left = _catalogue("a", ["home_kitchen", "garden_tools"])
    right = _catalogue("b", ["kitchen_home", "tools_garden"])
    truth = pl.DataFrame({"item_a": ["ahome_kitchen0", "agarden_tools1"], "item_b": ["bkitchen_home0", "btools_garden1"]})
    res = run_blocking(BlockingParams(**SMALL), left_items=left, right_items=right, truth_pairs=truth)
    assert res.metrics["tuned"] is True
    assert res.metrics["methods"]["bipoly_c"]["coverage"] == 1.0
    assert res.metrics["ilp_budget"]["hit"] is False


def test_no_truth_refuses_metablocking_and_checks_settings() -> None:
    left, right = _catalogue("a", ["x_y"]), _catalogue("b", ["y_x"])
    params = BlockingParams(**{**SMALL, "metablocking": {"enabled": True}})
    with pytest.raises(ConfigError, match="labelled pairs"):
        run_blocking(params, left_items=left, right_items=right, truth_pairs=None)
    with pytest.raises(ConfigError, match="untuned.similarity"):
        UntunedParams(similarity="cosine")
    assert IlpParams(grid=None).grid == "tuned"
    assert (IlpParams(grid=[-1.0, 1.0, 1.0]).grid, IlpParams(grid=[-1.0, 1.0, 1.0]).grid_axis) == ("full", [-1.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match="ilp.grid"):
        IlpParams(grid="everything")


def test_stage_runs_without_truth_on_items_with_only_required_columns(tiny_data, tmp_path) -> None:
    ingested = tmp_path / "ingested"
    for source in ("alpha", "beta"):
        items = pl.read_parquet(tiny_data.ingested / source / "items.parquet").drop("fine_category", "title")
        (ingested / source).mkdir(parents=True)
        items.write_parquet(ingested / source / "items.parquet")
    params = tmp_path / "params.yaml"
    params.write_text("blocking:\n  partition_by: category\n  runner: thread\n  workers: 1\n  ilp: {time_limit: 5}\n"
                      "  scenario: {enabled: true}\n")
    proc = run_stage("blocking", "--params", str(params), "--ingested", str(ingested), "--out", str(tmp_path / "out"),
                     "--metrics", str(tmp_path / "blocking.json"), "--plots", str(tmp_path / "plots" / "blocking"))
    assert proc.returncode == 0, proc.stderr
    assert "untuned" in proc.stderr
    metrics = json.loads((tmp_path / "blocking.json").read_text())
    assert metrics["tuned"] is False and metrics["methods"]["bipoly_c"]["coverage"] is None
    assert metrics["partition_by"].startswith("null") and "skipped" in metrics["entity_scenario"]
    blocks = pl.read_parquet(tmp_path / "out" / "blocks.parquet")
    cand = pl.read_parquet(tmp_path / "out" / "candidate_pairs.parquet")
    assert blocks.columns == ["block_id", "left", "right"] and blocks.height > 0
    assert cand.columns == ["left_item_id", "right_item_id", "block_id"] and cand.height > 0
    cats = set(pl.read_parquet(ingested / "alpha" / "items.parquet").get_column("category").to_list())
    assert set(blocks.get_column("left").to_list()) <= cats
    for name in ("tradeoff", "grid"):
        assert (tmp_path / "plots" / f"blocking_{name}.png").exists()


def test_blocks_over_max_listed_pairs_are_written_without_their_pair_list() -> None:
    """One huge block (one shared category, no taxonomy) is not listed pair by pair: the count comes from the
    category sizes, candidate_pairs is None, and the blocks still reach the match stage's top-k cut."""
    left = _catalogue("a", ["home_kitchen", "garden_tools"], per=30)
    right = _catalogue("b", ["kitchen_home", "tools_garden"], per=40)
    listed = run_blocking(BlockingParams(**SMALL), left_items=left, right_items=right, truth_pairs=None)
    assert listed.candidates is not None and listed.candidates.height == 2 * 30 * 40
    assert listed.metrics["candidate_pairs_listed"] is True
    capped = run_blocking(BlockingParams(**{**SMALL, "max_listed_pairs": 2 * 30 * 40 - 1}), left_items=left,
                          right_items=right, truth_pairs=None)
    assert capped.candidates is None and capped.metrics["candidate_pairs_listed"] is False
    assert capped.metrics["n_candidate_pairs"] == 2 * 30 * 40  # from the category sizes
    assert capped.blocks.equals(listed.blocks)
    items_l, items_r = (blocking_items(x, source=s).items for x, s in ((left, "a"), (right, "b")))
    rng = __import__("numpy").random.default_rng(0)
    emb = (rng.normal(size=(60, 4)), rng.normal(size=(80, 4)))
    cut = candidate_pairs(items_l, items_r, blocks=capped.blocks, max_pairs=10_000, max_block_pairs=100,
                          block_top_k=3, embeddings=emb)
    assert 0 < cut.left.size <= 2 * 3 * (30 + 40)
    with pytest.raises(ConfigError, match="max_listed_pairs"):
        BlockingParams(**{**SMALL, "max_listed_pairs": 0})
