"""Training phases end to end on toy graphs: loss goes down, determinism, resume, phase-2 freezing, bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from crossmatch.errors import ConfigError
from crossmatch.icpa import AlignConfig, ModelConfig, PairConfig, PhaseConfig, Schedule, Trainer, build_model
from crossmatch.icpa.methods import phase1_config, phase2_config, single_config
from tests.icpa.helpers import toy_graph

SMALL = ModelConfig(hidden=(32, 32, 16))
PAIRS = PairConfig(batch_size=64, negatives=3, global_negatives=1)
ALIGN = AlignConfig(swd_projections=16, sgwd_projections=4, sgwd_pairs=16, interp_length=64)


def _trainer(graph, phase, seed=0, frozen=None, model=None):
    model = model or build_model(graph.schemas, len(graph.categories), SMALL, seed)
    return Trainer(model, graph, phase, pairs=PAIRS, align=ALIGN, seed=seed, frozen=frozen)


def _epoch_loss(tr, epoch):
    rows = [r for r in tr.log if r["epoch"] == epoch]
    return sum(r["total"] for r in rows) / len(rows)


@pytest.fixture(scope="module")
def graph():
    return toy_graph(sizes=(40, 30, 16))


def test_tiny_phase1_run_lowers_the_loss_and_logs_every_step(graph):
    tr = _trainer(graph, phase1_config(Schedule(phase1_epochs=25, phase2_epochs=0), align=True))
    history = tr.fit()
    assert len(history) == 25 and tr.epoch == 25
    assert _epoch_loss(tr, 24) < _epoch_loss(tr, 0)
    rec = tr.log[0]
    assert {"loss_s0", "loss_s1", "loss_s2", "weight_s0", "align", "gate", "total"} <= set(rec)
    weights = torch.tensor([[r[f"weight_s{j}"] for j in range(3)] for r in tr.log])
    assert torch.allclose(weights.sum(1), torch.ones(len(tr.log), dtype=weights.dtype), atol=1e-5)
    assert any(r["align"] > 0 for r in tr.log)


def test_same_seed_same_result(graph):
    phase = phase1_config(Schedule(phase1_epochs=2, phase2_epochs=0), align=True)
    a, b = _trainer(graph, phase), _trainer(graph, phase)
    a.fit()
    b.fit()
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(),
                                                  strict=True))
    assert [r["total"] for r in a.log] == [r["total"] for r in b.log]


def test_resumed_run_continues_exactly_from_the_checkpoint(graph):
    phase = phase1_config(Schedule(phase1_epochs=4, phase2_epochs=0), align=True)
    straight = _trainer(graph, phase)
    straight.fit()
    first = _trainer(graph, phase)
    saved = {}

    def stop_after_two(tr, stats):
        if tr.epoch == 2:
            saved.update(copy.deepcopy(tr.state_dict()))
            raise KeyboardInterrupt  # the run is killed after its second checkpoint

    with pytest.raises(KeyboardInterrupt):
        first.fit(stop_after_two)
    resumed = _trainer(graph, phase, seed=0)
    resumed.load_state_dict(saved)
    assert resumed.epoch == 2
    resumed.fit()
    assert resumed.epoch == 4
    assert all(torch.equal(x, y) for x, y in zip(straight.model.state_dict().values(),
                                                  resumed.model.state_dict().values(), strict=True))
    assert [r["total"] for r in straight.log] == [r["total"] for r in resumed.log]


def test_phase2_freezes_gates_and_plans_and_pmtl_weights_the_target(graph):
    sched = Schedule(phase1_epochs=2, phase2_epochs=2)
    p1 = _trainer(graph, phase1_config(sched, align=True))
    p1.fit()
    frozen = p1.model
    before = copy.deepcopy(frozen.state_dict())
    start = build_model(graph.schemas, len(graph.categories), SMALL, 0)
    start.load_state_dict(frozen.state_dict())
    p2 = _trainer(graph, phase2_config("icpa", 2, sched), frozen=frozen, model=start)
    p2.fit()
    assert torch.equal(p2.model.gate.weight, frozen.gate.weight), "θ_t stays fixed in phase 2"
    assert all(torch.equal(before[k], v) for k, v in frozen.state_dict().items()), "f^0 is not modified"
    assert not torch.equal(p2.model.towers["anchor"].mlp.lins[0].weight, frozen.towers["anchor"].mlp.lins[0].weight)
    assert all(r["gate"] == 0.0 for r in p2.log)
    assert any(r["weight_s2"] > 0 for r in p2.log)
    with pytest.raises(ConfigError, match="phase-1 model"):
        _trainer(graph, phase2_config("icpa", 2, sched))


@pytest.mark.parametrize("method", ["soo", "base", "mmoe", "wo_front"])
def test_one_phase_methods_train(graph, method):
    sched = Schedule(phase1_epochs=1, phase2_epochs=1)
    cfg = SMALL if method != "mmoe" else ModelConfig(hidden=(32, 32, 16), tower="mmoe")
    model = build_model(graph.schemas, len(graph.categories), cfg, 0)
    tr = _trainer(graph, single_config(method, 1, sched), model=model)
    tr.fit()
    assert tr.epoch == 2
    if method == "soo":
        assert all(r["loss_s0"] != r["loss_s0"] and r["weight_s0"] == 0 for r in tr.log), "SOO trains the target only"


def test_single_source_trains_without_alignment():
    g = toy_graph(sizes=(30,))
    tr = _trainer(g, phase1_config(Schedule(phase1_epochs=3, phase2_epochs=0), align=True))
    tr.fit()
    assert not tr.aligning and all(r["align"] == 0.0 for r in tr.log)
    assert all(r["weight_s0"] == pytest.approx(1.0) for r in tr.log)


def test_category_missing_from_a_source_aligns_only_the_sources_present():
    g = toy_graph(sizes=(30, 30), missing={1: "c"})
    tr = _trainer(g, phase1_config(Schedule(phase1_epochs=2, phase2_epochs=0), align=True))
    tr.fit()
    c_batches = [r for r in tr.log if r["loss_s1"] != r["loss_s1"]]
    assert c_batches, "category 'c' batches hold source s0 only"
    assert all(r["align"] == 0.0 and r["weight_s1"] == 0.0 for r in c_batches)
    assert any(r["align"] > 0 for r in tr.log if r["loss_s1"] == r["loss_s1"])


def test_bad_trainer_configs():
    g = toy_graph(sizes=(20, 20))
    model = build_model(g.schemas, len(g.categories), SMALL, 0)
    with pytest.raises(ConfigError, match="training sources"):
        Trainer(model, g, PhaseConfig(sources=(5,)), pairs=PAIRS, align=ALIGN, seed=0)
    other = toy_graph(sizes=(20,))
    with pytest.raises(ConfigError, match="sources but the graph"):
        Trainer(model, other, PhaseConfig(), pairs=PAIRS, align=ALIGN, seed=0)
    with pytest.raises(ConfigError):
        PhaseConfig(alignment="sometimes")
    with pytest.raises(ConfigError):
        PairConfig(negatives=0, global_negatives=0)


def test_uniform_negatives_and_adagrad_accumulator_options(graph):
    pairs = PairConfig(batch_size=64, negatives=3, global_negatives=1, negative_sampling="uniform")
    sched = Schedule(phase1_epochs=1, phase2_epochs=0, adagrad_initial_accumulator=0.0)
    model = build_model(graph.schemas, len(graph.categories), SMALL, 0)
    tr = Trainer(model, graph, single_config("base", None, sched), pairs=pairs, align=ALIGN, seed=0)
    assert tr.optimizer.defaults["initial_accumulator_value"] == 0.0
    tr.fit()
    assert tr.epoch == 1
    with pytest.raises(ConfigError, match="negative_sampling"):
        PairConfig(negative_sampling="popular")
    with pytest.raises(ConfigError, match="adagrad_initial_accumulator"):
        PhaseConfig(adagrad_initial_accumulator=-1.0)


def test_weight_average_is_the_ema_of_every_step_and_resumes_exactly(graph):
    """``schedule.ema_decay``: the phase ends with w̄_t = d·w̄_{t−1} + (1 − d)·w_t over every step's weights (w̄_1 = w_1),
    checkpoints carry the average, and ``ema_decay = 0`` keeps the last weights."""
    decay = 0.9
    phase = phase1_config(Schedule(phase1_epochs=3, phase2_epochs=0, ema_decay=decay), align=True)
    tr = _trainer(graph, phase)
    avg: dict[str, torch.Tensor] = {}
    original_step = tr._step

    def step_and_average(batch):
        original_step(batch)
        for k, v in tr.model.state_dict().items():
            v = v.detach().clone().double()
            avg[k] = v if k not in avg else decay * avg[k] + (1 - decay) * v
        last.update({k: v.detach().clone() for k, v in tr.model.state_dict().items()})

    last: dict[str, torch.Tensor] = {}
    tr._step = step_and_average  # type: ignore[method-assign]
    tr.fit()
    final = tr.model.state_dict()
    assert tr.step > 5
    for k, v in final.items():
        torch.testing.assert_close(v.double(), avg[k], rtol=1e-5, atol=1e-6)
    # the average is not the last weights (it would be with ema off)
    assert any(not torch.allclose(final[k], last[k]) for k in final if final[k].is_floating_point())
    plain = _trainer(graph, phase1_config(Schedule(phase1_epochs=3, phase2_epochs=0), align=True))
    plain_step, plain_last = plain._step, {}

    def step_and_keep(batch):
        plain_step(batch)
        plain_last.update({k: v.detach().clone() for k, v in plain.model.state_dict().items()})

    plain._step = step_and_keep  # type: ignore[method-assign]
    plain.fit()
    assert all(torch.equal(v, plain_last[k]) for k, v in plain.model.state_dict().items())
    assert plain.ema is None and "ema" not in plain.state_dict()
    assert any(not torch.equal(plain.model.state_dict()[k], final[k]) for k in final)

    # a run killed after its first epoch resumes from the checkpoint to the same averaged weights
    straight = _trainer(graph, phase)
    straight.fit()
    first, saved = _trainer(graph, phase), {}

    def stop_after_one(t, stats):
        saved.update(copy.deepcopy(t.state_dict()))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        first.fit(stop_after_one)
    assert "ema" in saved
    resumed = _trainer(graph, phase)
    resumed.load_state_dict(saved)
    resumed.fit()
    assert all(torch.equal(x, y) for x, y in zip(straight.model.state_dict().values(),
                                                  resumed.model.state_dict().values(), strict=True))
    # a checkpoint without an average cannot resume a phase that keeps one
    with pytest.raises(ConfigError, match="weight average"):
        _trainer(graph, phase).load_state_dict({k: v for k, v in saved.items() if k != "ema"})


def test_weight_average_also_ends_a_step_budgeted_run(graph):
    """SOO-style ``max_steps``: the run stops mid-epoch and still ends on its averaged weights."""
    phase = PhaseConfig(epochs=50, weighting="equal", alignment="none", beta=0.0, optimizer="adam", lr=1e-3,
                        max_steps=7, ema_decay=0.5)
    tr = _trainer(graph, phase)
    tr.fit()
    assert tr.step == 7 and tr.epoch < 50
    assert tr.ema is not None
    assert all(torch.equal(tr.model.state_dict()[k], v) for k, v in tr.ema.items())


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2, True, "0.9"])
def test_bad_weight_average_decay_is_rejected(bad):
    with pytest.raises(ConfigError, match="ema_decay must be in"):
        PhaseConfig(ema_decay=bad)
    with pytest.raises(ConfigError, match="schedule.ema_decay"):
        Schedule(ema_decay=bad)
