"""Fan-out of a foreach stage over Prefect task runners, recorded by `dvc commit`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect import flow
from prefect.testing.utilities import prefect_test_harness

from flows.dvc import dvc, stage_status
from flows.fanout import fan_out, make_task_runner, stale_item_commands
from flows.server import ensure_tag_limits, gpu_slots
from flows.stages import STAGES

DVC_YAML = """
stages:
  square:
    foreach: [2, 3, 4]
    do:
      cmd: python -c "import pathlib; pathlib.Path('sq_${item}.txt').write_text(str(${item} ** 2))"
      outs:
        - sq_${item}.txt
"""

# Each item records when its command started and ended (wall clock), sleeping 5 s in between. Long enough that
# items still overlap when a task's start waits for the client's retry of an HTTP 503 (~1.9 s each): the test
# harness's SQLite server answers 503 ("database is locked") when the machine is busy.
NAP_YAML = """
stages:
  nap:
    foreach: [a, b]
    do:
      cmd: python -c "import pathlib, time; t = time.time(); time.sleep(5); pathlib.Path('nap_${item}.txt').write_text('%f %f' % (t, time.time()))"
      outs:
        - nap_${item}.txt
"""


def _dvc_repo(path: Path, dvc_yaml: str) -> Path:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=path, check=True, env=env)
    (path / "dvc.yaml").write_text(dvc_yaml)
    return path


@pytest.fixture()
def foreach_repo(tmp_path) -> Path:
    return _dvc_repo(tmp_path, DVC_YAML)


@pytest.fixture()
def nap_repo(tmp_path) -> Path:
    return _dvc_repo(tmp_path, NAP_YAML)


# Each item writes the Prefect API its worker process was given (the item inherits the worker's environment).
API_YAML = """
stages:
  api:
    foreach: [a, b]
    do:
      cmd: python -c "import os, pathlib; pathlib.Path('api_${item}.txt').write_text(os.environ.get('PREFECT_API_URL', 'none'))"
      outs:
        - api_${item}.txt
"""


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


@flow
def _fan(repo: str, runner: str) -> list[str]:
    return fan_out("square", Path(repo), runner=runner, workers=2)


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["thread", "process"])
def test_fan_out_runs_stale_items_and_dvc_records_them(foreach_repo, runner, harness):
    assert [i.stage for i in stale_item_commands("square", foreach_repo)] == ["square@2", "square@3", "square@4"]
    ran = _fan(str(foreach_repo), runner)
    assert sorted(ran) == ["square@2", "square@3", "square@4"]
    assert (foreach_repo / "sq_3.txt").read_text() == "9"
    assert stage_status(foreach_repo) == {}  # dvc.lock now records every item
    assert _fan(str(foreach_repo), runner) == []  # nothing stale: nothing runs
    second = dvc(["repro"], foreach_repo).stdout
    assert "Running stage" not in second


def test_unknown_runner_and_missing_extras():
    with pytest.raises(ValueError, match="unknown runner 'spark'"):
        make_task_runner("spark")
    try:
        import prefect_ray  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match=r"\.\[ray\]"):
            make_task_runner("ray")


@flow
def _fan_tagged(repo: str, tags: set[str]) -> list[str]:
    return fan_out("nap", Path(repo), runner="thread", workers=2, force=True, tags=tags)


def _overlap(repo: Path, tags: set[str]) -> float:
    """Run both items with ``tags``; the seconds during which both ran (negative: the gap between them)."""
    assert sorted(_fan_tagged(str(repo), tags)) == ["nap@a", "nap@b"]
    (a0, a1), (b0, b1) = (map(float, (repo / f"nap_{i}.txt").read_text().split()) for i in "ab")
    return min(a1, b1) - max(a0, b0)


@pytest.mark.slow
def test_fan_out_items_run_side_by_side_under_the_served_limits(nap_repo, harness):
    # The limits `crossmatch serve` creates on its server; the items carry their stage's tags.
    limits = ensure_tag_limits()
    assert limits == {"gpu": gpu_slots(), "dvc": 1}
    tags = {s.name: s.tags for s in STAGES}
    assert tags["edges_source"] == {"cpu", "dvc"} and tags["pareto_finetune"] == {"gpu", "dvc"}
    # cpu items (per-source ingest/edges): side by side, although their stage's tag `dvc` has limit 1
    assert _overlap(nap_repo, tags["edges_source"]) > 0
    # gpu items (per-target fine-tunes): side by side when the machine has two gpu slots (no CUDA: one per
    # core), one at a time on a single GPU
    gpu_overlap = _overlap(nap_repo, tags["pareto_finetune"])
    assert gpu_overlap > 0 if limits["gpu"] >= 2 else gpu_overlap <= 0
    assert stage_status(nap_repo) == {}  # the `dvc`-tagged commit task recorded both items
    # Control: the limits are enforced here, so the overlap above is not a harness that ignores them.
    ensure_tag_limits({"gpu": 1})
    try:
        assert _overlap(nap_repo, {"gpu"}) <= 0
    finally:
        ensure_tag_limits()


@flow
def _fan_dask_api(repo: str) -> tuple[list[str], str | None]:
    from flows.fanout import flow_api_url

    return fan_out("api", Path(repo), runner="dask", workers=2), flow_api_url()


@pytest.mark.slow
def test_dask_workers_use_the_flows_api(tmp_path, harness):
    """Each worker process of the local Dask cluster is given the flow's API (without it, a worker whose
    environment has no PREFECT_API_URL starts a temporary API of its own), and the items' task runs are
    recorded there."""
    pytest.importorskip("prefect_dask", reason="the [dask] extra is not installed")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    repo = _dvc_repo(tmp_path, API_YAML)
    ran, api = _fan_dask_api(str(repo))
    assert sorted(ran) == ["api@a", "api@b"]
    assert api and api.startswith("http://127.0.0.1:")
    assert {(repo / f"api_{i}.txt").read_text() for i in "ab"} == {api}
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=ran)))
    assert {r.name: r.state_type.value for r in runs if r.state_type} == {s: "COMPLETED" for s in ran}
    assert stage_status(repo) == {}
