"""The `crossmatch` CLI and stage-level behaviour: params errors, generate layouts, stage listing."""

from __future__ import annotations

import json

import polars as pl
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import run_stage

runner = CliRunner()


def test_cli_generate_writes_a_world(tmp_path):
    out, truth = tmp_path / "raw", tmp_path / "truth"
    res = runner.invoke(app, ["generate", "--preset", "tiny", "--seed", "2", "--out", str(out), "--truth", str(truth),
                              "--format", "csv", "--layout", "per_source"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["alpha.csv", "beta.csv", "gamma.csv"]
    assert "source" not in pl.read_csv(out / "logs" / "alpha.csv").columns
    assert (truth / "product_matches.parquet").exists()


def test_cli_generate_bad_preset_is_a_clean_error(tmp_path):
    res = runner.invoke(app, ["generate", "--preset", "galactic", "--out", str(tmp_path / "r"), "--truth", str(tmp_path / "t")])
    assert res.exit_code == 2
    assert "unknown preset 'galactic'" in res.output
    assert not (tmp_path / "r").exists()


def test_cli_stages_lists_every_stage_in_order(tiny_data):
    res = runner.invoke(app, ["stages", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    names = [r["stage"] for r in rows]
    assert names[:5] == ["generate", "ingest_source", "ingest", "edges_source", "edges"]
    assert all({"dvc"} <= set(r["tags"]) for r in rows)


def test_unknown_param_key_fails_before_any_work(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("edges: {window: 9, windw: 4}\n")
    proc = run_stage("edges", "--params", str(params), "--ingested", str(tmp_path), "--out", str(tmp_path / "e"),
                     "--stats", str(tmp_path / "s.json"))
    assert proc.returncode == 2
    assert "unknown key(s) ['windw'] under 'edges'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "e").exists()


def test_edges_without_ingested_data_says_what_to_do(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("edges: {window: 9}\n")
    proc = run_stage("edges", "--params", str(params), "--ingested", str(tmp_path / "none"), "--out", str(tmp_path / "e"),
                     "--stats", str(tmp_path / "s.json"))
    assert proc.returncode == 2
    assert "run the ingest stage first" in proc.stderr


def test_generate_and_ingest_reports(tiny_data):
    gen = json.loads((tiny_data.metrics / "generate.json").read_text())
    ing = json.loads((tiny_data.metrics / "ingest.json").read_text())
    assert gen["preset"] == "tiny"
    for source, s in ing["sources"].items():
        assert s["rows_in"] == gen["sources"][source]["events"]
        assert s["rows_out"] + s["duplicates_dropped"] == s["rows_in"]
    edges = json.loads((tiny_data.metrics / "edges.json").read_text())
    for source, s in edges["sources"].items():
        assert s["events_train"] + s["events_valid"] + s["events_heldout"] == ing["sources"][source]["rows_out"]
