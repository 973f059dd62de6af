"""A re-run with the same inputs changes no git-tracked file (issue 14, part 3).

Wall times differ on every run, so stages keep them out of the git-tracked metrics: ``stages._common.write_json``
moves every ``seconds`` / ``*_seconds`` key to the git-ignored ``timings/<metrics file>``. Here, in a copy of
the project at tiny size, the cheap deterministic stages run once through ``dvc repro``, the result is
committed, and each is then forced to run again: ``git status`` must stay clean (metrics, report, plots and
``dvc.lock`` byte for byte), while the timings were rewritten beside it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from flows.dvc import dvc
from tests.flows.repo_copy import ROOT, make_repo_copy

GIT = ["git", "-c", "user.email=ci@crossmatch", "-c", "user.name=ci"]
# inputs of `evaluate` from stages this test does not run (ICPA, WeaveNet, match): the committed files
UPSTREAM = ("metrics/icpa.json", "metrics/weavenet_eval.json", "metrics/match.json", "plots/icpa_front.csv")
RERUN = ("generate", "ingest", "edges", "blocking", "evaluate")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_forced_rerun_changes_no_tracked_file(tmp_path: Path) -> None:
    repo = make_repo_copy(tmp_path / "repo")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")  # timings/ (and the data folders) stay out of git
    for rel in UPSTREAM:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, repo / rel)
    dvc(["repro", "edges", "blocking"], repo)  # generate -> ingest_source@* -> ingest -> edges_source@* -> edges; blocking
    dvc(["repro", "-s", "evaluate"], repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first run")
    tracked = _git(repo, "ls-files").split()
    for rel in ("dvc.lock", "report.md", "metrics/headline.json", "metrics/blocking.json", "metrics/generate.json",
                "metrics/edges.json", "plots/blocking_tradeoff.csv"):
        assert rel in tracked, rel
    assert not [p for p in tracked if p.startswith("timings/")]
    first = json.loads((repo / "timings/blocking.json").read_text())
    assert first["seconds"]["total"] > 0
    assert "seconds" not in json.loads((repo / "metrics/blocking.json").read_text())

    for stage in RERUN:
        out = dvc(["repro", "-f", "-s", stage], repo)
        assert f"Running stage '{stage}'" in out.stdout, out.stdout  # forced: it really ran again
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    again = json.loads((repo / "timings/blocking.json").read_text())
    assert again["seconds"] != first["seconds"]  # the timings were rewritten, outside git
    assert json.loads(dvc(["status", "--json", "edges", "blocking", "evaluate"], repo).stdout or "{}") == {}
