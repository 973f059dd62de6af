"""Benchmarks that read the project's data or params end bad input like the stages do: one short line, exit 2,
no traceback (they run through ``stages._common.run``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("module", "args", "says"), [
    ("bench_icpa_retrieval", ["compare", "--root", "{tmp}/none"], "run the ingest stage first"),
    ("er_label_free", ["--data", "{tmp}/none"], "benchmark folder not found"),
    ("icpa_tune", ["--params", "{tmp}/none.yaml"], "params file not found"),
    ("bipoly_union_pilot", ["--root", "{tmp}/none"], "ingest_walmart_amazon first"),
])
def test_a_missing_input_is_one_line_and_exit_2(tmp_path: Path, module: str, args: list[str], says: str) -> None:
    cmd = [sys.executable, "-m", f"benchmarks.{module}", *(a.format(tmp=tmp_path) for a in args)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert f"{module}: error:" in out and says in out, out
    assert "Traceback" not in out, out
