"""Which table proposes the candidates (``er.blocking.proposer``; ``crossmatch.er.candidates``): the blocking must
not depend on which table the user called A."""

from __future__ import annotations

from dataclasses import replace

import polars as pl
import pytest

from crossmatch.er import Benchmark, BlockingConfig, MatchConfig, ScorerConfig, block, make_benchmark, match
from crossmatch.er.candidates import proposing_sides, swap_candidates
from crossmatch.errors import ConfigError
from tests.er.helpers import synthetic_tables

CFG = BlockingConfig(k_left=3, k_grid=(1, 2, 3, 5), target_recall=0.95)


def _benches(labels: bool) -> tuple[Benchmark, Benchmark]:
    """The synthetic benchmark (80 left records, 120 right) and the same with tableA and tableB exchanged, both
    read as a user's files would be."""
    left, right, train, valid = synthetic_tables()
    flip = {"ltable_id": "rtable_id", "rtable_id": "ltable_id"}
    swapped_pairs = [p.rename(flip).select(p.columns) for p in (train, valid)]
    if not labels:
        return make_benchmark(left=left, right=right), make_benchmark(left=right, right=left)
    return (make_benchmark(left=left, right=right, train=train, valid=valid),
            make_benchmark(left=right, right=left, train=swapped_pairs[0], valid=swapped_pairs[1]))


def _pairs(cands: pl.DataFrame, *, mirrored: bool = False) -> list[tuple[int, int, float]]:
    rows = zip(cands["l"].to_list(), cands["r"].to_list(), cands["similarity"].to_list(), strict=True)
    return sorted((r, l, s) if mirrored else (l, r, s) for l, r, s in rows)


@pytest.mark.parametrize("labels", [True, False])
def test_swapping_table_a_and_b_gives_the_same_candidates(labels: bool) -> None:
    ab, ba = _benches(labels)
    one, two = block(ab, config=CFG), block(ba, config=CFG)
    assert _pairs(one.candidates) == _pairs(two.candidates, mirrored=True)
    assert {one.metrics["proposer"], two.metrics["proposer"]} == {"left", "right"}
    for key in ("k", "candidate_pairs", "view") + (("recall_train", "recall_valid") if labels else ()):
        assert one.metrics[key] == two.metrics[key], key
    # the proposer's own ranks are filled: each pair of the chosen side's top k has a rank in 1..k
    col = "rank_left" if one.metrics["proposer"] == "left" else "rank_right"
    ranks = one.candidates[col].to_numpy()
    assert ranks.min() >= 1 and ranks.max() <= one.metrics["k"]


def test_without_labels_the_smaller_table_proposes() -> None:
    ab, ba = _benches(labels=False)
    assert (ab.left.height, ab.right.height) == (80, 120)
    assert proposing_sides(ab, CFG) == ["left"] and proposing_sides(ba, CFG) == ["right"]
    res = block(ba, config=CFG)
    assert res.metrics["proposer"] == "right" and res.metrics["k"] == CFG.k_left and "proposers_tried" not in res.metrics
    assert res.candidates.height == 80 * CFG.k_left  # each of the 80 records proposes k_left
    assert res.candidates.columns == ["l", "r", "similarity", "rank_left", "rank_right"]
    assert res.candidates.sort("l", "r").equals(res.candidates)


def test_with_labels_auto_keeps_the_table_that_reaches_the_target_with_fewer_pairs() -> None:
    ab, _ = _benches(labels=True)
    res = block(ab, config=CFG)
    tried = res.metrics["proposers_tried"]
    assert set(tried) == {"left", "right"}
    hits = [s for s, f in tried.items() if f["recall_train"] >= CFG.target_recall]
    assert hits, tried
    assert res.metrics["proposer"] == min(hits, key=lambda s: (tried[s]["pairs"], s != "left"))
    assert tried[res.metrics["proposer"]]["pairs"] == res.candidates.height
    # a fixed proposer is obeyed, and "right" is the left proposer of the swapped benchmark, mirrored back
    right = block(ab, config=replace(CFG, proposer="right"))
    assert right.metrics["proposer"] == "right" and "proposers_tried" not in right.metrics
    assert right.metrics["candidate_pairs"] == tried["right"]["pairs"]
    mirror = block(ab.swapped(), config=replace(CFG, proposer="left"))
    assert swap_candidates(mirror.candidates).equals(right.candidates)
    with pytest.raises(ConfigError, match="proposer"):
        BlockingConfig(proposer="smaller")


def test_swapped_benchmark_exchanges_tables_and_pairs() -> None:
    ab, _ = _benches(labels=True)
    ba = ab.swapped()
    assert ba.left.equals(ab.right) and ba.right.equals(ab.left) and ba.attributes == ab.attributes
    assert ba.train is not None and ab.train is not None
    assert ba.train.columns == ab.train.columns
    assert ba.train["l"].to_list() == ab.train["r"].to_list() and ba.train["r"].to_list() == ab.train["l"].to_list()
    assert ba.swapped().train is not None and ba.swapped().train.equals(ab.train)  # type: ignore[union-attr]


@pytest.mark.parametrize("labels", [True, False])
def test_matching_does_not_depend_on_which_table_is_a(labels: bool) -> None:
    """The match stage groups by the smaller table's records whichever side it is on: the swapped benchmark gives
    the same pairs (mirrored), probabilities and headline figures."""
    ab, ba = _benches(labels)
    cfg = MatchConfig(scorer=ScorerConfig(max_iter=50, folds=3))
    one = match(ab, block(ab, config=CFG).candidates, config=cfg)
    two = match(ba, block(ba, config=CFG).candidates, config=cfg)
    assert (one.metrics["grouped_by"], two.metrics["grouped_by"]) == ("left", "right")
    mirrored = two.pairs.rename({"l": "r", "r": "l"}).select(one.pairs.columns).sort("l", "r")
    assert mirrored.equals(one.pairs)
    for key in ("mode", "output", "output_pairs", "pool_pairs"):
        assert one.metrics.get(key) == two.metrics.get(key), key
    assert one.metrics["unsupervised"] == two.metrics["unsupervised"]
    if labels:
        assert one.metrics["scorer"]["valid"] == two.metrics["scorer"]["valid"]
