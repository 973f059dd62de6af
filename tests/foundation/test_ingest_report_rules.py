"""The per-source ingest and its merge stage (`ingest_report`) read the shared category table by the same rules:
a rule the user relaxed (`ingest.allow_control_chars`) holds in both, and a default rule rejects in both."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from crossmatch.synth import World
from tests.conftest import run_stage
from tests.foundation.test_hostile_inputs import make_layout, world  # noqa: F401  (world is a fixture)

SOURCES = ("alpha", "beta", "gamma")


def _per_source_then_report(lay, tmp_path: Path) -> tuple[list[int], int, str]:  # type: ignore[no-untyped-def]
    codes = []
    for s in SOURCES:
        proc = run_stage("ingest", *lay.args(), "--source", s, "--out", str(tmp_path / "ingested" / s),
                         "--part", str(tmp_path / "parts" / s), cwd=tmp_path)
        codes.append(proc.returncode)
    rep = run_stage("ingest_report", *lay.args(), "--parts", str(tmp_path / "parts"), cwd=tmp_path)
    return codes, rep.returncode, rep.stderr + rep.stdout


@pytest.mark.parametrize("allowed", [True, False])
def test_relaxed_rule_holds_in_the_merge_stage(allowed: bool, world: World, tmp_path: Path) -> None:  # noqa: F811
    cats = pl.concat([world.categories, pl.DataFrame({"category": ["spare\tparts"]})])
    params = f"ingest: {{sources: [alpha, beta, gamma], allow_control_chars: {str(allowed).lower()}}}\n"
    lay = make_layout(tmp_path, world, "parquet", categories=cats, params=params)
    codes, report_code, out = _per_source_then_report(lay, tmp_path)
    if allowed:
        assert codes == [0, 0, 0] and report_code == 0, out
        names = pl.read_parquet(lay.out / "categories.parquet").get_column("category").to_list()
        assert "spare\tparts" in names
    else:
        assert codes == [2, 2, 2] and report_code == 2, out
        assert "column 'category'" in out and "Traceback" not in out
