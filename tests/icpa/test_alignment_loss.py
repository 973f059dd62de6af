"""The public alignment loss (crossmatch.icpa.alignment_loss) on one batch, outside the Trainer."""

from __future__ import annotations

import torch

from crossmatch.icpa import AlignConfig, ModelConfig, alignment_loss, build_model, category_layout
from tests.icpa.helpers import toy_graph

ALIGN = AlignConfig(swd_projections=16, sgwd_projections=4, sgwd_pairs=16, interp_length=32)


def _batch(graph, category: int, sources: list[int]) -> dict[int, torch.Tensor]:
    """Every item of ``category`` in each of ``sources``."""
    return {j: torch.nonzero(graph.sources[j].item_category == category).flatten() for j in sources}


def _loss(graph, model, batch, frozen=None):
    present = sorted(batch)
    cpu_cats = [g.item_category for g in graph.sources]
    layout = category_layout(cpu_cats, present, batch, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    z = {j: model.encode(j, graph.sources[j], batch[j], "anchor", gen) for j in present}
    return layout, alignment_loss(model, graph, present, z, batch, layout, ALIGN, gen, device=torch.device("cpu"),
                                  frozen=frozen)


def test_live_alignment_of_a_shared_category_is_positive_and_trains_the_gates():
    graph = toy_graph(sizes=(30, 24), categories=("a", "b"))
    model = build_model(graph.schemas, len(graph.categories), ModelConfig(hidden=(16, 8)), 0)
    batch = _batch(graph, 0, [0, 1])
    layout, (align, gate) = _loss(graph, model, batch)
    assert layout.n_groups == 1 and layout.any_pair and layout.counts.tolist() == [[len(batch[0])], [len(batch[1])]]
    assert align.item() > 0 and torch.isfinite(gate)
    (align + gate).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_no_shared_category_means_nothing_to_align():
    graph = toy_graph(sizes=(30, 24), categories=("a", "b"))
    model = build_model(graph.schemas, len(graph.categories), ModelConfig(hidden=(16, 8)), 0)
    batch = {0: _batch(graph, 0, [0])[0], 1: _batch(graph, 1, [1])[1]}
    layout, (align, gate) = _loss(graph, model, batch)
    assert layout.n_groups == 2 and not layout.any_pair
    assert align.item() == 0 and gate.item() == 0


def test_frozen_alignment_has_no_gate_loss_and_leaves_the_frozen_model_untouched():
    graph = toy_graph(sizes=(30, 24), categories=("a", "b"))
    model = build_model(graph.schemas, len(graph.categories), ModelConfig(hidden=(16, 8)), 0)
    frozen = build_model(graph.schemas, len(graph.categories), ModelConfig(hidden=(16, 8)), 1).eval()
    _, (align, gate) = _loss(graph, model, _batch(graph, 0, [0, 1]), frozen=frozen)
    assert align.item() > 0 and gate.item() == 0
    align.backward()
    assert all(p.grad is None for p in frozen.parameters())
