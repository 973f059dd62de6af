"""The Prefect flow in-process (ephemeral API): stops on failure, rejects unknown stages, skips the real
pipeline without its data. A completed whole run (stages, artifacts, DVC up to date afterwards) is checked on
the one whole-pipeline run of tests/flows/test_watchable_run.py (`crossmatch run` drives the same flow)."""

from __future__ import annotations

import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.pipeline import run_pipeline
from tests.flows.repo_copy import make_repo_copy


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


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
