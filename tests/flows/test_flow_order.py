"""The flow's stage lists agree with the dvc.yaml files: same stages, same order, topological."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.stages import PIPELINES

ROOT = Path(__file__).resolve().parents[2]


def _stages(dvcfile: Path) -> dict[str, dict]:
    return yaml.safe_load(dvcfile.read_text())["stages"]


def _paths(entries: list) -> list[str]:
    out = []
    for e in entries or []:
        out.extend(e.keys() if isinstance(e, dict) else [e])
    return [str(p) for p in out]


def _depends(later: dict, earlier: dict) -> bool:
    outs = _paths(earlier.get("outs", [])) + _paths(earlier.get("metrics", [])) + _paths(earlier.get("plots", []))
    deps = _paths(later.get("deps", []))
    return any(d == o or d.startswith(o.rstrip("/") + "/") for d in deps for o in outs)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_flow_order_equals_dvc_yaml_order(name):
    spec = PIPELINES[name]
    stages = _stages(ROOT / spec.dvcfile)
    assert [s.name for s in spec.stages] == list(stages), "flows/stages.py and the dvc.yaml disagree"


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_dvc_yaml_order_is_topological(name):
    stages = _stages(ROOT / PIPELINES[name].dvcfile)
    names = list(stages)
    for i, later in enumerate(names):
        for earlier in names[i + 1 :]:
            assert not _depends(stages[later], stages[earlier]), f"'{later}' needs '{earlier}', which comes after it"


def test_training_stages_are_routed_to_gpu_workers():
    for spec in PIPELINES["default"].stages:
        assert "dvc" in spec.tags
        assert spec.resource in ("cpu", "gpu")
        if spec.name in ("train_align", "pareto_finetune", "weavenet_train"):
            assert spec.resource == "gpu"
    assert [s.name for s in PIPELINES["default"].stages if s.io] == ["ingest_source", "ingest"]
    assert [s.name for s in PIPELINES["default"].stages if s.fanout] == ["ingest_source", "edges_source", "pareto_finetune"]
