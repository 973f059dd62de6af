"""Co-occurrence edges equal the loop reference exactly; hold-out split and graph tables."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmatch.errors import ConfigError
from crossmatch.graph import (
    cooccurrence_edges,
    cooccurrence_edges_loop,
    graph_stats,
    split_holdout,
    user_item_edges,
)


@st.composite
def sorted_logs(draw):
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 12))
    seqs = [draw(st.lists(st.integers(0, n_items - 1), min_size=0, max_size=25)) for _ in range(n_users)]
    users = [u for u, s in enumerate(seqs) for _ in s]
    items = [i for s in seqs for i in s]
    return users, items, n_items


@settings(max_examples=150, deadline=None)
@given(sorted_logs(), st.integers(1, 12))
def test_polars_equals_loop_reference(data, window):
    users, items, n_items = data
    frame = pl.DataFrame({"user_idx": users, "item_idx": items}, schema={"user_idx": pl.Int32, "item_idx": pl.Int32})
    got = cooccurrence_edges(frame, window=window, n_items=n_items)
    ref = cooccurrence_edges_loop(users, items, window=window)
    assert {(a, b): w for a, b, w in got.iter_rows()} == ref
    assert got.equals(got.sort("src", "dst"))


def test_window_counts_positions_and_skips_self_pairs():
    # sequence 0 1 0 2 for one user, window 2: pairs (0,1),(0,0)x,(1,0),(1,2),(0,2)
    frame = pl.DataFrame({"user_idx": [0, 0, 0, 0], "item_idx": [0, 1, 0, 2]})
    got = {(a, b): w for a, b, w in cooccurrence_edges(frame, window=2).iter_rows()}
    assert got == {(0, 1): 2, (1, 2): 1, (0, 2): 1}


def test_pairs_never_cross_users():
    frame = pl.DataFrame({"user_idx": [0, 1], "item_idx": [3, 4]})
    assert cooccurrence_edges(frame, window=9).height == 0


def test_bad_window():
    with pytest.raises(ConfigError, match="window must be >= 1"):
        cooccurrence_edges(pl.DataFrame({"user_idx": [0], "item_idx": [0]}), window=0)


def _logs(counts: dict[int, int]) -> pl.DataFrame:
    rows = [(u, k, k) for u, n in counts.items() for k in range(n)]
    return pl.DataFrame(
        {
            "user_idx": [r[0] for r in rows],
            "item_idx": [r[1] for r in rows],
            "timestamp": pl.Series([r[2] for r in rows]).cast(pl.Datetime("us")),
            "weight": [1.0] * len(rows),
        }
    )


def test_holdout_takes_the_last_share_of_each_user():
    logs = _logs({0: 10, 1: 4, 2: 1})
    train, test = split_holdout(logs, 0.2)
    per_user = dict(test.group_by("user_idx").len().iter_rows())
    assert per_user == {0: 2}  # floor(0.2*10)=2, floor(0.8)=0, floor(0.2)=0
    assert test.get_column("item_idx").to_list() == [8, 9]
    assert train.height + test.height == logs.height


def test_holdout_rejects_bad_fraction():
    with pytest.raises(ConfigError):
        split_holdout(_logs({0: 3}), 1.0)


def test_user_item_edges_and_stats():
    logs = _logs({0: 3, 1: 2}).with_columns(pl.col("item_idx") % 2)
    ui = user_item_edges(logs)
    assert ui.filter(pl.col("user_idx") == 0).sort("item_idx").get_column("count").to_list() == [2, 1]
    ii = cooccurrence_edges(logs, window=9, n_items=3)
    stats = graph_stats(2, 3, ii, ui, logs.height, 0)
    assert stats["isolated_items"] == 1
    assert stats["item_item_edges"] == 1
    assert stats["item_degree"]["max"] == 1.0
