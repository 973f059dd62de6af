"""Category similarity from item-embedding centroids (issue 12 ★): ``minilm`` and ``icpa`` kinds.

The centroid cosine is checked against a brute-force dense computation (top-k per side, min–max rescaling,
chunking); the ``icpa`` kind against planted vectors through the whole tuning protocol; the ``minilm``
kind on synonyms that share no token, where every lexical kind sees nothing.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crossmatch.bipoly.blocking import run_blocking
from crossmatch.bipoly.config import BlockingParams
from crossmatch.bipoly.embedding import category_centroids, centroid_similarity, item_vectors
from crossmatch.errors import ConfigError, InputError

SMALL = {"left": "a", "right": "b", "partition_by": None, "runner": "thread", "workers": 1, "top_k": 2,
         "grid": {"omega": [-1.0, 1.0, 1.0], "eta": [-1.0, 1.0, 1.0]},
         "ilp": {"methods": []}, "scenario": {"enabled": False}, "methods": ["bipoly_s", "bipoly_c", "bipartite"]}


def _dense_reference(left: np.ndarray, right: np.ndarray, k: int) -> dict[tuple[int, int], float]:
    sims = np.clip(left @ right.T, 0.0, None)
    keep = np.zeros_like(sims, dtype=bool)
    for i in range(sims.shape[0]):
        keep[i, np.argsort(-sims[i], kind="stable")[:k]] = True
    for j in range(sims.shape[1]):
        keep[np.argsort(-sims[:, j], kind="stable")[:k], j] = True
    keep &= sims > 0
    lo = 0.0 if (sims > 0).sum() < sims.size else sims[sims > 0].min()
    scaled = (sims - lo) / (sims.max() - lo)
    return {(int(i), int(j)): float(scaled[i, j]) for i, j in zip(*np.nonzero(keep & (scaled > 0)), strict=True)}


@pytest.mark.parametrize("chunk", [10_000, 7])  # one block, and a few rows per chunk (running column top-k)
def test_centroid_similarity_matches_dense_top_k(chunk: int) -> None:
    rng = np.random.default_rng(0)
    left = rng.normal(size=(13, 5))
    right = rng.normal(size=(9, 5))
    left /= np.linalg.norm(left, axis=1, keepdims=True)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    res = centroid_similarity(left, right, kind="minilm", left_names=[f"l{i}" for i in range(13)],
                              right_names=[f"r{j}" for j in range(9)], top_k=2, chunk_entries=chunk)
    inst = res.instance
    got = {(int(i), int(j)): float(v) for i, j, v in zip(inst.left, inst.right, inst.weight, strict=True)}
    want = _dense_reference(left, right, 2)
    assert got.keys() == want.keys()
    assert all(abs(got[p] - want[p]) < 1e-9 for p in want)
    assert max(got.values()) == pytest.approx(1.0)
    # no top-k: every positive cosine is a candidate
    full = centroid_similarity(left, right, kind="minilm", left_names=[f"l{i}" for i in range(13)],
                               right_names=[f"r{j}" for j in range(9)], top_k=None)
    assert full.n_nonzero == int((left @ right.T > 0).sum())


def test_centroids_count_each_item_once_and_ignore_missing_vectors() -> None:
    items = pl.DataFrame({"item_id": ["x", "x", "y", "z"], "fine_category": ["c", "c", "c", "d"]})
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    cents = category_centroids(items, ["c", "d"], vectors)
    np.testing.assert_allclose(cents[0], [2 ** -0.5, 2 ** -0.5])  # x once, y once
    np.testing.assert_allclose(cents[1], [0.0, 0.0])  # z has no vector: its category has similarity 0
    with pytest.raises(InputError, match="3 vectors for 4 item rows"):
        category_centroids(items, ["c", "d"], vectors[:3])


def test_icpa_vectors_align_by_item_id_and_refuse_bad_tables() -> None:
    items = pl.DataFrame({"item_id": ["b", "a", "nolog"]})
    emb = pl.DataFrame({"item_id": ["a", "b"], "embedding": [[3.0, 4.0], [0.0, 2.0]]})
    vec = item_vectors(items, "icpa", embeddings=emb)
    np.testing.assert_allclose(vec, [[0.0, 1.0], [0.6, 0.8], [0.0, 0.0]])
    with pytest.raises(InputError, match="needs the ICPA item embeddings"):
        item_vectors(items, "icpa", embeddings=None)
    with pytest.raises(InputError, match="item_id and embedding"):
        item_vectors(items, "icpa", embeddings=emb.rename({"embedding": "vec"}))
    with pytest.raises(InputError, match="mixed widths"):
        item_vectors(items, "icpa", embeddings=pl.DataFrame({"item_id": ["a", "b"], "embedding": [[1.0], [1.0, 2.0]]}))
    with pytest.raises(ConfigError, match="best_of"):
        BlockingParams(**{**SMALL, "best_of": ["tfidf", "bert"]})


def _world(n_cats: int = 6, per: int = 4, hint: bool = False) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Two catalogues whose titles share no token across sides (lexical kinds are blind; with ``hint`` one
    shared token per category parity: a weak signal) but whose items carry planted vectors: category c on
    the left and on the right point the same way."""
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(n_cats, 8))
    rows = []
    for side in ("a", "b"):
        for c in range(n_cats):
            for k in range(per):
                rows.append({"side": side, "item_id": f"{side}{c}_{k}", "category": f"{side}cat{c}",
                             "title": f"{side}word{c} {side}tok{k}" + (f" parity{c % 2}" if hint else ""), "embedding": (axes[c] + 0.1 * rng.normal(size=8)).tolist()})
    df = pl.DataFrame(rows)
    truth = pl.DataFrame({"item_a": [f"a{c}_{k}" for c in range(n_cats) for k in range(per)],
                          "item_b": [f"b{c}_{k}" for c in range(n_cats) for k in range(per)]})
    return df.filter(pl.col("side") == "a").drop("side"), df.filter(pl.col("side") == "b").drop("side"), truth


def test_icpa_kind_finds_the_planted_categories_where_words_cannot() -> None:
    left, right, truth = _world()
    emb = tuple(x.select("item_id", "embedding") for x in (left, right))
    items = tuple(x.drop("embedding") for x in (left, right))
    # the titles' words never cross sides: the lexical similarity has nothing to work with
    with pytest.raises(InputError, match="all tfidf similarities are zero"):
        run_blocking(BlockingParams(**{**SMALL, "similarity": "tfidf"}), left_items=items[0], right_items=items[1],
                     truth_pairs=truth)
    res = run_blocking(BlockingParams(**{**SMALL, "similarity": "icpa"}), left_items=items[0], right_items=items[1],
                       truth_pairs=truth, embeddings=emb)
    m = res.metrics
    assert m["methods"]["bipoly_c"]["similarity"] == "icpa"
    assert m["methods"]["bipoly_c"]["coverage"] == 1.0  # every planted pair of categories is found
    assert set(zip(res.blocks.get_column("left"), res.blocks.get_column("right"), strict=True)) >= {
        (f"acat{c}", f"bcat{c}") for c in range(6)}


def test_best_of_compares_kinds_side_by_side() -> None:
    left, right, truth = _world(hint=True)
    emb = tuple(x.select("item_id", "embedding") for x in (left, right))
    params = BlockingParams(**{**SMALL, "similarity": "best", "best_of": ["tfidf", "icpa"]})
    res = run_blocking(params, left_items=left.drop("embedding"), right_items=right.drop("embedding"),
                       truth_pairs=truth, embeddings=emb)
    by = res.metrics["by_similarity"]
    assert set(by) == {"tfidf", "icpa"}
    assert by["icpa"]["bipoly_c"]["tradeoff"] > by["tfidf"]["bipoly_c"]["tradeoff"]
    assert res.metrics["methods"]["bipoly_c"]["similarity"] == "icpa"  # best on the labels
    assert "seconds" in res.metrics["similarity"]["icpa"]


def test_minilm_relates_synonyms_that_share_no_token() -> None:
    left = pl.DataFrame({"item_id": ["l1", "l2", "l3", "l4"], "fine_category": ["lap", "lap", "pet", "pet"],
                         "title": ["notebook computer 15 inch", "ultrabook pc with ssd", "dry dog food 5kg",
                                   "cat litter clumping"]})
    right = pl.DataFrame({"item_id": ["r1", "r2", "r3", "r4"], "fine_category": ["comp", "comp", "anim", "anim"],
                          "title": ["laptop", "portable personal computers", "puppy kibble", "kitten treats"]})
    cl = category_centroids(left, ["lap", "pet"], item_vectors(left, "minilm"))
    cr = category_centroids(right, ["anim", "comp"], item_vectors(right, "minilm"))
    sims = cl @ cr.T
    assert sims[0, 1] > sims[0, 0] and sims[1, 0] > sims[1, 1]  # laptops ~ computers, pets ~ animals
    res = centroid_similarity(cl, cr, kind="minilm", left_names=["lap", "pet"], right_names=["anim", "comp"], top_k=1)
    best = {(res.instance.left_names[i], res.instance.right_names[j])
            for i, j in zip(res.instance.left, res.instance.right, strict=True)}
    assert best == {("lap", "comp"), ("pet", "anim")}
