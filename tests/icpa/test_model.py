"""Model components (§2.3): feature embeddings, sampled/full aggregation, towers, gates — shapes and gradients."""

from __future__ import annotations

import pytest
import torch

from crossmatch.errors import InputError
from crossmatch.icpa import ModelConfig, build_model
from crossmatch.icpa.graph import build_multisource_graph
from crossmatch.icpa.model import SourceFeatures
from tests.icpa.helpers import source_frames, toy_graph


@pytest.fixture(scope="module")
def graph():
    return toy_graph()


@pytest.mark.parametrize("tower", ["mlp", "mmoe"])
def test_encode_shapes_unit_norm_and_gradients(graph, tower):
    model = build_model(graph.schemas, len(graph.categories), ModelConfig(tower=tower), seed=0)
    g = graph.sources[1]
    nodes = torch.arange(g.schema.n_items)
    gen = torch.Generator().manual_seed(0)
    for t in ("anchor", "context"):
        z = model.encode(1, g, nodes, t, gen)
        assert z.shape == (g.schema.n_items, 32)
        assert torch.allclose(z.norm(dim=1), torch.ones(len(nodes)), atol=1e-5)
    z = model.encode(1, g, nodes, "anchor", gen)
    z.sum().backward()
    feats = model.features[1]
    assert feats.identity.weight.grad.abs().sum() > 0
    assert all(e.weight.grad.abs().sum() > 0 for e in feats.categorical)
    assert feats.dense[0].weight.grad.abs().sum() > 0
    assert model.users[1].weight.grad.abs().sum() > 0
    assert model.category.weight.grad.abs().sum() > 0
    anchor = model.towers["anchor"]
    trained = anchor.experts.parameters() if tower == "mmoe" else anchor.parameters()
    assert all(p.grad is not None for p in trained)
    if tower == "mmoe":  # only the gate of the encoded source mixes the experts
        assert anchor.gates[1].weight.grad is not None and anchor.gates[0].weight.grad is None
    assert all(p.grad is None for p in model.towers["context"].parameters()), "towers do not share weights"
    with pytest.raises(ValueError, match="tower"):
        model.encode(1, g, nodes, "query")


def test_full_mean_is_the_expectation_of_the_sampled_mean(graph):
    model = build_model(graph.schemas, len(graph.categories), ModelConfig(neighbours=400), seed=0)
    g = graph.sources[0]
    nodes = g.anchors[:5]
    table = model.features[0].identity
    full = model._full_mean(g.item_item, table, nodes)
    sampled = model._sampled_mean(g.item_item, table, nodes, torch.Generator().manual_seed(0))
    assert torch.allclose(full, sampled, atol=0.01)


def test_nodes_without_neighbours_get_a_zero_message():
    frames = {"a": source_frames(10, 5, ["x"], seed=0), "b": source_frames(8, 4, ["x"], seed=1)}
    graph = build_multisource_graph(frames)
    model = build_model(graph.schemas, 1, ModelConfig(), seed=0)
    g = graph.sources[0]
    isolated = torch.nonzero(g.item_user.degree() == 0).flatten()
    if isolated.numel():
        msg = model._sampled_mean(g.item_user, model.users[0], isolated, None)
        assert torch.all(msg == 0)
        assert torch.all(model._full_mean(g.item_user, model.users[0], isolated) == 0)


def test_gates_are_probabilities_and_stop_gradient(graph):
    model = build_model(graph.schemas, len(graph.categories), ModelConfig(), seed=0)
    z = model.encode(0, graph.sources[0], torch.arange(6), "anchor", torch.Generator().manual_seed(0))
    t = model.node_gates(z)
    pg = model.pair_gates(z[:3], z[3:])
    assert t.shape == (6, 3) and pg.shape == (3, 3)
    assert torch.all((t > 0) & (t < 1)) and torch.all((pg > 0) & (pg < 1))
    (t.sum() + pg.sum()).backward()
    assert model.gate.weight.grad is not None and model.pair_gate[0].weight.grad is not None
    assert all(p.grad is None for p in model.towers["anchor"].parameters()), "gates must not move embeddings"


def test_parameter_groups_partition_the_model(graph):
    model = build_model(graph.schemas, len(graph.categories), ModelConfig(), seed=0)
    ids = {id(p) for p in model.parameters()}
    net, gates = model.network_parameters(), model.gate_parameters()
    assert {id(p) for p in net} | {id(p) for p in gates} == ids
    assert not {id(p) for p in net} & {id(p) for p in gates}
    assert {id(p) for p in model.tower_parameters()} <= {id(p) for p in net}


def test_features_reject_a_too_narrow_common_width(graph):
    with pytest.raises(ValueError, match="width"):
        SourceFeatures(graph.schemas[2], 8, 4)


def test_same_seed_same_initialisation(graph):
    a = build_model(graph.schemas, 3, ModelConfig(), seed=3)
    b = build_model(graph.schemas, 3, ModelConfig(), seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_graph_validation_names_the_problem():
    good = source_frames(6, 3, ["x"], seed=0)
    bad_edges = type(good)(good.items, good.item_item.with_columns(dst=good.item_item["dst"] + 100), good.user_item)
    with pytest.raises(InputError, match="outside"):
        build_multisource_graph({"a": bad_edges})
    no_edges = source_frames(6, 3, ["x"], seed=0, empty_edges=True)
    with pytest.raises(InputError, match="no item-item co-occurrence edges"):
        build_multisource_graph({"a": good, "empty": no_edges})
    gap = type(good)(good.items.filter(good.items["item_idx"] != 2), good.item_item, good.user_item)
    with pytest.raises(InputError, match="without gaps"):
        build_multisource_graph({"a": gap})
    with pytest.raises(InputError, match="no sources"):
        build_multisource_graph({})


@pytest.mark.parametrize("cfg", [ModelConfig(hidden=(16, 8), neighbours=2, shared_tower=True, gamma=10.0),
                                 ModelConfig(hidden=(16, 8), neighbours=2, tower="mmoe")])
def test_payload_round_trip_keeps_every_model_setting(graph, cfg):
    """A saved model rebuilds with the same config and the same outputs (a dropped field once
    turned a shared-tower model into a double tower with an untrained context tower)."""
    from crossmatch.icpa import model_from_payload, model_payload

    model = build_model(graph.schemas, len(graph.categories), cfg, seed=0)
    back = model_from_payload(model_payload(model))
    assert back.config == model.config
    nodes = torch.arange(3)
    model.eval()
    back.eval()
    for tower in ("anchor", "context"):
        a = model.encode(0, graph.sources[0], nodes, tower, full=True)
        b = back.encode(0, graph.sources[0], nodes, tower, full=True)
        assert torch.allclose(a, b)
