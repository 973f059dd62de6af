"""The ICPA protocols called from the library, without the stages, files or a checkpoint store."""

from __future__ import annotations

import math

import pytest

from crossmatch.errors import ConfigError
from crossmatch.icpa.data import Data
from crossmatch.icpa.params import ICPAParams, seed_file
from crossmatch.icpa.phases import align_phase1
from crossmatch.icpa.report import flatten
from crossmatch.icpa.runs import fingerprint
from crossmatch.icpa.train import build_model
from tests.icpa.helpers import toy_graph


def _params(**kw: object) -> ICPAParams:
    base: dict[str, object] = dict(
        sources=["alpha", "beta"], device="cpu", model={"hidden": [16, 8]}, pairs={"batch_size": 32, "negatives": 2},
        align={"swd_projections": 8, "sgwd_projections": 2, "sgwd_pairs": 8, "interp_length": 16},
        schedule={"phase1_epochs": 1, "phase2_epochs": 0})
    base.update(kw)
    return ICPAParams(**base)  # type: ignore[arg-type]


def test_align_phase1_without_checkpoints_trains_both_runs_per_seed() -> None:
    graph = toy_graph(sizes=(20, 16), categories=("a", "b"))
    params = _params(sources=list(graph.names), seeds=2, methods=["icpa", "wo_align"])
    data = Data(graph, {n: [] for n in graph.names}, {}, {})
    res = align_phase1(data, params)
    assert set(res.models) == {"icpa_phase1.pt", "wo_align_phase1.pt", "icpa_phase1.seed1.pt",
                               "wo_align_phase1.seed1.pt"}
    assert res.metrics["icpa_phase1"]["steps"] > 0 and res.metrics["seeds"] == [0, 1]
    assert math.isfinite(res.metrics["icpa_phase1"][f"final_loss_{graph.names[0]}"])
    assert res.log and {"step", "epoch", "align", "total"} <= set(res.log[0])
    assert res.metrics["wo_align_phase1"]["final_align"] == 0.0, "w/o Align: beta = 0, no alignment term"
    for j, s in enumerate(graph.names):
        assert res.embeddings[s].shape == (graph.sources[j].schema.n_items, 8)
    assert res.sweep == []
    # the same seed trains the same model: phase 1 is a function of params and data
    again = align_phase1(data, params)
    a, b = res.models["icpa_phase1.pt"].state_dict(), again.models["icpa_phase1.pt"].state_dict()
    assert all((a[k] == b[k]).all() for k in a)
    fresh = build_model(graph.schemas, len(graph.categories), params.model_config, 0).state_dict()
    assert any((a[k] != fresh[k]).any() for k in a if a[k].is_floating_point())


def test_section_as_names_the_key_of_a_bad_sub_section() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['hiden'\] under 'icpa.model'"):
        _ = _params(model={"hiden": [8]}).model_config
    with pytest.raises(ConfigError, match="icpa.eval.ks must contain 10"):
        _ = _params(eval={"ks": [1, 5]}).eval_config


def test_seed_files_fingerprints_and_flat_metrics() -> None:
    assert seed_file("icpa", 3, 3) == "icpa.pt" and seed_file("icpa", 4, 3) == "icpa.seed4.pt"
    assert fingerprint({"a": 1}, [2]) == fingerprint({"a": 1}, [2]) != fingerprint({"a": 2}, [2])
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": 0.5}) == {"a.b": 1, "a.c": "1,2", "d": 0.5}
