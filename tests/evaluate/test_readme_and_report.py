"""The README's results table is generated from the committed metrics; the evaluate stage's report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crossmatch.report.readme import BEGIN, END, replace_block, results_block
from tests.conftest import run_stage

ROOT = Path(__file__).resolve().parents[2]


def _metrics() -> dict:
    return {f.stem: json.loads(f.read_text()) for f in sorted((ROOT / "metrics").glob("*.json"))}


def test_readme_results_table_matches_the_committed_metrics():
    readme = (ROOT / "README.md").read_text()
    assert BEGIN in readme and END in readme
    assert replace_block(readme, results_block(_metrics())) == readme, "run `crossmatch readme` and commit"


def test_results_block_reads_every_area():
    block = results_block(
        {
            "icpa": {"mean.icpa.ndcg@10": 0.5, "mean.soo.ndcg@10": 0.25, "negative_transfer.icpa.verdict": "none",
                     "alignment.icpa_phase1.hit@10": 0.2, "alignment.icpa_phase1.chance@10": 0.01},
            "blocking": {"selected": "bipoly_c", "methods": {"bipoly_c": {"coverage": 0.9, "reduction": 0.8, "tradeoff": 0.85}}},
            "weavenet_eval": {"check_cells": 4, "check_pass": 3, "WeaveNet/N20/UU/stable_rate": 0.5},
            "match": {"precision": 0.7, "recall": 0.6, "f1": 0.65},
        }
    )
    for text in ("| ICPA | synthetic | mean test NDCG@10, icpa | 0.500 |", "0.900 / 0.800 / 0.850", "3 / 4 cells",
                 "| One-to-one match | synthetic | precision / recall / F1 | 0.700 / 0.600 / 0.650 |"):
        assert text in block
    with pytest.raises(ValueError):
        replace_block("no markers here", block)


def test_evaluate_stage_writes_report_with_sections(tmp_path):
    for name in ("generate", "edges", "icpa", "blocking", "weavenet_eval", "match"):
        shutil.copy(ROOT / "metrics" / f"{name}.json", tmp_path / f"{name}.json")
    plots = tmp_path / "plots"
    plots.mkdir()
    shutil.copy(ROOT / "plots" / "icpa_front.csv", plots / "icpa_front.csv")
    params = tmp_path / "params.yaml"
    params.write_text("evaluate: {k: 10}\n")
    args = ["--params", str(params), "--plots-dir", str(plots), "--front", str(plots / "icpa_front.csv"),
            "--out", str(tmp_path / "evaluate.json"), "--report", str(tmp_path / "report.md")]
    for name, flag in (("generate", "--generate"), ("edges", "--edges"), ("icpa", "--icpa"), ("blocking", "--blocking"),
                       ("weavenet_eval", "--weavenet"), ("match", "--match")):
        args += [flag, str(tmp_path / f"{name}.json")]
    proc = run_stage("evaluate", *args)
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "report.md").read_text()
    for heading in ("## Data", "## ICPA", "## BiPoly", "## Two-sided", "## One-to-one", "## How to read"):
        assert heading in report
    assert "](plots/pareto_front.png)" in report
    assert (plots / "pareto_front.png").stat().st_size > 1000
    top = json.loads((tmp_path / "headline.json").read_text())  # --headline defaults to beside --out
    assert top == json.loads((ROOT / "metrics/headline.json").read_text())
    assert "| seconds |" not in report and "seconds" not in json.dumps(top)
    headline = json.loads((tmp_path / "evaluate.json").read_text())
    assert headline["icpa.front.hypervolume_under"] > 0
    assert headline["match.f1"] == json.loads((ROOT / "metrics/match.json").read_text())["f1"]
    icpa = json.loads((ROOT / "metrics/icpa.json").read_text())
    for method in ("icpa", "soo", "base", "mmoe", "wo_align", "wo_pareto", "wo_front"):
        for metric in ("f@10", "ndcg@10"):
            assert headline[f"icpa.alpha.{method}.{metric}"] == icpa[f"alpha.{method}.{metric}"]


def test_evaluate_drops_missing_sections(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("evaluate: {k: 10}\n")
    proc = run_stage("evaluate", "--params", str(params), "--generate", "none", "--edges", "none", "--icpa", "none",
                     "--blocking", "none", "--weavenet", "none", "--match", str(ROOT / "metrics/match.json"),
                     "--front", "none", "--plots-dir", str(tmp_path), "--out", str(tmp_path / "e.json"),
                     "--report", str(tmp_path / "r.md"))
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "r.md").read_text()
    assert "## One-to-one" in report and "## ICPA" not in report
    assert "Not in this run (no metrics file): icpa, blocking, weavenet" in report
