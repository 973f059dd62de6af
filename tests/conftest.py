"""Shared fixtures: environment, the tiny synthetic world and its stage outputs, real data."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Offline, single-threaded and telemetry-free for every test and every child process.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="crossmatch-prefect-"))


def run_stage(module: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stages.<module> <args>`` from the repository root and capture its output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", f"stages.{module}", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@dataclass(frozen=True)
class TinyData:
    """Stage outputs of the ``tiny`` preset laid out like the default pipeline's ``data/``."""

    root: Path
    params: Path
    raw: Path
    truth: Path
    ingested: Path
    edges: Path
    metrics: Path


TINY_PARAMS = """
generate: {preset: tiny, seed: 0}
ingest: {sources: [alpha, beta, gamma], quarantine: false, duplicates: drop}
edges: {window: 9, holdout_fraction: 0.1, valid_fraction: 0.1, min_per_user: 1}
"""


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> TinyData:
    """generate → ingest → edges on the tiny preset, run once per session through the stage CLIs."""
    base = tmp_path_factory.mktemp("tiny")
    params = base / "params.yaml"
    params.write_text(TINY_PARAMS)
    d = TinyData(
        root=base,
        params=params,
        raw=base / "data/raw",
        truth=base / "data/truth",
        ingested=base / "data/ingested",
        edges=base / "data/edges",
        metrics=base / "metrics",
    )
    steps = [
        ("generate", "--out", str(d.raw), "--truth", str(d.truth), "--metrics", str(d.metrics / "generate.json")),
        (
            "ingest",
            "--logs", str(d.raw / "logs"), "--items", str(d.raw / "items"),
            "--categories", str(d.raw / "categories.parquet"), "--taxonomy", str(d.raw / "taxonomy.parquet"),
            "--out", str(d.ingested), "--quarantine-file", str(base / "data/quarantine/rejected.parquet"),
            "--report", str(d.metrics / "ingest.json"),
        ),
        ("edges", "--ingested", str(d.ingested), "--out", str(d.edges), "--stats", str(d.metrics / "edges.json")),
    ]
    for module, *args in steps:
        proc = run_stage(module, "--params", str(params), *args)
        assert proc.returncode == 0, f"stage {module} failed:\n{proc.stdout}\n{proc.stderr}"
    return d


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real datasets); tests using it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (a fresh clone has no ../shared/data)")
    return SHARED_DATA
