"""Ranking metrics (§2.9), alignment hit@k, negative-transfer table; eq. 10 retrieval and references."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch

from crossmatch.icpa import ModelConfig, build_model, item_embeddings, learned_scorer
from crossmatch.icpa.evaluate import make_split, matrix_scorer, topk
from crossmatch.icpa.rankers import ranker_matrix
from crossmatch.metrics.alignment_hits import alignment_hits, partner_pairs
from crossmatch.metrics.ranking import ranking_metrics
from crossmatch.metrics.transfer import transfer_table, verdict
from tests.icpa.helpers import toy_graph


def test_ndcg_and_f_by_hand():
    topk = np.array([[5, 1, 7], [2, 3, 4]])
    indptr = np.array([0, 2, 3])
    items = np.array([1, 9, 8])  # user 0: {1, 9}; user 1: {8}
    out = ranking_metrics(topk, indptr, items, [1, 3])
    dcg0 = 1 / math.log2(3)
    idcg0 = 1 + 1 / math.log2(3)
    assert out[3]["ndcg"] == pytest.approx((dcg0 / idcg0 + 0) / 2)
    p, r = 1 / 3, 1 / 2
    assert out[3]["f"] == pytest.approx((2 * p * r / (p + r) + 0) / 2)
    assert out[1]["ndcg"] == 0 and out[1]["f"] == 0
    weighted = ranking_metrics(topk, indptr, items, [3], weights=np.array([3.0, 1.0]))
    assert weighted[3]["ndcg"] == pytest.approx(0.75 * dcg0 / idcg0)


def test_ranking_metrics_errors():
    with pytest.raises(ValueError, match="indptr"):
        ranking_metrics(np.zeros((2, 3)), np.array([0, 1]), np.array([1]), [1])
    with pytest.raises(ValueError, match="k must"):
        ranking_metrics(np.zeros((1, 3)), np.array([0, 1]), np.array([1]), [0])
    with pytest.raises(ValueError, match="relevant"):
        ranking_metrics(np.zeros((2, 3)), np.array([0, 1, 1]), np.array([1]), [1])


def test_alignment_hits_ranks_partners():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    b = np.array([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    pairs = partner_pairs(np.array(["x", "y", None], dtype=object), np.array(["y", "x", "z"], dtype=object))
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (1, 0)]
    out = alignment_hits(a, b, pairs, [1, 2])
    assert out["queries"] == 2 and out["hit@1"] == 1.0 and out["chance@1"] == pytest.approx(1 / 3)
    swapped = alignment_hits(a, b[[1, 0, 2]], pairs, [1])
    assert swapped["hit@1"] == 0.0


def test_transfer_table_flags_methods_below_soo():
    scores = {"a": {"soo": 0.5, "icpa": 0.6, "base": 0.4}, "b": {"soo": 0.2, "icpa": 0.1, "base": 0.3}}
    rows = transfer_table(scores, ["icpa", "base"])
    flags = {(r["source"], r["method"]): r["negative_transfer"] for r in rows}
    assert flags == {("a", "icpa"): False, ("a", "base"): True, ("b", "icpa"): True, ("b", "base"): False}
    assert verdict(rows, "icpa")["negative_sources"] == ["b"]
    assert "no negative transfer" in verdict(transfer_table({"a": {"soo": 0.1, "icpa": 0.2}}, ["icpa"]), "icpa")["text"]


def _history(g) -> pl.DataFrame:
    users = torch.repeat_interleave(torch.arange(g.user_item.n_rows), g.user_item.degree())
    return pl.DataFrame({"user_idx": users.numpy(), "item_idx": g.user_item.indices.numpy(),
                         "weight": g.user_item.weights.numpy().astype(float)})


def test_learned_scorer_matches_eq10_by_brute_force_and_excludes_history():
    graph = toy_graph(sizes=(20,))
    g = graph.sources[0]
    model = build_model(graph.schemas, len(graph.categories), ModelConfig(hidden=(16, 8)), 0)
    A, C = item_embeddings(model, g, 0, "anchor"), item_embeddings(model, g, 0, "context")
    users = np.array([u for u in range(g.user_item.n_rows) if g.user_item.degree()[u] > 0][:5])
    hist = _history(g)
    # every evaluated user needs a relevant item outside its history; the item ids do not matter here
    rel = pl.DataFrame({"user_idx": users, "item_idx": [next(i for i in range(20) if i not in set(
        hist.filter(pl.col("user_idx") == int(u))["item_idx"].to_list())) for u in users]})
    split = make_split([hist], rel, g.user_item.n_rows, 20)
    top = topk(learned_scorer(model, g, 0, score="sigmoid"), split, 4)
    sim = torch.sigmoid(A @ C.T)
    for row, u in zip(top, split.users, strict=True):
        s, e = g.user_item.indptr[u], g.user_item.indptr[u + 1]
        h, w = g.user_item.indices[s:e], g.user_item.weights[s:e]
        score = (w[:, None] * sim[h]).sum(0) / w.sum()
        score[h] = -float("inf")
        assert set(row.tolist()) == set(torch.topk(score, 4).indices.tolist())
        assert not set(row.tolist()) & set(h.tolist())


def test_make_split_drops_history_items_and_users_without_history():
    graph = toy_graph(sizes=(20,))
    g = graph.sources[0]
    hist = _history(g)
    u0 = int(torch.nonzero(g.user_item.degree() > 0)[0])
    h0 = int(g.user_item.indices[g.user_item.indptr[u0]])
    fresh = int(next(i for i in range(20) if i not in set(g.user_item.indices[g.user_item.indptr[u0]:g.user_item.indptr[u0 + 1]].tolist())))
    ho = pl.DataFrame({"user_idx": [u0, u0, u0, 10_000], "item_idx": [h0, fresh, fresh, 1]})
    t = make_split([hist], ho, g.user_item.n_rows, 20, exclude_history=True)
    assert t.users.tolist() == [u0] and t.items.tolist() == [fresh] and t.events.tolist() == [3.0]
    assert sorted(make_split([hist], ho, g.user_item.n_rows, 20, exclude_history=False).items.tolist()) == sorted([h0, fresh])


@pytest.mark.parametrize("kind", ["popularity", "cooccurrence"])
def test_reference_rankers_exclude_history(kind):
    g = toy_graph(sizes=(25,)).sources[0]
    hist = _history(g)
    users = np.array([u for u in range(g.user_item.n_rows) if g.user_item.degree()[u] > 0][:4])
    rel = pl.DataFrame({"user_idx": users, "item_idx": [next(i for i in range(25) if i not in set(
        hist.filter(pl.col("user_idx") == int(u))["item_idx"].to_list())) for u in users]})
    split = make_split([hist], rel, g.user_item.n_rows, 25)
    H = split.history
    ii = g.item_item
    C = sp.csr_matrix(
        (ii.weights.numpy().astype(float), ii.indices.numpy(), ii.indptr.numpy()), shape=(25, 25))
    top = topk(matrix_scorer(ranker_matrix(kind, H=H, C=C)), split, 5)
    assert top.shape == (4, 5)
    for row, u in zip(top, split.users, strict=True):
        h = set(g.user_item.indices[g.user_item.indptr[u]:g.user_item.indptr[u + 1]].tolist())
        assert not set(row.tolist()) & h
