"""Ingest and edges one source at a time (issue 11 part 7): same tables as the all-source stages, and the
per-source foreach items fanned out on a local Dask cluster over a 10-source world."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from prefect.testing.utilities import prefect_test_harness

from crossmatch.synth import generate_world, make_config
from flows.dvc import dvc, stage_status
from flows.pipeline import run_pipeline
from tests.conftest import run_stage
from tests.flows.repo_copy import make_repo_copy

SOURCES = ["alpha", "beta", "gamma"]


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.parquet"))}


def _world(tmp: Path, quarantine: bool) -> dict[str, Path]:
    world = generate_world(make_config("tiny", seed=5))
    raw = tmp / "raw"
    (raw / "items").mkdir(parents=True)
    logs = world.logs.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"))
    # exact duplicates of rows of two sources, and (quarantine) bad rows of every kind of owner
    logs = pl.concat([logs, logs.filter(pl.col("source") == "beta").head(3), logs.filter(pl.col("source") == "alpha").slice(5, 2)])
    if quarantine:
        logs = logs.with_columns(
            pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("-1")).otherwise(pl.col("weight").cast(pl.String)).alias("weight"),
            pl.when(pl.int_range(pl.len()) == 40).then(pl.lit("delta")).otherwise(pl.col("source")).alias("source"),
            pl.when(pl.int_range(pl.len()) == 100).then(pl.lit("soon")).otherwise(pl.col("timestamp")).alias("timestamp"),
        )
    logs.write_csv(raw / "logs.csv")
    for s, f in world.items.items():
        f.write_parquet(raw / "items" / f"{s}.parquet")
    world.categories.write_parquet(raw / "categories.parquet")
    world.taxonomy.write_parquet(raw / "taxonomy.parquet")
    params = tmp / "params.yaml"
    params.write_text(f"ingest: {{sources: {SOURCES}, quarantine: {str(quarantine).lower()}, duplicates: drop}}\n"
                      "edges: {window: 9, holdout_fraction: 0.1, valid_fraction: 0.1, min_per_user: 1}\n")
    return {"params": params, "raw": raw}


def _raw_args(p: dict[str, Path]) -> list[str]:
    raw = p["raw"]
    return ["--params", str(p["params"]), "--logs", str(raw / "logs.csv"), "--items", str(raw / "items"),
            "--categories", str(raw / "categories.parquet"), "--taxonomy", str(raw / "taxonomy.parquet")]


def _ok(proc) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("quarantine", [False, True])
def test_per_source_stages_write_the_all_source_tables(tmp_path, quarantine):
    p = _world(tmp_path, quarantine)
    one, many = tmp_path / "all", tmp_path / "per_source"
    _ok(run_stage("ingest", *_raw_args(p), "--out", str(one / "ingested"), "--quarantine-file",
                  str(one / "rejected.parquet"), "--report", str(one / "ingest.json")))
    _ok(run_stage("edges", "--params", str(p["params"]), "--ingested", str(one / "ingested"), "--out", str(one / "edges"),
                  "--stats", str(one / "edges.json")))
    for s in SOURCES:
        _ok(run_stage("ingest", *_raw_args(p), "--source", s, "--out", str(many / "ingested" / s),
                      "--part", str(many / "parts" / "ingest" / s)))
    _ok(run_stage("ingest_report", *_raw_args(p), "--parts", str(many / "parts" / "ingest"), "--out",
                  str(many / "ingested"), "--quarantine-file", str(many / "rejected.parquet"), "--report",
                  str(many / "ingest.json")))
    for s in SOURCES:
        _ok(run_stage("edges", "--params", str(p["params"]), "--source", s, "--ingested", str(many / "ingested"),
                      "--out", str(many / "edges" / s), "--stats", str(many / "parts" / "edges" / f"{s}.json")))
    _ok(run_stage("edges_report", "--params", str(p["params"]), "--parts", str(many / "parts" / "edges"),
                  "--stats", str(many / "edges.json")))

    for sub in ("ingested", "edges"):
        assert _digests(one / sub) == _digests(many / sub), sub
    assert hashlib.md5((one / "rejected.parquet").read_bytes()).digest() == \
        hashlib.md5((many / "rejected.parquet").read_bytes()).digest()
    for name in ("ingest.json", "edges.json"):
        assert json.loads((one / name).read_text()) == json.loads((many / name).read_text()), name
    report = json.loads((one / "ingest.json").read_text())
    assert report["sources"]["beta"]["duplicates_dropped"] >= 3 and report["sources"]["alpha"]["duplicates_dropped"] >= 2
    assert report["quarantined_rows"] == (3 if quarantine else 0)


def test_a_bad_row_of_another_source_fails_every_per_source_item(tmp_path):
    p = _world(tmp_path, quarantine=False)
    lines = (p["raw"] / "logs.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[6].split(",")
    cells[header.index("source")] = "delta"
    lines[6] = ",".join(cells)
    (p["raw"] / "logs.csv").write_text("\n".join(lines) + "\n")
    for s in SOURCES:
        proc = run_stage("ingest", *_raw_args(p), "--source", s, "--out", str(tmp_path / s), "--part", str(tmp_path / "p" / s))
        assert proc.returncode == 2
        assert "unknown source" in proc.stderr and "first rows: 6" in " ".join(proc.stderr.split())
        assert not (tmp_path / s).exists()


TEN = [f"m{i:02d}" for i in range(10)]


@pytest.mark.slow
def test_ten_sources_fan_out_on_a_local_dask_cluster(tmp_path):
    pytest.importorskip("prefect_dask", reason="the [dask] extra is not installed")
    n = len(TEN)
    repo = make_repo_copy(tmp_path / "repo", overrides={
        "generate": {"overrides": {"sources": TEN, "users_per_source": [30] * n, "categorical_features": [2] * n,
                                   "dense_features": [2] * n}},
        "ingest": {"sources": TEN},
    })
    stages = ["generate", "ingest_source", "ingest", "edges_source", "edges"]
    with prefect_test_harness(server_startup_timeout=120):
        state = run_pipeline("default", repo=str(repo), stages=stages, runner="dask", workers=2)
    assert state.is_completed(), state.message
    status = stage_status(repo)
    assert not [k for k in status if k.split("@")[0] in stages], status  # every item recorded in dvc.lock
    report = json.loads((repo / "metrics/ingest.json").read_text())
    edges = json.loads((repo / "metrics/edges.json").read_text())
    assert sorted(report["sources"]) == TEN and sorted(edges["sources"]) == TEN
    for s in TEN:
        assert (repo / "data/ingested" / s / "logs.parquet").exists()
        assert (repo / "data/edges" / s / "item_item.parquet").exists()
    lock = (repo / "dvc.lock").read_text()
    assert all(f"ingest_source@{s}" in lock and f"edges_source@{s}" in lock for s in TEN)
    assert "Running stage" not in dvc(["repro", "edges"], repo).stdout  # nothing left stale
