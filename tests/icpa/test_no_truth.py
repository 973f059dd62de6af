"""ICPA stages on data without concepts truth (one's own data): they run, and say why hit@k is null.

Also: ``icpa.sources`` that name no ingested source (the synthetic ``alpha, beta, gamma`` left in place
on one's own data) are a params error naming the sources found, not "run the edges stage first".
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import TinyData, run_stage

ICPA_SHORT = """
icpa:
  sources: [alpha, beta, gamma]
  device: cpu
  methods: [icpa, soo]
  model: {embedding_dim: 8, hidden: [16, 8], neighbours: 3, gamma: 10.0}
  pairs: {batch_size: 64, negatives: 0, global_negatives: 2, walks_per_anchor: 1}
  align: {swd_projections: 8, sgwd_projections: 2, sgwd_pairs: 8, interp_length: 32}
  schedule: {phase1_epochs: 2, phase2_epochs: 1}
  eval: {ks: [1, 10], hit_ks: [1, 10]}
"""


def test_icpa_stages_without_truth(tiny_data: TinyData, tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(tiny_data.params.read_text() + ICPA_SHORT)
    common = ["--params", str(params), "--ingested", str(tiny_data.ingested), "--edges", str(tiny_data.edges)]
    proc = run_stage("train_align", *common, "--truth", "none", "--out", str(tmp_path / "align"),
                     "--embeddings", str(tmp_path / "emb"), "--checkpoints", str(tmp_path / "ck"),
                     "--metrics", str(tmp_path / "train_align.json"), "--front", str(tmp_path / "front.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "no concepts truth" in proc.stderr
    m = json.loads((tmp_path / "train_align.json").read_text())
    assert m["icpa_phase1.hit@10"] is None and m["icpa_phase1.hit@1"] is None
    assert "concepts truth" in m["icpa_phase1.hits_unavailable"]
    for s in ("alpha", "beta", "gamma"):
        proc = run_stage("pareto_finetune", *common, "--target", s, "--align", str(tmp_path / "align"),
                         "--out", str(tmp_path / "ft" / s), "--checkpoints", str(tmp_path / "ck" / s),
                         "--metrics", str(tmp_path / f"ft_{s}.json"))
        assert proc.returncode == 0, proc.stderr
    missing = tmp_path / "no" / "concepts.parquet"  # a path that does not exist reads as no truth too
    proc = run_stage("icpa_eval", *common, "--truth", str(missing), "--align", str(tmp_path / "align"),
                     "--finetune", str(tmp_path / "ft"), "--out", str(tmp_path / "eval"),
                     "--checkpoints", str(tmp_path / "ck" / "eval"), "--metrics", str(tmp_path / "icpa.json"),
                     "--plot", str(tmp_path / "ndcg.csv"))
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "icpa.json").read_text())
    assert m["alignment.icpa_phase1.hit@10"] is None
    assert str(missing) in m["alignment.icpa_phase1.hits_unavailable"]
    for s in ("alpha", "beta", "gamma"):  # what needs no labels is still there: held-out NDCG
        assert 0 < m[f"{s}.icpa.ndcg@10"] <= 1


@pytest.mark.parametrize("stage", ["train_align", "icpa_eval"])
def test_sources_not_in_the_data_are_named(tiny_data: TinyData, tmp_path, stage: str) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(tiny_data.params.read_text() + ICPA_SHORT.replace("[alpha, beta, gamma]", "[ca, de]"))
    proc = run_stage(stage, "--params", str(params), "--ingested", str(tiny_data.ingested),
                     "--edges", str(tiny_data.edges), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "icpa.sources lists ['ca', 'de']" in proc.stderr and "'alpha', 'beta', 'gamma'" in proc.stderr
    assert "run the edges stage" not in proc.stderr
    assert not (tmp_path / "out").exists()
