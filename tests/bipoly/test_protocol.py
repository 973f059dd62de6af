"""Generalisation protocol for blocking (issue 12 part 1): label splits, budgeted node pruning, recall curve,
meta-blocking with and without BiPoly at one budget (crossmatch.bipoly.protocol)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from crossmatch.bipoly import Rewards, bipoly_c
from crossmatch.bipoly.metablocking import node_pruning
from crossmatch.bipoly.protocol import (
    PairKeys,
    budget_order,
    meta_blocking_protocol,
    node_rank,
    recall_curve,
    split_labels,
)
from crossmatch.errors import ConfigError, InputError
from tests.conftest import run_stage


def _truth() -> pl.DataFrame:
    return pl.DataFrame({"item_a": ["a0", "a1", "a2", "a0"], "item_b": ["b0", "b1", "b2", "b0"],
                         "split": ["train", "train", "valid", "valid"]})


def test_split_labels_holds_out_only_pairs_never_seen_in_tuning() -> None:
    lab = split_labels(_truth(), ["train"], ["valid"])
    assert lab.held_out and lab.tune.height == 2
    assert lab.report.rows() == [("a2", "b2")]  # (a0, b0) is labelled in train too: not held out
    legacy = split_labels(_truth().drop("split"), None, None)
    assert not legacy.held_out and legacy.tune.height == legacy.report.height == 4
    with pytest.raises(InputError, match="no labelled pair in split"):
        split_labels(_truth(), ["train"], ["test"])
    with pytest.raises(InputError, match="no 'split' column"):
        split_labels(_truth().drop("split"), ["train"], ["valid"])
    with pytest.raises(ConfigError, match="both"):
        split_labels(_truth(), ["train"], None)


def test_budget_at_node_pruning_size_is_node_pruning() -> None:
    rng = np.random.default_rng(0)
    key = np.unique(rng.integers(0, 30 * 40, 400))
    rows, cols = key // 40, key % 40
    w = np.round(rng.random(key.size), 2)  # ties occur
    order = budget_order(rows, cols, w)
    assert sorted(order.tolist()) == list(range(key.size))
    for k in (1, 2, 3, 5):
        mask = node_pruning(rows, cols, w, k)
        assert np.array_equal(np.sort(order[: mask.sum()]), np.flatnonzero(mask))
        assert np.array_equal(node_rank(rows, cols, w) < k, mask)


def test_recall_curve_counts_true_pairs_in_each_prefix() -> None:
    hit = np.array([False, True, False, True, True])
    order = np.array([1, 0, 3, 2, 4])
    got = recall_curve(order, hit, np.array([0, 1, 2, 3, 5, 9]), 4)  # one true pair is never a candidate
    assert got.tolist() == [0.0, 0.25, 0.25, 0.5, 0.75, 0.75]


def test_meta_blocking_protocol_compares_at_one_budget_and_uses_bipoly_only_when_it_helps() -> None:
    tl = ["tv sony 40", "tv lg 55", "cable hdmi", "mouse usb"]
    tr = ["sony tv 40 inch", "lg tv 55", "hdmi cable 2m", "usb mouse", "tv stand", "usb cable"]
    cl, cr = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1, 0, 1])
    ids_l, ids_r = [f"a{i}" for i in range(4)], [f"b{i}" for i in range(6)]
    tune = PairKeys.build(ids_l, ids_r, pl.DataFrame({"item_a": ["a0", "a2"], "item_b": ["b0", "b2"]}))
    report = PairKeys.build(ids_l, ids_r, pl.DataFrame({"item_a": ["a1", "a3"], "item_b": ["b1", "b3"]}))
    res = meta_blocking_protocol(tl, tr, cl, cr, 2, 2, lambda i: bipoly_c(i, Rewards()), tune, report, budget=5,
                                 boosts=[0.5], weightings=["js", "cbs"], max_comparisons=100, curve_budgets=[1, 3, 5])
    m = res.metrics
    assert m["with_bipoly"]["report"]["n_pairs"] == m["without_bipoly"]["report"]["n_pairs"] == res.left.size == 5
    if m["with_bipoly"]["tune"]["coverage"] <= m["without_bipoly"]["tune"]["coverage"]:
        assert not m["uses_bipoly"] and m["boost"] == 0.0
    assert m["coverage"] == report.scores(res.left, res.right)["coverage"]
    assert {r["weighting"] for r in m["tuning"]} == {"js", "cbs"}
    assert res.curve.columns[0] == "n_pairs" and res.curve.height == 3
    assert (res.curve.drop("n_pairs").to_numpy()[1:] >= res.curve.drop("n_pairs").to_numpy()[:-1]).all()
    with pytest.raises(ConfigError):
        meta_blocking_protocol(tl, tr, cl, cr, 2, 2, lambda i: bipoly_c(i, Rewards()), tune, report, budget=0,
                               boosts=[0.5], weightings=["js"], max_comparisons=100)


PARAMS = """
blocking:
  left: alpha
  right: beta
  similarity: tfidf
  top_k: 10
  select: metablocking
  runner: thread
  workers: 1
  methods: [bipoly_c, bipartite]
  tune_splits: [train]
  report_splits: [valid]
  grid: {omega: [-1.0, 1.0, 0.5], eta: [-1.0, 1.0, 0.5], tie_sides: true}
  ilp: {methods: [bipartite], time_limit: 5, mip_gap: 0.0, max_weight: false}
  metablocking: {enabled: true, method: bipoly_c, max_comparisons: 1000000, max_pairs: 300, boosts: [0.2]}
"""


def test_blocking_stage_tunes_on_train_and_reports_valid(tiny_data, tmp_path) -> None:
    truth = pl.read_parquet(tiny_data.truth / "product_matches.parquet")
    truth = truth.with_columns(split=pl.when(pl.int_range(pl.len()) % 3 == 0).then(pl.lit("valid")).otherwise(pl.lit("train")))
    truth.write_parquet(tmp_path / "truth.parquet")
    (tmp_path / "params.yaml").write_text(PARAMS)
    proc = run_stage("blocking", "--params", str(tmp_path / "params.yaml"), "--ingested", str(tiny_data.ingested),
                     "--truth-pairs", str(tmp_path / "truth.parquet"), "--out", str(tmp_path / "blocking"),
                     "--metrics", str(tmp_path / "m.json"), "--plots", str(tmp_path / "plots" / "b"))
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["protocol"]["held_out"] and m["protocol"]["reported_on"] == "valid"
    assert m["n_true_pairs"] == m["protocol"]["n_report_pairs"]
    assert "tune" in m["methods"]["bipoly_c"] and "tune_category_pairs" in m["references"]
    # the ILP solves the greedy Bipartite's own objective: never below it (issue 12, 9a)
    assert m["methods"]["ilp_bipartite"]["objective"] >= m["methods"]["bipartite"]["objective"] - 1e-9
    mb = m["metablocking"]
    assert mb["n_pairs"] <= 300 and mb["with_bipoly"]["report"]["n_pairs"] == mb["without_bipoly"]["report"]["n_pairs"]
    assert (tmp_path / "plots" / "b_recall_curve.csv").exists() and (tmp_path / "plots" / "b_recall_curve.png").exists()
    assert pl.read_parquet(tmp_path / "blocking" / "candidate_pairs.parquet").height == mb["n_pairs"]
