"""The sync-free training path (issue 11 parts 1 and 5), checked on the CPU; the CUDA test runs
only where a GPU is present.

* device-side loss records: flushing every n steps gives the same log as flushing every step;
* the torch ParetoMTL solver inside a phase-2 run gives the NumPy solver's weights;
* shared negatives (``pairs.negative_pool``): the nodes a step encodes are bounded by the batch,
  the walks and the pool, not by the catalogue; same seed, same result.
"""

from __future__ import annotations

import pytest
import torch

from crossmatch.icpa import AlignConfig, ModelConfig, PairConfig, Schedule, Trainer, build_model
from crossmatch.icpa.methods import phase1_config, phase2_config
from crossmatch.icpa.sampler import category_batches
from crossmatch.icpa.train import configure_determinism
from tests.icpa.helpers import toy_graph

SMALL = ModelConfig(hidden=(32, 32, 16))
ALIGN = AlignConfig(swd_projections=16, sgwd_projections=4, sgwd_pairs=16, interp_length=64)
PAIRS = PairConfig(batch_size=32, negatives=0, global_negatives=4, negative_sampling="uniform",
                   walks_per_anchor=4, pack_categories=True)
SCHED = Schedule(phase1_epochs=3, phase2_epochs=2, optimizer="adam", lr=1e-3, embedding_lr=0.1)


@pytest.fixture(scope="module")
def graph():
    return toy_graph(sizes=(40, 30, 16))


def _trainer(graph, phase, pairs=PAIRS, device="cpu", frozen=None, log_every=50, options=None):
    model = build_model(graph.schemas, len(graph.categories), SMALL, 0)
    return Trainer(model, graph, phase, pairs=pairs, align=ALIGN, seed=0, device=device, frozen=frozen,
                   log_every=log_every, weighting_options=options)


def test_buffered_log_equals_per_step_log(graph):
    phase = phase1_config(SCHED, align=True)
    a = _trainer(graph, phase, log_every=1)
    b = _trainer(graph, phase, log_every=1000)
    a.fit()
    b.fit()
    assert a.log == b.log and len(a.log) == a.step


def test_torch_pareto_solver_in_training_matches_numpy(graph):
    p1 = _trainer(graph, phase1_config(SCHED, align=True))
    p1.fit()
    runs = {}
    for solver in ("numpy", "torch"):
        tr = _trainer(graph, phase2_config("icpa", 1, SCHED), frozen=p1.model, options={"solver": solver})
        tr.model.load_state_dict(p1.model.state_dict())
        batches = category_batches(graph, [0, 1, 2], 32, torch.Generator().manual_seed(5), pack=True)[:3]
        runs[solver] = [tr.train_step(b) for b in batches]
    for a, b in zip(runs["numpy"], runs["torch"], strict=True):
        for j in ("s0", "s1", "s2"):
            assert a[f"weight_{j}"] == pytest.approx(b[f"weight_{j}"], abs=1e-4)


def test_negative_pool_bounds_the_nodes_a_step_encodes(graph):
    pool = 16
    pairs = PairConfig(**{**PAIRS.__dict__, "negative_pool": pool})
    big = toy_graph(sizes=(400, 300, 160))
    for g in (graph, big):
        tr = _trainer(g, phase1_config(SCHED, align=True), pairs=pairs)
        sizes: list[int] = []
        encode = tr.model.encode

        def counting(source, sg, nodes, tower="anchor", generator=None, full=False, _enc=encode, _s=sizes):
            _s.append(int(nodes.numel()))
            return _enc(source, sg, nodes, tower, generator, full)

        tr.model.encode = counting  # type: ignore[method-assign]
        tr.train_epoch()
        # per source and step: anchors (≤ batch) + positives (batch × walks) + pool
        assert max(sizes) <= 32 * PAIRS.walks_per_anchor + pool
    a = _trainer(graph, phase1_config(SCHED, align=True), pairs=pairs)
    b = _trainer(graph, phase1_config(SCHED, align=True), pairs=pairs)
    a.fit()
    b.fit()
    assert [r["total"] for r in a.log] == [r["total"] for r in b.log]


def test_cpu_stays_deterministic_whatever_the_flag():
    configure_determinism(torch.device("cpu"), deterministic=False)
    assert torch.are_deterministic_algorithms_enabled()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_phase1_and_phase2_run(graph):
    pairs = PairConfig(**{**PAIRS.__dict__, "negative_pool": 16})
    p1 = _trainer(graph, phase1_config(SCHED, align=True), pairs=pairs, device="cuda")
    p1.fit()
    p2 = _trainer(graph, phase2_config("icpa", 0, SCHED), pairs=pairs, device="cuda", frozen=p1.model)
    p2.fit()
    assert all(r["total"] == r["total"] for r in p2.log) and p2.step > 0
