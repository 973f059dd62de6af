"""DVC does the bookkeeping: a second `dvc repro` is a no-op and `dvc exp run -S` works."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.dvc import dvc
from tests.flows.repo_copy import make_repo_copy

GIT = ["git", "-c", "user.email=ci@crossmatch", "-c", "user.name=ci"]


@pytest.mark.slow
def test_repro_twice_then_experiment(tmp_path):
    repo = make_repo_copy(tmp_path / "repo")
    first = dvc(["repro", "edges"], repo)  # generate → ingest → edges
    assert "Running stage 'edges'" in first.stdout
    second = dvc(["repro", "edges"], repo)
    assert "Running stage" not in second.stdout
    assert "didn't change, skipping" in second.stdout
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "baseline"], cwd=repo, check=True)
    baseline = json.loads((repo / "metrics/edges.json").read_text())
    exp = dvc(["exp", "run", "-S", "edges.window=5", "dvc.yaml:edges"], repo)
    assert "Ran experiment" in exp.stdout + exp.stderr
    changed = json.loads((repo / "metrics/edges.json").read_text())
    assert changed["window"] == 5
    assert changed["sources"]["alpha"]["item_item_weight"] < baseline["sources"]["alpha"]["item_item_weight"]
    shown = json.loads(dvc(["exp", "show", "--json"], repo).stdout)
    assert "edges.window" in json.dumps(shown) or '"window": 5' in json.dumps(shown)
    # the comparison a person reads: the changed param and the experiments side by side, nothing else
    res = CliRunner().invoke(app, ["exps", "--repo", str(repo)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    rows = [line for line in res.output.splitlines() if "edges.window" in line]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].split("│")[2:-1]]
    assert cells == ["5", "9", "5"]  # workspace, the baseline commit, the experiment
    assert "metrics/headline.json" in res.output and "edges.holdout_fraction" not in res.output
    assert max(len(line) for line in res.output.splitlines()) <= 120
