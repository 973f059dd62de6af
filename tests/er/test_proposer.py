"""Which table proposes the candidates (``er.blocking.proposer``; ``crossmatch.er.candidates``): the blocking must
not depend on which table the user called A."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

import crossmatch.er.candidates as candidates_module
from crossmatch.er import Benchmark, BlockingConfig, MatchConfig, ScorerConfig, block, make_benchmark, match
from crossmatch.er.candidates import proposing_sides
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


def test_a_fixed_proposer_is_obeyed_and_fills_its_own_ranks() -> None:
    ab, ba = _benches(labels=True)  # ab: 80 left, 120 right
    for bench, side, n in ((ab, "right", 120), (ba, "left", 120), (ab, "left", 80)):
        res = block(bench, config=replace(CFG, proposer=side))
        assert res.metrics["proposer"] == side and "proposers_tried" not in res.metrics
        own, other = ("rank_left", "rank_right") if side == "left" else ("rank_right", "rank_left")
        k = res.metrics["k"]
        assert res.candidates.height == n * k
        assert res.candidates[own].to_numpy().min() >= 1 and res.candidates[own].to_numpy().max() <= k
        assert (res.candidates[other].to_numpy() == 0).all()
    # auto on the swapped files: tableB (80 records) proposes, its ranks in rank_right
    res = block(ba, config=CFG)
    assert res.metrics["proposer"] == "right" and (res.candidates["rank_left"].to_numpy() == 0).all()
    with pytest.raises(ConfigError, match="proposer"):
        BlockingConfig(proposer="smaller")


def _fake_sides(monkeypatch: pytest.MonkeyPatch, figures: dict[int, tuple[float, int]]) -> list[int]:
    """``_left_proposes`` replaced by one that returns ``(recall_train, pairs)`` by the proposing table's size;
    returns the sizes it was called with."""
    calls: list[int] = []

    def fake(bench: Benchmark, config: BlockingConfig, proposer: str,
             cache: object = None) -> candidates_module.BlockingResult:
        calls.append(bench.left.height)
        recall, pairs = figures[bench.left.height]
        cands = pl.DataFrame({"l": [0], "r": [0], "similarity": [1.0], "rank_left": [1], "rank_right": [0]})
        return candidates_module.BlockingResult(cands, pl.DataFrame(), {
            "k": 5, "proposer": proposer, "candidate_pairs": pairs, "recall_train": recall})

    monkeypatch.setattr(candidates_module, "_left_proposes", fake)
    return calls


def test_auto_searches_the_larger_table_only_where_it_can_win(monkeypatch: pytest.MonkeyPatch) -> None:
    ab, _ = _benches(labels=True)  # 80 left, 120 right; the grid's smallest k is 1: the right gives >= 120 pairs
    # the smaller table needs 400 pairs: the larger one is searched, and wins with fewer at the target
    calls = _fake_sides(monkeypatch, {80: (0.99, 400), 120: (0.995, 240)})
    res = block(ab, config=CFG)
    assert calls == [80, 120] and res.metrics["proposer"] == "right"
    assert res.metrics["proposers_tried"] == {"left": {"k": 5, "recall_train": 0.99, "pairs": 400},
                                              "right": {"k": 5, "recall_train": 0.995, "pairs": 240}}
    # reaching the target beats fewer pairs; equal figures keep the left table
    _fake_sides(monkeypatch, {80: (0.99, 400), 120: (0.9, 240)})
    assert block(ab, config=CFG).metrics["proposer"] == "left"
    _fake_sides(monkeypatch, {80: (0.5, 400), 120: (0.5, 400)})
    assert block(ab, config=CFG).metrics["proposer"] == "left"
    # the smaller table reaches the target with 100 pairs: the other cannot have fewer (>= 120), not searched
    calls = _fake_sides(monkeypatch, {80: (0.99, 100), 120: (1.0, 120)})
    res = block(ab, config=CFG)
    assert calls == [80] and res.metrics["proposer"] == "left"
    assert res.metrics["proposers_tried"]["right"] == {"skipped": True, "pairs_at_least": 120}
    # ... but it is searched when the smaller one misses the target
    calls = _fake_sides(monkeypatch, {80: (0.9, 100), 120: (0.99, 600)})
    assert block(ab, config=CFG).metrics["proposer"] == "right" and calls == [80, 120]


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
    rng = np.random.default_rng(0)  # record embeddings (one row per record of each table): swapped with the tables
    ea, eb = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (rng.normal(size=(t.height, 8)) for t in (ab.left, ab.right)))
    one = match(ab, block(ab, config=CFG).candidates, config=cfg, embeddings=(ea, eb))
    two = match(ba, block(ba, config=CFG).candidates, config=cfg, embeddings=(eb, ea))
    assert (one.metrics["grouped_by"], two.metrics["grouped_by"]) == ("left", "right")
    mirrored = two.pairs.rename({"l": "r", "r": "l"}).select(one.pairs.columns).sort("l", "r")
    assert mirrored.equals(one.pairs)
    for key in ("mode", "output", "output_pairs", "pool_pairs"):
        assert one.metrics.get(key) == two.metrics.get(key), key
    assert one.metrics["unsupervised"] == two.metrics["unsupervised"]
    if labels:
        assert one.metrics["scorer"]["valid"] == two.metrics["scorer"]["valid"]


def test_each_text_is_vectorised_once_per_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """The character n-grams of long values are blocking's slow part: with both tables proposing (the larger one is
    searched here, its smallest k being cheap enough) and every attribute view tried, each distinct text is
    vectorised once, and the reused matrices give the candidates a fresh vectorisation gives."""
    import crossmatch.er.blocking as blocking_module
    from crossmatch.er.blocking import tfidf_matrices

    left, right, train, valid = synthetic_tables()
    # a labelled match no search finds at k <= 2 (a record and a distractor): the target is missed, so every
    # attribute view is tried and the larger table proposes too
    far = pl.DataFrame({"ltable_id": ["a0"], "rtable_id": [right["id"][-1]], "label": [1]}).cast(train.schema)
    ab = make_benchmark(left=left, right=right, train=pl.concat([train, far]), valid=valid)
    cfg = replace(CFG, views="auto", target_recall=1.0, proposer="auto", k_grid=(1, 2))
    fitted: list[int] = []
    real = blocking_module.char_wb_tfidf  # the blocking's character TF-IDF (crossmatch.er.ngrams)

    def counting(texts, ngram):  # type: ignore[no-untyped-def]
        fitted.append(len(texts))
        return real(texts, ngram)

    monkeypatch.setattr(blocking_module, "char_wb_tfidf", counting)
    res = block(ab, config=cfg)
    assert set(res.metrics["proposers_tried"]) == {"left", "right"} and "views_tried" in res.metrics
    distinct = {tuple(ab.text("left", a)) for a in (None, *((x,) for x in ab.attributes))}
    assert 1 < len(fitted) <= len(distinct)  # the record and each text attribute once, for both proposers
    A, B = tfidf_matrices(ab, cfg)  # no cache: vectorised afresh
    cache: dict = {}  # type: ignore[type-arg]
    B2, A2 = tfidf_matrices(ab.swapped(), cfg, cache=cache)
    A3, B3 = tfidf_matrices(ab, cfg, cache=cache)
    assert len(cache) == 1 and A3 is A2 and B3 is B2
    for x, y in ((A, A2), (B, B2)):
        assert (x != y).nnz == 0 and np.array_equal(x.indices, y.indices)
