"""`crossmatch run --pipeline <folder>` / `crossmatch stages --pipeline <folder>`: a pipeline folder that
`crossmatch init` wrote runs through the same flow as the default one (issue 14, item 5).

No pipeline runs here: the spec is read from the folder's dvc.yaml, and the CLI stops at its checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.pipeline import _slug
from flows.stages import PIPELINES, UnknownPipeline, resolve_pipeline

EXE = Path(sys.executable).parent / "crossmatch"

MINE = """\
stages:
  ingest_source:
    foreach: [a, b]
    do:
      cmd: echo ingest ${item}
  ingest: {cmd: echo ingest}
  train_align: {cmd: echo train}
  pareto_finetune:
    foreach: [a, b]
    do:
      cmd: echo finetune ${item}
  my_extra_stage: {cmd: echo extra}
  evaluate: {cmd: echo evaluate}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    (tmp_path / "pipelines" / "mine").mkdir(parents=True)
    (tmp_path / "pipelines" / "mine" / "dvc.yaml").write_text(MINE)
    return tmp_path


def test_named_pipelines_resolve_to_the_registry(repo: Path) -> None:
    assert resolve_pipeline("default", repo) is PIPELINES["default"]
    assert resolve_pipeline("real", repo).report == "reports/real.md"


@pytest.mark.parametrize("name", ["pipelines/mine", "pipelines/mine/", "pipelines/mine/dvc.yaml"])
def test_a_folder_gives_its_stages_in_file_order(repo: Path, name: str) -> None:
    spec = resolve_pipeline(name, repo)
    assert [s.name for s in spec.stages] == [
        "ingest_source", "ingest", "train_align", "pareto_finetune", "my_extra_stage", "evaluate"]
    by = {s.name: s for s in spec.stages}
    # foreach stages fan out; known stages keep the default pipeline's tags and retries
    assert by["ingest_source"].fanout and by["pareto_finetune"].fanout and not by["ingest"].fanout
    assert by["train_align"].tags == {"gpu", "dvc"} and by["ingest"].io
    assert by["my_extra_stage"].tags == {"cpu", "dvc"}
    assert spec.dvcfile == "pipelines/mine/dvc.yaml"
    assert spec.target("evaluate") == "pipelines/mine/dvc.yaml:evaluate"
    assert (spec.metrics_dir, spec.report) == ("pipelines/mine/metrics", "pipelines/mine/report.md")
    assert _slug(spec.name) == "pipelines-mine"


def test_unknown_and_outside_pipelines_are_refused(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(UnknownPipeline, match="unknown pipeline 'nope'.*crossmatch init"):
        resolve_pipeline("nope", repo)
    other = tmp_path_factory.mktemp("other")
    (other / "dvc.yaml").write_text(MINE)
    with pytest.raises(UnknownPipeline, match="outside the project"):
        resolve_pipeline(str(other), repo)
    (repo / "pipelines" / "empty").mkdir()
    (repo / "pipelines" / "empty" / "dvc.yaml").write_text("stages: {}\n")
    with pytest.raises(UnknownPipeline, match="no stages"):
        resolve_pipeline("pipelines/empty", repo)
    (repo / "pipelines" / "broken").mkdir()
    (repo / "pipelines" / "broken" / "dvc.yaml").write_text("stages: [\n")
    with pytest.raises(UnknownPipeline, match="not valid YAML"):
        resolve_pipeline("pipelines/broken", repo)


@pytest.mark.parametrize("command", [["run"], ["stages"]])
def test_cli_names_what_it_accepts(repo: Path, command: list[str]) -> None:
    env = dict(os.environ, COLUMNS="300")
    proc = subprocess.run([str(EXE), *command, "--pipeline", "pipelines/nope"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert "unknown pipeline 'pipelines/nope'" in out and "crossmatch init" in out
