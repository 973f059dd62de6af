"""Blocks too big to expand keep each item's top-k partners (crossmatch.twosided.candidates, issue 14 item 5)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crossmatch.errors import ConfigError, InputError
from crossmatch.twosided import candidates as cmod
from crossmatch.twosided.block_match import MatchParams, candidate_pairs, match_in_blocks
from crossmatch.twosided.candidates import Ranking, top_k_listed, top_k_pairs
from crossmatch.twosided.preferences import pair_similarity, tfidf_vectors


def _world(nl: int, nr: int, d: int = 8, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray, np.ndarray]:
    """One shared category, no titles (the category as title), random unit embeddings."""
    rng = np.random.default_rng(seed)
    el, er = rng.standard_normal((nl, d)), rng.standard_normal((nr, d))
    el /= np.linalg.norm(el, axis=1, keepdims=True)
    er /= np.linalg.norm(er, axis=1, keepdims=True)
    items = [pl.DataFrame({"item_id": [f"{s}{i}" for i in range(n)], "title": ["electronics"] * n,
                           "fine_category": ["electronics"] * n}) for s, n in (("l", nl), ("r", nr))]
    return items[0], items[1], el, er


def _brute_top_k(s: np.ndarray, k: int) -> set[tuple[int, int]]:
    """Every row's and every column's k best partners, lower index first among equal scores."""
    out: set[tuple[int, int]] = set()
    for i in range(s.shape[0]):
        out |= {(i, int(j)) for j in np.lexsort((np.arange(s.shape[1]), -s[i]))[:k]}
    for j in range(s.shape[1]):
        out |= {(int(i), j) for i in np.lexsort((np.arange(s.shape[0]), -s[:, j]))[:k]}
    return out


def test_a_big_block_keeps_the_true_nearest_partners_from_blocks_or_from_the_table() -> None:
    nl, nr, k = 60, 45, 3
    left, right, el, er = _world(nl, nr)
    blocks = pl.DataFrame({"block_id": [0], "left": ["electronics"], "right": ["electronics"]})
    full = pl.DataFrame([(f"l{i}", f"r{j}", 0) for i in range(nl) for j in range(nr)],
                        schema={"left_item_id": pl.Utf8, "right_item_id": pl.Utf8, "block_id": pl.Int64}, orient="row")
    kw = {"max_pairs": 10**6, "max_block_pairs": 1000, "block_top_k": k, "embeddings": (el, er)}
    from_blocks = candidate_pairs(left, right, blocks=blocks, **kw)  # type: ignore[arg-type]
    from_table = candidate_pairs(left, right, candidates=full, **kw)  # type: ignore[arg-type]
    got = set(zip(from_blocks.left.tolist(), from_blocks.right.tolist(), strict=True))
    assert got == _brute_top_k(el @ er.T, k)  # exactly the union of both sides' true top-k
    assert len(got) <= k * (nl + nr) < nl * nr
    assert np.array_equal(from_table.left, from_blocks.left) and np.array_equal(from_table.right, from_blocks.right)
    assert from_blocks.blocks_top_k == from_table.blocks_top_k == 1
    assert from_blocks.block_pairs_top_k == from_table.block_pairs_top_k == nl * nr
    # the match stage's metrics report it
    params = MatchParams(left="l", right="r", similarity="auto")
    _, metrics = match_in_blocks(params, items_left=left, items_right=right, candidates=from_blocks, truth=set(),
                                 embeddings=(el, er))
    assert metrics["blocks_top_k"] == 1 and metrics["candidate_pairs"] == len(got)
    assert metrics["block_pairs_before_top_k"] == nl * nr
    # no embeddings and no titles: nothing to rank the block's items by, a clear error (not arbitrary pairs)
    with pytest.raises(InputError, match="look alike.*max_block_pairs"):
        candidate_pairs(left, right, blocks=blocks, max_pairs=10**6, max_block_pairs=1000, block_top_k=k)


def test_small_blocks_are_expanded_as_before() -> None:
    left, right, el, er = _world(10, 12)
    blocks = pl.DataFrame({"block_id": [0], "left": ["electronics"], "right": ["electronics"]})
    plain = candidate_pairs(left, right, blocks=blocks, max_pairs=1000)
    capped = candidate_pairs(left, right, blocks=blocks, max_pairs=1000, max_block_pairs=120, block_top_k=1,
                             embeddings=(el, er))
    assert plain.left.size == capped.left.size == 120 and capped.blocks_top_k == 0
    assert np.array_equal(plain.left, capped.left) and np.array_equal(plain.right, capped.right)
    assert plain.block_ids == capped.block_ids


def test_ties_go_to_the_lower_item_and_tfidf_and_blend_rank_as_the_match_does() -> None:
    titles_l = ["red phone case", "blue phone case", "steel kettle", "glass kettle", "red phone case"]
    titles_r = ["phone case red", "kettle", "kettle", "blue case", "toaster", "red phone case"]
    tf = tfidf_vectors(titles_l, titles_r)
    rl, rr = np.arange(len(titles_l)), np.arange(len(titles_r))
    ii, jj = np.meshgrid(rl, rr, indexing="ij")
    rng = np.random.default_rng(3)
    el, er = rng.standard_normal((5, 4)), rng.standard_normal((6, 4))
    el[1] = np.nan  # one item without an embedding: TF-IDF for its pairs, as pair_similarity does
    for emb, blend in (((None, None), False), ((el, er), False), ((el, er), True)):
        sim, _ = pair_similarity(ii.ravel(), jj.ravel(), tf, *emb, blend=blend)
        rk = Ranking(tf[0], tf[1], emb[0], emb[1], blend)
        got = set(zip(*(a.tolist() for a in top_k_pairs(rk, rl, rr, k=2)), strict=True))
        assert got == _brute_top_k(sim.reshape(5, 6).astype(np.float32), 2), (emb[0] is None, blend)
    # identical partners: the lower rows win, deterministically
    same = Ranking(*tfidf_vectors(["ab cd"] * 4, ["ab cd"] * 5 + ["ef gh"]))
    with pytest.raises(InputError, match="look alike"):  # nothing tells the items of both sides apart
        top_k_pairs(Ranking(*tfidf_vectors(["ab cd"] * 4, ["ab cd"] * 6)), np.arange(4), np.arange(6), k=2)
    li, rj = top_k_pairs(same, np.arange(4), np.arange(6), k=2)
    assert set(zip(li.tolist(), rj.tolist(), strict=True)) == {(i, j) for i in range(4) for j in (0, 1)} | {(i, j) for i in (0, 1) for j in range(6)}


def test_the_chunked_sparse_search_matches_the_exact_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(400)]  # vocabulary above DENSE_VOCAB_MAX: chunked sparse products
    titles = [" ".join(rng.choice(words, 5)) for _ in range(130)]
    tf = tfidf_vectors(titles[:70], titles[70:])
    monkeypatch.setattr(cmod, "CHUNK_CELLS", 60 * 7)  # 7 query rows per chunk
    ii, jj = np.meshgrid(np.arange(70), np.arange(60), indexing="ij")
    el, er = rng.standard_normal((70, 6)), rng.standard_normal((60, 6))
    for emb, blend in (((None, None), False), ((el, er), True)):
        sim, _ = pair_similarity(ii.ravel(), jj.ravel(), tf, *emb, blend=blend)
        rk = Ranking(tf[0], tf[1], emb[0], emb[1], blend)
        got = set(zip(*(a.tolist() for a in top_k_pairs(rk, np.arange(70), np.arange(60), k=4)), strict=True))
        assert got == _brute_top_k(sim.reshape(70, 60).astype(np.float32), 4)


def test_an_incomplete_big_block_ranks_its_listed_pairs_only() -> None:
    sim = np.array([0.9, 0.1, 0.5, 0.5, 0.2, 0.8])
    left = np.array([0, 0, 0, 1, 1, 2])
    right = np.array([0, 1, 2, 0, 2, 2])
    # k=1: left 0 -> r0 (0.9), left 1 -> r0 (0.5), left 2 -> r2; right 0 -> l0, r1 -> l0 (only), r2 -> l2 (0.8)
    assert top_k_listed(sim, left, right, k=1).tolist() == [0, 1, 3, 5]
    rows = [("l0", "r0"), ("l0", "r1"), ("l0", "r2"), ("l1", "r0"), ("l1", "r2"), ("l2", "r2")]
    left_items = pl.DataFrame({"item_id": ["l0", "l1", "l2"], "title": ["aa xx", "aa yy", "bb zz"], "fine_category": "c"})
    right_items = pl.DataFrame({"item_id": ["r0", "r1", "r2"], "title": ["aa xx", "qq", "bb zz"], "fine_category": "c"})
    table = pl.DataFrame([(a, b, 5) for a, b in rows], schema=["left_item_id", "right_item_id", "block_id"], orient="row")
    cut = candidate_pairs(left_items, right_items, candidates=table, max_pairs=100, max_block_pairs=5, block_top_k=1)
    listed = {(int(a[1]), int(b[1])) for a, b in rows}
    assert cut.blocks_top_k == 1 and set(zip(cut.left.tolist(), cut.right.tolist(), strict=True)) <= listed
    assert (0, 0) in set(zip(cut.left.tolist(), cut.right.tolist(), strict=True)) and cut.left.size < len(rows)


def test_the_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="block_top_k"):
        MatchParams(block_top_k=0)
    with pytest.raises(ConfigError, match="max_block_pairs"):
        MatchParams(max_block_pairs=0)
