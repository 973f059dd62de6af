"""Vectorised sampling: neighbours ∝ weight, walk step, degree negatives, category batches (§2.3–2.4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmatch.icpa.graph import csr_from_edges
from crossmatch.icpa.sampler import category_batches, degree_negatives, sample_csr, walk_step
from tests.icpa.helpers import toy_graph


def test_sample_csr_shapes_membership_and_frequencies():
    # row 0: neighbours 1 (w=1), 2 (w=3); row 1: none; row 2: neighbour 0 (w=2)
    csr = csr_from_edges(np.array([0, 0, 2]), np.array([1, 2, 0]), np.array([1.0, 3.0, 2.0]), 3)
    gen = torch.Generator().manual_seed(0)
    nbrs, has = sample_csr(csr, torch.tensor([0, 1, 2]), 20_000, gen)
    assert nbrs.shape == (3, 20_000) and has.tolist() == [True, False, True]
    assert set(nbrs[0].tolist()) == {1, 2}
    assert set(nbrs[2].tolist()) == {0}
    assert (nbrs[0] == 2).float().mean().item() == pytest.approx(0.75, abs=0.02)


def test_sample_csr_rejects_2d_rows():
    csr = csr_from_edges(np.array([0]), np.array([1]), np.array([1.0]), 2)
    with pytest.raises(ValueError, match="1-D"):
        sample_csr(csr, torch.zeros(2, 2, dtype=torch.long), 3)


def test_walk_step_follows_edges_and_negatives_stay_in_category():
    g = toy_graph().sources[0]
    gen = torch.Generator().manual_seed(1)
    pos, has = walk_step(g.item_item, g.anchors, gen)
    assert has.all()
    dense = torch.zeros(g.schema.n_items, g.schema.n_items, dtype=torch.bool)
    rows = torch.repeat_interleave(torch.arange(g.schema.n_items), g.item_item.degree())
    dense[rows, g.item_item.indices] = True
    assert dense[g.anchors, pos].all()
    neg = degree_negatives(g.category_items, g.item_category[pos], 6, gen)
    assert neg.shape == (pos.numel(), 6)
    assert (g.item_category[neg] == g.item_category[pos].unsqueeze(1)).all()
    assert (g.item_item.degree()[neg] > 0).all()  # ∝ degree: isolated items are never drawn


def test_category_batches_cover_every_anchor_once_and_every_source():
    graph = toy_graph(sizes=(60, 40, 9))
    gen = torch.Generator().manual_seed(0)
    batches = category_batches(graph, [0, 1, 2], batch_size=16, generator=gen)
    for j, g in enumerate(graph.sources):
        drawn = torch.cat([b[j] for b in batches if j in b])
        # the small source is re-drawn to appear in every batch; every anchor appears at least once
        assert set(drawn.tolist()) == set(g.anchors.tolist())
        if j == 0:
            assert sorted(drawn.tolist()) == sorted(g.anchors.tolist())
    for b in batches:
        cats = {int(graph.sources[j].item_category[a].unique().item()) for j, a in b.items()}
        assert len(cats) == 1, "a batch holds one category"
        assert set(b) == {0, 1, 2}, "every source present in the category appears in the batch"


def test_category_missing_from_a_source_skips_it_in_that_category():
    graph = toy_graph(missing={1: "b"})
    b_idx = graph.categories.index("b")
    batches = category_batches(graph, [0, 1, 2], batch_size=1024, generator=torch.Generator().manual_seed(0))
    assert len(batches) == 3
    for b in batches:
        c = int(graph.sources[next(iter(b))].item_category[next(iter(b.values()))[0]])
        assert (1 in b) == (c != b_idx)
