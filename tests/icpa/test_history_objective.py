"""The leave-one-out history objective (``pairs.objective: history``, issue 10).

* the loss equals a brute-force reading of its definition on the same draws: a target, the
  user's other items (draws equal to the target left out) scored with eq. 10's
  ``log Σ_h exp(γ s(h, i))``, softmax against the pool with accidental hits masked, users with no
  other item dropped;
* it trains deterministically and learns; bad settings are rejected.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from crossmatch.errors import ConfigError
from crossmatch.icpa import (
    AlignConfig,
    ModelConfig,
    PairConfig,
    Schedule,
    SourceFrames,
    Trainer,
    build_model,
    build_multisource_graph,
)
from crossmatch.icpa.history_loss import history_source_loss, interaction_edges, interaction_targets
from crossmatch.icpa.methods import single_config
from crossmatch.icpa.sampler import degree_negatives, walk_step
from tests.icpa.helpers import source_frames, toy_graph

SMALL = ModelConfig(hidden=(32, 32, 16))
ALIGN = AlignConfig(swd_projections=16, sgwd_projections=4, sgwd_pairs=16, interp_length=64)
SCHED = Schedule(phase1_epochs=3, phase2_epochs=2, optimizer="adam", lr=1e-3, embedding_lr=0.1)


def _pairs(**kw: object) -> PairConfig:
    base: dict[str, object] = dict(batch_size=32, negatives=0, global_negatives=4, negative_sampling="uniform",
                                   walks_per_anchor=3, pack_categories=True, negative_pool=16, objective="history",
                                   history_length=4)
    base.update(kw)
    return PairConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("targets", ["anchor", "interaction", "edge"])
def test_history_loss_is_its_definition_on_the_same_draws(targets: str):
    graph = toy_graph(sizes=(12, 10, 8))
    g = graph.sources[0]
    model = build_model(graph.schemas, len(graph.categories), SMALL, 0)
    gen = torch.Generator().manual_seed(5)
    tables = {t: torch.randn(g.schema.n_items, 6, generator=gen) for t in ("anchor", "context")}
    model.encode = lambda j, graph_, nodes, tower="anchor", generator=None: tables[tower][nodes]  # type: ignore[method-assign]
    # a pool as large as the catalogue holds the users' own items: the interaction mode must mask them
    pairs = _pairs(history_targets=targets, negative_pool=24)
    anchors = g.anchors  # three of them have no user in the toy graph
    loss, z = history_source_loss(model, g, 0, anchors, pairs, torch.Generator().manual_seed(1), torch.device("cpu"))
    torch.testing.assert_close(z, tables["anchor"][anchors])
    # the same draws, in the same order, from the same seed
    rng = torch.Generator().manual_seed(1)
    target = anchors.repeat(pairs.walks_per_anchor)
    if targets == "interaction":
        via, has_via = walk_step(g.item_user, target, rng)
        drawn, _ = walk_step(g.user_item, via, rng)
        # by hand: the target is an item of a user of the anchor (or the anchor itself when it has none)
        for a, v, ok, t in zip(target.tolist(), via.tolist(), has_via.tolist(), drawn.tolist(), strict=True):
            if ok:
                assert _holds(g.item_user, a, v) and _holds(g.user_item, v, t)
        target = torch.where(has_via, drawn, target)
        assert (target != anchors.repeat(pairs.walks_per_anchor)).any()
    if targets == "edge":
        target, users = interaction_edges(g, len(target), rng)
        assert all(_holds(g.item_user, t, v) for t, v in zip(target.tolist(), users.tolist(), strict=True))
        has_user = torch.ones(len(target), dtype=torch.bool)
    else:
        users, has_user = walk_step(g.item_user, target, rng)
    hist, _ = walk_step(g.user_item, users.repeat_interleave(pairs.history_length), rng)
    hist = hist.view(len(target), pairs.history_length)
    pool = degree_negatives(g.all_items_uniform, torch.zeros(1, dtype=torch.long), pairs.negative_pool, rng).reshape(-1)
    gamma = model.config.gamma
    rows, no_user, all_target, masked_history = [], 0, 0, 0
    for t, has, hs in zip(target.tolist(), has_user.tolist(), hist.tolist(), strict=True):
        others = [h for h in hs if h != t]
        if not has or not others:
            no_user += not has
            all_target += has and not others
            continue

        def ell(i: int, others: list[int] = others) -> float:
            return math.log(sum(math.exp(gamma * float(tables["anchor"][h] @ tables["context"][i])) for h in others))

        excluded = {t} | (set(hs) if targets != "anchor" else set())
        masked_history += sum(k in set(others) for k in pool.tolist()) if targets != "anchor" else 0
        negs = [ell(k) for k in pool.tolist() if k not in excluded]
        rows.append(-ell(t) + math.log(math.exp(ell(t)) + sum(math.exp(x) for x in negs)))
    # rows of both drop-out kinds and kept rows: a wrong denominator or a kept user-less row would show
    # (edge targets always have a user, the draw being an interaction; the drop-outs are the same code in every mode)
    assert rows and (no_user == 0 if targets == "edge" else no_user and all_target)
    assert no_user + all_target + len(rows) == len(target)
    assert masked_history > 0 or targets == "anchor"
    assert abs(float(loss) - sum(rows) / len(rows)) < 1e-4 * max(1.0, abs(float(loss)))


def _holds(csr: object, row: int, col: int) -> bool:
    indptr, indices = csr.indptr, csr.indices  # type: ignore[attr-defined]
    return col in indices[int(indptr[row]):int(indptr[row + 1])].tolist()


def _dense(csr: object, rows: int, cols: int) -> torch.Tensor:
    indptr, indices, w = csr.indptr, csr.indices, csr.weights  # type: ignore[attr-defined]
    M = torch.zeros(rows, cols, dtype=torch.float64)
    for r in range(rows):
        for pos in range(int(indptr[r]), int(indptr[r + 1])):
            M[r, int(indices[pos])] += float(w[pos])
    return M


def test_interaction_targets_are_the_two_step_walk():
    """The targets the loss draws (``interaction_targets``) against the exact distribution of a walk anchor → user
    → item with each step ∝ weight, from uniform anchors; anchors without users keep themselves."""
    graph = toy_graph(sizes=(40, 30, 16))
    g = graph.sources[0]
    n, u = g.schema.n_items, g.schema.n_users
    iu = _dense(g.item_user, n, u)
    ui = _dense(g.user_item, u, n)
    step1 = iu / iu.sum(1, keepdim=True).clamp(min=1e-12)
    step2 = ui / ui.sum(1, keepdim=True).clamp(min=1e-12)
    anchors = g.anchors
    has = iu[anchors].sum(1) > 0
    assert has.any() and (~has).any()  # both kinds of anchor occur
    expected = (step1[anchors] @ step2) * has.unsqueeze(1).double()
    expected[(~has).nonzero().squeeze(1), anchors[~has]] = 1.0
    expected = expected.sum(0) / len(anchors)
    draws = 400
    got = interaction_targets(g, anchors.repeat(draws), torch.Generator().manual_seed(0))
    freq = torch.bincount(got, minlength=n).double() / got.numel()
    assert 0.5 * float((freq - expected).abs().sum()) < 0.02  # total variation; uniform targets would be far off
    uniform = torch.zeros(n, dtype=torch.float64)
    uniform[anchors] = 1.0 / len(anchors)
    assert 0.5 * float((uniform - expected).abs().sum()) > 0.1


def test_interaction_edges_follow_the_interaction_weights():
    """``history_targets: edge`` draws (item, user) pairs ∝ interaction weight: every pair is an interaction and the
    joint frequencies are the weights' shares; unequal weights (1–9) and items without any user, so a draw uniform
    over interactions or over items is far off."""
    frames = source_frames(40, 20, ["a", "b"], seed=3)
    rng = np.random.default_rng(7)
    ui = frames.user_item.with_columns(pl.Series("weight", rng.integers(1, 10, frames.user_item.height).astype(float)))
    g = build_multisource_graph({"s0": SourceFrames(frames.items, frames.item_item, ui)}).sources[0]
    n, u = g.schema.n_items, g.schema.n_users
    iu = _dense(g.item_user, n, u)
    assert bool((iu.sum(1) == 0).any())  # items with no user: rows the edge search must step over
    items, users = interaction_edges(g, 200_000, torch.Generator().manual_seed(0))
    assert bool((iu[items, users] > 0).all())
    expected = iu / iu.sum()
    freq = torch.zeros(n, u, dtype=torch.float64)
    freq.index_put_((items, users), torch.ones(len(items), dtype=torch.float64), accumulate=True)
    freq /= len(items)
    assert 0.5 * float((freq - expected).abs().sum()) < 0.02
    # the alternatives the test must reject are well beyond that tolerance
    by_edge = (iu > 0).double() / float((iu > 0).sum())
    assert 0.5 * float((by_edge - expected).abs().sum()) > 0.1
    by_item = expected.sum(1)
    uniform = (by_item > 0).double() / float((by_item > 0).sum())
    assert 0.5 * float((uniform - by_item).abs().sum()) > 0.1


@pytest.mark.parametrize("targets", ["anchor", "edge"])
def test_history_training_is_deterministic_and_learns(targets: str):
    graph = toy_graph(sizes=(40, 30, 16))

    def run() -> list[float]:
        model = build_model(graph.schemas, len(graph.categories), SMALL, 0)
        tr = Trainer(model, graph, single_config("base", None, SCHED), pairs=_pairs(history_targets=targets),
                     align=ALIGN, seed=0,
                     device="cpu")
        tr.fit()
        return [r["total"] for r in tr.log]

    a, b = run(), run()
    assert a == b and all(x == x for x in a)
    assert sum(a[-3:]) < sum(a[:3])


def test_history_objective_settings_are_checked():
    with pytest.raises(ConfigError, match="negatives to 0"):
        _pairs(negatives=2)
    for bad in (0, True):
        with pytest.raises(ConfigError, match="history_length"):
            _pairs(history_length=bad)
    with pytest.raises(ConfigError, match="negative_pool"):
        _pairs(negative_pool=0)
    with pytest.raises(ConfigError, match="history_targets"):
        _pairs(history_targets="user")
    for targets in ("interaction", "edge"):
        with pytest.raises(ConfigError, match="only applies to objective 'history'"):
            _pairs(history_targets=targets, objective="softmax")
    assert _pairs(history_targets="edge").history_targets == "edge"


def test_a_user_with_only_the_target_drops_out_without_nan_gradients():
    graph = toy_graph(sizes=(12, 10, 8))
    g = graph.sources[0]
    model = build_model(graph.schemas, len(graph.categories), SMALL, 0)
    tables = {t: torch.randn(g.schema.n_items, 6, requires_grad=True) for t in ("anchor", "context")}
    model.encode = lambda j, graph_, nodes, tower="anchor", generator=None: tables[tower][nodes]  # type: ignore[method-assign]
    # every user's history is the target itself (one item per user row): all rows drop out
    anchors = g.anchors[:5]
    import dataclasses

    from crossmatch.icpa.graph import csr_from_edges
    n_users = g.schema.n_users
    items = torch.arange(n_users) % g.schema.n_items
    lone = dataclasses.replace(g, user_item=csr_from_edges(torch.arange(n_users).numpy(), items.numpy(),
                                                           torch.ones(n_users).double().numpy(), n_users),
                               item_user=csr_from_edges(items.numpy(), torch.arange(n_users).numpy(),
                                                        torch.ones(n_users).double().numpy(), g.schema.n_items))
    anchors = anchors[anchors < n_users]
    loss, _ = history_source_loss(model, lone, 0, anchors, _pairs(), torch.Generator().manual_seed(0),
                                  torch.device("cpu"))
    loss.backward()
    assert float(loss) == 0.0
    assert all(torch.isfinite(t.grad).all() for t in tables.values() if t.grad is not None)
