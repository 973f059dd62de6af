"""Data-parallel ICPA training (issue 11 part 4): train_align as 2 CPU processes (torchrun, gloo)
on the tiny preset finishes and learns as well as one process.

Tolerance: the mean validation NDCG@10 over the three sources of the 2-process run must lie
within 0.08 of the single-process run. The runs are alike, not equal: two ranks draw other pairs
and negatives (seed split seed + rank), and with the same epochs each rank takes half as many
optimiser steps (twice the anchors per step). Measured with this test's params: one process,
seeds 0/1/2: 0.306 / 0.309 / 0.333; two processes, seeds 0/1: 0.277 / 0.276 (45 vs 27 steps).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.conftest import TinyData, run_stage

ICPA_DDP = """
icpa:
  sources: [alpha, beta, gamma]
  seed: 0
  device: cpu
  world_size: {world_size}
  methods: [icpa, soo, base]
  model: {{embedding_dim: 8, hidden: [32, 32, 16], neighbours: 3, gamma: 10.0}}
  pairs: {{batch_size: 32, negatives: 0, global_negatives: 4, negative_sampling: uniform, walks_per_anchor: 4,
          pack_categories: true}}
  align: {{beta: 1.0, swd_projections: 16, sgwd_projections: 4, sgwd_pairs: 16, interp_length: 64}}
  schedule: {{phase1_epochs: 20, phase2_epochs: 1, optimizer: adam, lr: 0.001, embedding_lr: 0.1}}
  eval: {{ks: [1, 5, 10]}}
"""
TOLERANCE = 0.08

def _train(tiny: TinyData, base: Path, world_size: int) -> tuple[Path, dict[str, object]]:
    base.mkdir(parents=True, exist_ok=True)
    params = base / "params.yaml"
    params.write_text(tiny.params.read_text() + ICPA_DDP.format(world_size=world_size))
    proc = run_stage("train_align", "--params", str(params), "--ingested", str(tiny.ingested),
                     "--edges", str(tiny.edges), "--truth", str(tiny.truth / "concepts.parquet"),
                     "--out", str(base / "align"), "--embeddings", str(base / "emb"),
                     "--checkpoints", str(base / "ck"), "--metrics", str(base / "m.json"),
                     "--front", str(base / "front.csv"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return params, json.loads((base / "m.json").read_text())


def _valid_ndcg(params: Path, tiny: TinyData, model_path: Path) -> float:
    from stages._icpa import evaluate_source, load_data, load_model, load_params

    p = load_params(params)
    data = load_data(tiny.ingested, tiny.edges, p.sources)
    model = load_model(model_path)
    return float(np.mean([evaluate_source(model, data, s, p.eval_config)["valid"]["10"]["ndcg"] for s in p.sources]))


def test_two_processes_match_one(tiny_data: TinyData, tmp_path: Path) -> None:
    p1, m1 = _train(tiny_data, tmp_path / "one", 1)
    p2, m2 = _train(tiny_data, tmp_path / "two", 2)
    assert m2["world_size"] == 2 and "world_size" not in m1
    # every rank runs ceil(batches / 2) steps, so the pair covers one epoch of anchors per epoch
    steps1, steps2 = m1["icpa_phase1.steps"], m2["icpa_phase1.steps"]
    assert steps1 / 2 <= steps2 <= steps1 / 2 + 20
    assert (tmp_path / "two" / "align" / "icpa_phase1.pt").exists()
    assert not any((tmp_path / "two" / "ck").iterdir()), "rank checkpoints are cleared after success"
    one = _valid_ndcg(p1, tiny_data, tmp_path / "one" / "align" / "icpa_phase1.pt")
    two = _valid_ndcg(p2, tiny_data, tmp_path / "two" / "align" / "icpa_phase1.pt")
    assert one > 0.05 and two > 0.05, (one, two)
    assert abs(one - two) <= TOLERANCE, (one, two)
