"""Matching inside blocks as a library (crossmatch.twosided.block_match), without the stage."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crossmatch.errors import ConfigError, InputError
from crossmatch.truth import oriented_pair_set as oriented_pairs
from crossmatch.twosided.block_match import (
    PAIRS_SCHEMA,
    MatchParams,
    align_embeddings,
    candidate_pairs,
    match_in_blocks,
)
from crossmatch.twosided.preferences import pair_similarity, tfidf_vectors
from crossmatch.twosided.sparse_market import SparseMarket, is_stable_incomplete

LEFT = pl.DataFrame({"item_id": ["l0", "l1", "l2", "l3"], "fine_category": ["x", "x", "y", "y"],
                     "title": ["red phone case", "blue phone case", "steel kettle 2l", "glass kettle"]})
RIGHT = pl.DataFrame({"item_id": ["r0", "r1", "r2", "r3", "r4"], "fine_category": ["u", "u", "v", "v", "v"],
                      "title": ["blue phone case", "red phone case", "glass kettle large", "kettle steel 2l", "toaster"]})


def _all_pairs_in_blocks() -> tuple[pl.DataFrame, pl.DataFrame]:
    blocks = pl.DataFrame({"block_id": [0, 1], "left": ["x", "y"], "right": ["u", "v"]})
    rows = [(a, b, bid) for bid, lc, rc in blocks.iter_rows()
            for a in LEFT.filter(pl.col("fine_category") == lc)["item_id"]
            for b in RIGHT.filter(pl.col("fine_category") == rc)["item_id"]]
    cand = pl.DataFrame(rows, schema={"left_item_id": pl.Utf8, "right_item_id": pl.Utf8, "block_id": pl.Int64}, orient="row")
    return blocks, cand


def test_candidates_from_pairs_or_blocks_agree_and_duplicates_keep_the_first_block() -> None:
    blocks, cand = _all_pairs_in_blocks()
    from_pairs = candidate_pairs(LEFT, RIGHT, candidates=cand, max_pairs=100)
    from_blocks = candidate_pairs(LEFT, RIGHT, blocks=blocks, max_pairs=100)
    assert from_pairs.source == "candidate_pairs" and from_blocks.source == "blocks"
    assert np.array_equal(from_pairs.left, from_blocks.left) and np.array_equal(from_pairs.right, from_blocks.right)
    assert from_pairs.block_ids == from_blocks.block_ids and from_pairs.left.size == 2 * 2 + 2 * 3
    extra = pl.DataFrame({"left_item_id": ["l0", "nope"], "right_item_id": ["r0", "r0"], "block_id": [-1, 7]})
    dup = candidate_pairs(LEFT, RIGHT, candidates=pl.concat([cand, extra]), max_pairs=100)
    assert dup.unknown == 1 and dup.block_ids[0] == -1  # "-1" < "0" in text order
    with pytest.raises(InputError, match="max_pairs"):
        candidate_pairs(LEFT, RIGHT, blocks=blocks, max_pairs=3, file="blocks.parquet")
    with pytest.raises(InputError, match="missing column"):
        candidate_pairs(LEFT, RIGHT, candidates=cand.drop("block_id"), max_pairs=100)


@pytest.mark.parametrize("solver", ["gs", "gs_best", "power_balance"])
def test_match_in_blocks_is_one_to_one_stable_and_finds_the_same_titles(solver: str) -> None:
    _, cand = _all_pairs_in_blocks()
    cands = candidate_pairs(LEFT, RIGHT, candidates=cand, max_pairs=100)
    truth = {("l0", "r1"), ("l1", "r0"), ("l2", "r3"), ("l3", "r2")}
    params = MatchParams(left="a", right="b", solver=solver, similarity="tfidf")
    pairs, metrics = match_in_blocks(params, items_left=LEFT, items_right=RIGHT, candidates=cands, truth=truth)
    assert pairs.schema == pl.Schema(PAIRS_SCHEMA)
    assert pairs["left_item_id"].is_unique().all() and pairs["right_item_id"].is_unique().all()
    assert set(zip(pairs["left_item_id"], pairs["right_item_id"], strict=True)) == truth
    assert metrics["precision"] == metrics["recall"] == 1.0 and metrics["markets"] == 2
    assert metrics["truth_pairs_in_candidates"] == 4 and metrics["candidates_from"] == "candidate_pairs"
    # stable with incomplete lists inside each market (block x: 2 × 2, block y: 2 × 3)
    ids_l, ids_r = LEFT["item_id"].to_list(), RIGHT["item_id"].to_list()
    sim, _ = pair_similarity(cands.left, cands.right, tfidf_vectors(LEFT["title"].to_list(), RIGHT["title"].to_list()))
    for lo, hi, r_lo, r_hi in ((0, 2, 0, 2), (2, 4, 2, 5)):
        sel = (cands.left >= lo) & (cands.left < hi)
        score = sim[sel]
        market = SparseMarket(hi - lo, r_hi - r_lo, cands.left[sel] - lo, cands.right[sel] - r_lo, score, score)
        got = pairs.filter(pl.col("left_item_id").is_in(ids_l[lo:hi]))
        ml = np.array([ids_l.index(x) - lo for x in got["left_item_id"]])
        mr = np.array([ids_r.index(x) - r_lo for x in got["right_item_id"]])
        assert is_stable_incomplete(market, ml, mr)
    # pairs below min_similarity are dropped after matching, never re-matched
    strict = MatchParams(left="a", right="b", solver=solver, similarity="tfidf", min_similarity=0.99)
    kept, m2 = match_in_blocks(strict, items_left=LEFT, items_right=RIGHT, candidates=cands, truth=truth)
    assert kept.height == pairs.height - 1 and (kept["similarity"] >= 0.99).all() and m2["candidate_pairs"] == 10
    assert ("l3", "r2") not in set(zip(kept["left_item_id"], kept["right_item_id"], strict=True))


def test_embeddings_truth_and_params_are_checked() -> None:
    emb = pl.DataFrame({"item_id": ["l1", "zz"], "embedding": [[1.0, 0.0], [0.0, 1.0]]})
    out = align_embeddings(emb, ["l0", "l1"])
    assert np.isnan(out[0]).all() and np.array_equal(out[1], [1.0, 0.0])
    with pytest.raises(InputError, match="item_id, embedding"):
        align_embeddings(emb.rename({"embedding": "vec"}), ["l0"])
    truth = pl.DataFrame({"source_a": ["a", "b", "c"], "item_a": ["l0", "r1", "l2"], "source_b": ["b", "a", "b"],
                          "item_b": ["r0", "l1", "r2"]})
    assert oriented_pairs(truth, "a", "b") == {("l0", "r0"), ("l1", "r1")}
    with pytest.raises(InputError, match="'source_a' without 'source_b'"):
        oriented_pairs(truth.drop("source_b"), "a", "b")
    with pytest.raises(InputError, match="missing column"):
        oriented_pairs(truth.drop("item_b"), "a", "b")
    # one reading for blocking and match: the same pairs, with or without the source columns
    from crossmatch.truth import oriented_truth
    assert oriented_pairs(truth.drop("source_a", "source_b").head(1), "a", "b") == {("l0", "r0")}
    both = oriented_truth(truth, "a", "b")
    assert set(both.select("item_a", "item_b").iter_rows()) == oriented_pairs(truth, "a", "b")
    assert oriented_pairs(truth, "x", "y") == set()
    with pytest.raises(InputError, match="no true pair between sources 'x' and 'y'"):
        oriented_truth(truth, "x", "y")
    with pytest.raises(ConfigError, match="match.solver"):
        MatchParams(solver="hungarian")
