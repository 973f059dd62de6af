"""The Prefect flow in-process (ephemeral API): completes, writes artifacts, stops on failure."""

from __future__ import annotations

import json

import pytest
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

from flows.dvc import dvc
from flows.pipeline import pipeline, run_pipeline
from flows.stages import PIPELINES
from tests.flows.repo_copy import make_repo_copy


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def _artifact(key: str):
    with get_client(sync_client=True) as client:
        return client.read_latest_artifacts() and next(
            (a for a in client.read_latest_artifacts() if a.key == key), None
        )


@pytest.mark.slow
def test_flow_runs_every_stage_and_publishes_metrics(tmp_path, harness):
    repo = make_repo_copy(tmp_path / "repo")
    result = pipeline(repo=str(repo))
    assert result["stages"] == [s.name for s in PIPELINES["default"].stages]
    assert (repo / "data/edges/alpha/item_item.parquet").exists()
    assert (repo / "report.md").read_text().startswith("# crossmatch report")
    assert (repo / "dvc.lock").exists()
    table = _artifact("crossmatch-default-metrics")
    assert table is not None and table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    shown = {r["metric"]: r["value"] for r in rows}
    headline = json.loads((repo / "metrics/headline.json").read_text())
    assert shown["match.f1"] == pytest.approx(headline["match.f1"])
    assert shown["blocking.selected.tradeoff"] == pytest.approx(headline["blocking.selected.tradeoff"])
    assert {r["file"] for r in rows} == {"headline"}
    # DVC owns the cache: a second run finds everything up to date.
    status = dvc(["status", "--json", "dvc.yaml"], repo).stdout.strip()
    assert status in ("{}", "")


@pytest.mark.slow
def test_failing_stage_stops_the_flow(tmp_path, harness):
    repo = make_repo_copy(tmp_path / "repo", overrides={"ingest": {"sources": ["alpha", "beta", "omega"]}})
    state = run_pipeline("default", repo=str(repo))
    assert state.is_failed()
    assert "ingest" in str(state.message) or "ingest" in repr(state)
    with pytest.raises(Exception) as info:
        state.result()
    assert "unknown source (known sources: ['alpha', 'beta', 'omega'])" in str(info.value)
    assert getattr(info.value, "bad_input", False)  # exit 2: not retried
    assert (repo / "data/raw").exists()  # generate ran
    # ingest failed and wrote nothing (the per-source items' atomic writes may leave the empty parent folder)
    ingested = repo / "data/ingested"
    assert not ingested.exists() or not any(ingested.rglob("*"))
    assert not (repo / "data/edges").exists()  # edges never ran


def test_unknown_stage_is_rejected(tmp_path, harness):
    repo = make_repo_copy(tmp_path / "repo")
    state = run_pipeline("default", repo=str(repo), stages=["generate", "nope"])
    assert state.is_failed()
    with pytest.raises(ValueError, match="unknown stage"):
        state.result()


def test_retry_condition_skips_bad_input_only():
    from prefect.states import Failed

    from flows.dvc import DvcError
    from flows.pipeline import retry_unless_bad_input

    assert not retry_unless_bad_input(None, None, Failed(data=DvcError("bad", stage_exit=2)))
    assert retry_unless_bad_input(None, None, Failed(data=DvcError("disk", stage_exit=1)))
    assert retry_unless_bad_input(None, None, Failed(data=OSError("network share gone")))


def test_real_pipeline_is_skipped_with_a_message_without_shared_data(tmp_path, harness):
    repo = make_repo_copy(tmp_path / "repo")  # tmp_path has no shared/data beside the repo
    assert not (tmp_path / "shared" / "data").exists()
    state = run_pipeline("real", repo=str(repo))
    assert state.is_completed()
    out = state.result()
    assert out["stages"] == [] and "is absent" in out["skipped"] and "real" in out["skipped"]
    assert not (repo / "data/real").exists()
