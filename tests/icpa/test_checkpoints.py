"""Stage-side checkpointing: atomic per-run files, resume on a matching fingerprint, restart otherwise."""

from __future__ import annotations

import pytest

from crossmatch.icpa import PairConfig, Schedule, build_model
from crossmatch.icpa.data import Data
from crossmatch.icpa.methods import phase1_config
from crossmatch.icpa.params import ICPAParams
from crossmatch.icpa.runs import train_run
from stages._icpa import Checkpoints
from tests.icpa.helpers import toy_graph


@pytest.fixture
def setup():
    graph = toy_graph(sizes=(20, 16))
    data = Data(graph, {n: [] for n in graph.names}, {}, {})
    params = ICPAParams(sources=graph.names, device="cpu", model={"hidden": [16, 8]},
                        pairs={"batch_size": 32, "negatives": 2},
                        align={"swd_projections": 8, "sgwd_projections": 2, "sgwd_pairs": 8, "interp_length": 16})
    return graph, data, params


def test_resume_from_matching_checkpoint_and_restart_on_mismatch(setup, tmp_path, capsys):
    graph, data, params = setup
    ck = Checkpoints(tmp_path, every=1)
    phase = phase1_config(Schedule(phase1_epochs=2, phase2_epochs=0), align=True)
    model = build_model(graph.schemas, len(graph.categories), params.model_config, 0)
    first = train_run("p1", model, data, phase, params, ck, tag="A")
    assert (tmp_path / "p1.pt").exists() and first.epoch == 2
    again = train_run("p1", build_model(graph.schemas, len(graph.categories), params.model_config, 0),
                      data, phase, params, ck, tag="A")
    assert again.step == first.step, "a finished checkpoint is reused: no further step"
    assert all((a == b).all() for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values(),
                                              strict=True))
    other = train_run("p1", build_model(graph.schemas, len(graph.categories), params.model_config, 0),
                      data, phase, params, ck, tag="B")
    assert other.epoch == 2 and other.step == first.step
    err = capsys.readouterr().err
    assert "resumed from checkpoint at epoch 2/2" in err and "starting over" in err
    ck.clear()
    assert not any(tmp_path.iterdir())


def test_unreadable_checkpoint_is_ignored(setup, tmp_path):
    graph, data, params = setup
    (tmp_path / "p1.pt").write_bytes(b"not a torch file")
    ck = Checkpoints(tmp_path)
    assert ck.load("p1", "A") is None
    assert PairConfig(**params.pairs).negatives == 2
