"""Nothing lost on a rejected run under plain ``dvc repro`` (issue 15, part 2).

DVC deletes a stage's outputs before it runs the stage's command unless the output is ``persist: true``;
every output in both pipelines is, and every stage replaces its outputs atomically only once it
succeeds. So a stage that rejects its params (exit 2) under ``dvc repro`` leaves the previous outputs —
the cached data folders and the git-tracked metrics — as they were.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.dvc import DvcError, dvc
from tests.flows.repo_copy import ROOT, make_repo_copy

GIT = ["git", "-c", "user.email=ci@crossmatch", "-c", "user.name=ci"]
# what the tests below break: each is an output of a stage that reads the broken param
GENERATE_OUTS = ("data/raw", "data/truth", "metrics/generate.json")
EDGES_OUTS = ("data/edges", "data/parts/edges", "metrics/edges.json")


def _outputs(entries: list[Any] | None) -> list[tuple[str, dict[str, Any]]]:
    return [next(iter(e.items())) if isinstance(e, dict) else (str(e), {}) for e in entries or []]


@pytest.mark.parametrize("dvcfile", ["dvc.yaml", "pipelines/real/dvc.yaml"])
def test_every_stage_output_persists(dvcfile: str) -> None:
    """A stage output without ``persist: true`` would be deleted by ``dvc repro`` before its stage runs."""
    stages = yaml.safe_load((ROOT / dvcfile).read_text())["stages"]
    missing = [
        f"{name}: {path}"
        for name, stage in stages.items()
        for key in ("outs", "metrics", "plots")
        for path, flags in _outputs(stage.get("do", stage).get(key))
        if not (flags or {}).get("persist")
    ]
    assert not missing, f"outputs without `persist: true` in {dvcfile}: {missing}"


def _snapshot(repo: Path, paths: tuple[str, ...]) -> dict[str, str]:
    """sha256 of every file under ``paths`` (files or folders), by path relative to ``repo``."""
    files: list[Path] = []
    for p in paths:
        target = repo / p
        files += sorted(f for f in target.rglob("*") if f.is_file()) if target.is_dir() else [target]
    return {str(f.relative_to(repo)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists()}


def _set_param(repo: Path, section: str, key: str, value: Any) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _rejected_repro(repo: Path, target: str) -> DvcError:
    with pytest.raises(DvcError) as info:
        dvc(["repro", target], repo)
    assert info.value.bad_input, f"the stage should have rejected its params with exit 2:\n{info.value}"
    return info.value


def _git_changes(repo: Path, *paths: str) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.slow
def test_rejected_stage_keeps_previous_outputs_under_dvc_repro(tmp_path: Path) -> None:
    repo = make_repo_copy(tmp_path / "repo")
    dvc(["repro", "edges"], repo)  # generate -> ingest_source@* -> edges_source@* -> edges
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "good outputs"], cwd=repo, check=True)
    assert not _git_changes(repo, "metrics")
    assert "metrics/generate.json" in subprocess.run(["git", "ls-files", "metrics"], cwd=repo, check=True,
                                                     capture_output=True, text=True).stdout
    good = _snapshot(repo, GENERATE_OUTS + EDGES_OUTS)
    assert {"metrics/generate.json", "metrics/edges.json"} <= set(good)
    assert any(p.startswith("data/raw/") for p in good) and any(p.startswith("data/edges/") for p in good)
    params = (repo / "params.yaml").read_text()

    # 1. the first stage of the pipeline rejects its params: its data folders and metrics stay
    _set_param(repo, "generate", "seed", -1)
    err = _rejected_repro(repo, "edges")
    assert "generate.seed" in str(err)
    assert _snapshot(repo, GENERATE_OUTS + EDGES_OUTS) == good
    assert not _git_changes(repo, "metrics")

    # 2. the case: `edges.window: -1` used to delete the source's data/edges/<source> folder
    (repo / "params.yaml").write_text(params)
    _set_param(repo, "edges", "window", -1)
    err = _rejected_repro(repo, "edges")
    assert "edges.window" in str(err)
    assert _snapshot(repo, GENERATE_OUTS + EDGES_OUTS) == good
    assert not _git_changes(repo, "metrics")
    changed = json.loads(dvc(["status", "--json", "--with-deps", "edges"], repo).stdout)
    assert changed and all(name.startswith("edges_source@") for name in changed)  # DVC still sees the change

    # 3. the param fixed: `dvc repro` succeeds and every stage up to edges is up to date, outputs unchanged
    (repo / "params.yaml").write_text(params)
    dvc(["repro", "edges"], repo)
    assert json.loads(dvc(["status", "--json", "--with-deps", "edges"], repo).stdout or "{}") == {}
    assert _snapshot(repo, GENERATE_OUTS + EDGES_OUTS) == good
    assert not _git_changes(repo, "metrics", "dvc.lock")
