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

DVC_YAML = """
stages:
  square:
    foreach: [2, 3, 4]
    do:
      cmd: python -c "import pathlib; pathlib.Path('sq_${item}.txt').write_text(str(${item} ** 2))"
      outs:
        - sq_${item}.txt
"""


@pytest.fixture()
def foreach_repo(tmp_path) -> Path:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    return tmp_path


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


@pytest.mark.slow
def test_fan_out_on_a_local_dask_cluster(foreach_repo, harness):
    pytest.importorskip("prefect_dask", reason="the [dask] extra is not installed")
    ran = _fan(str(foreach_repo), "dask")
    assert sorted(ran) == ["square@2", "square@3", "square@4"]
    assert stage_status(foreach_repo) == {}
