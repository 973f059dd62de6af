"""`crossmatch init --truth-dir` end to end on a tiny synthetic world written as a user's files: parquet, one
logs file with a source column, a folder of item files with cat_*/num_* features, a taxonomy, and the three truth
files. Needs no real data (the no-truth walk-through on XMarket is tests/flows/test_own_data.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.flows.repo_copy import make_repo_copy
from tests.flows.test_own_data import _env, crossmatch, shrink


@pytest.fixture(scope="module")
def truth_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("own_truth")
    repo = make_repo_copy(base / "repo")
    gen = crossmatch(repo, "generate", "--preset", "tiny", "--out", str(base / "syn/raw"), "--truth",
                     str(base / "syn/truth"))
    assert gen.returncode == 0, gen.stdout + gen.stderr
    raw = base / "syn/raw"
    init = crossmatch(repo, "init", "--logs", str(raw / "logs"), "--items", str(raw / "items"), "--categories",
                      str(raw / "categories.parquet"), "--taxonomy", str(raw / "taxonomy.parquet"),
                      "--truth-dir", str(base / "syn/truth"), "--left", "beta", "--right", "alpha", "--out",
                      "pipelines/syn")
    assert init.returncode == 0, init.stdout + init.stderr
    assert "truth: concepts.parquet, fine_categories.parquet, product_matches.parquet" in init.stdout
    assert "categorical ['cat_0'" in init.stdout  # the features ICPA will read
    shrink(repo / "pipelines/syn/params.yaml")
    # through the Prefect flow, as `crossmatch run --pipeline <folder>` (dvc repro <folder>/dvc.yaml runs the same stages)
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--pipeline", "pipelines/syn"], cwd=repo,
                          env=dict(_env(repo), COLUMNS="200"), capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "the pipelines/syn pipeline" in out and "pipeline completed; report: pipelines/syn/report.md" in out
    for stage in ("ingest", "train_align", "pareto_finetune", "blocking", "match", "evaluate"):
        assert f"✔ {stage}" in out, stage  # one end line per stage of the folder's dvc.yaml
    return repo / "pipelines/syn"


def test_truth_files_feed_the_truth_based_figures(truth_run: Path) -> None:
    stages = yaml.safe_load((truth_run / "dvc.yaml").read_text())["stages"]
    assert "--truth-pairs" in stages["blocking"]["cmd"] and "--taxonomy" in stages["ingest"]["cmd"]
    icpa = json.loads((truth_run / "metrics/icpa.json").read_text())
    assert 0 <= icpa["alignment.icpa_phase1.hit@10"] <= 1 and "alignment.icpa_phase1.hits_unavailable" not in icpa
    blocking = json.loads((truth_run / "metrics/blocking.json").read_text())
    assert (blocking["left"], blocking["right"]) == ("beta", "alpha")
    sel = blocking["methods"][blocking["selected"]]
    assert 0 < sel["coverage"] <= 1
    match = json.loads((truth_run / "metrics/match.json").read_text())
    assert match["pairs"] > 0 and 0 <= match["f1"] <= 1 and "truth_unavailable" not in match
    report = (truth_run / "report.md").read_text()
    assert "Alignment accuracy (hit@10" in report and "unavailable" not in report
    # per-epoch ICPA curves, declared once as DVC plots (dvc plots diff compares training runs)
    curves = sorted(p.relative_to(truth_run / "plots/icpa_curves").as_posix()
                    for p in (truth_run / "plots/icpa_curves").rglob("*.csv"))
    assert any(c.startswith("train_align/") for c in curves)
    assert {c.split("/")[0] for c in curves} >= {"train_align", "finetune_alpha", "finetune_beta"}
    dvcfile = yaml.safe_load((truth_run / "dvc.yaml").read_text())
    assert dvcfile["plots"] == [{"plots/icpa_curves": {"template": "linear", "x": "epoch", "y": ["loss", "total"]}}]
