"""README "Running on your own data", end to end: its four steps as written, with no truth file.

Step 1 (the README's python block, run verbatim) writes two XMarket markets as csv in the documented schema;
step 2 runs the README's `crossmatch init` line; step 3 shortens the ICPA schedule in the generated
params.yaml, as a user may for a first look; step 4 is `dvc repro` of the generated pipeline through `evaluate`.
The README block reads ``../shared/data/xmarket_electronics``: the test puts beside the project copy a slice of
those files (the first 200 users of each market, same format), so the run stays short.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.flows.repo_copy import make_repo_copy

README = Path(__file__).resolve().parents[2] / "README.md"
MARKETS = ("ca", "de")
USERS_PER_MARKET = 200


def walkthrough() -> tuple[str, list[str]]:
    """The README section's python block (step 1) and its `crossmatch init` command (step 2)."""
    section = README.read_text().split("## Running on your own data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the walk-through holds one python block"
    init = re.findall(r"```\n(crossmatch init [^\n]*)\n```", section)
    assert len(init) == 1, "the walk-through holds one `crossmatch init` command"
    return blocks[0], shlex.split(init[0])


def slice_markets(xmarket: Path, dest: Path, users: int) -> None:
    """The first ``users`` users of each market, in XMarket's own format (space-separated, same header)."""
    dest.mkdir(parents=True)
    for market in MARKETS:
        raw = pl.read_csv(xmarket / f"{market}_5core.txt", separator=" ")
        keep = raw.get_column("userId").unique().sort().head(users)
        raw.filter(pl.col("userId").is_in(keep.implode())).write_csv(dest / f"{market}_5core.txt", separator=" ")


def _env(repo: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(repo), PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])


def crossmatch(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=repo, env=_env(repo), capture_output=True,
                          text=True, timeout=120)


def shrink(params_file: Path) -> None:
    """What a user edits for a quick first run: a short ICPA schedule, fewer baselines and blocking methods."""
    p = yaml.safe_load(params_file.read_text())
    p["icpa"].update({"methods": ["icpa", "soo"], "model": {"embedding_dim": 16, "hidden": [32, 16], "neighbours": 3,
                                                            "gamma": 5.0}})
    p["icpa"]["pairs"].update({"walks_per_anchor": 4})
    p["icpa"]["schedule"].update({"phase1_epochs": 10, "phase2_epochs": 5})
    p["icpa"]["align"].update({"swd_projections": 8, "sgwd_projections": 2, "sgwd_pairs": 8, "interp_length": 32})
    p["icpa"]["device"] = "cpu"
    p["blocking"].update({"methods": ["bipoly_s", "bipoly_c"], "runner": "thread", "workers": 1})
    p["blocking"]["ilp"]["methods"] = []
    p["blocking"]["scenario"] = {"enabled": False}
    params_file.write_text(yaml.safe_dump(p, sort_keys=False))


@pytest.fixture(scope="module")
def own_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("own")
    repo = make_repo_copy(base / "repo")
    slice_markets(shared_data / "xmarket_electronics", base / "shared/data/xmarket_electronics", USERS_PER_MARKET)
    step1, step2 = walkthrough()
    cwd = Path.cwd()
    os.chdir(repo)  # the README's paths are relative to the project
    try:
        exec(compile(step1, "README.md:Running on your own data", "exec"), {})  # noqa: S102 - our own README
    finally:
        os.chdir(cwd)
    assert step2[0] == "crossmatch"
    init = crossmatch(repo, *step2[1:])
    assert init.returncode == 0, init.stdout + init.stderr
    shrink(repo / "pipelines/mine/params.yaml")
    proc = subprocess.run(["dvc", "repro", "pipelines/mine/dvc.yaml"], cwd=repo, env=_env(repo),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return {"repo": repo, "init": init.stdout, "repro": proc.stdout + proc.stderr}


def test_init_fills_the_sources_and_names_the_next_command(own_run: dict[str, object]) -> None:
    repo = own_run["repo"]
    assert isinstance(repo, Path)
    out = str(own_run["init"])
    assert "sources ca, de" in out and "dvc repro pipelines/mine/dvc.yaml" in out and "truth: none" in out
    params = yaml.safe_load((repo / "pipelines/mine/params.yaml").read_text())
    assert params["ingest"]["sources"] == params["icpa"]["sources"] == ["ca", "de"]
    assert (params["blocking"]["left"], params["blocking"]["right"]) == ("ca", "de")
    assert (params["match"]["left"], params["match"]["right"]) == ("ca", "de")
    stages = yaml.safe_load((repo / "pipelines/mine/dvc.yaml").read_text())["stages"]
    assert list(stages) == ["ingest", "edges", "train_align", "pareto_finetune", "icpa_eval", "blocking", "match",
                            "evaluate"]  # no synthetic `generate`
    specs = [s.get("do", s) for s in stages.values()]
    data_deps = [d for s in specs for d in s["deps"] if not d.startswith(("crossmatch/", "stages/"))]
    assert not [d for d in data_deps if "truth" in d]  # no truth file is a dependency (code like crossmatch/truth.py is)
    for s in specs:
        args = s["cmd"].split()
        assert all(args[i + 1] == "none" for i, a in enumerate(args) if a == "--truth"), s["cmd"]
        assert "--truth-pairs" not in args and "--truth-categories" not in args
    assert params["blocking"]["rescale"] is False  # one category: every similarity is equal


def test_pipeline_reaches_evaluate_without_truth(own_run: dict[str, object]) -> None:
    repo = own_run["repo"]
    assert isinstance(repo, Path)
    mine = repo / "pipelines/mine"
    report = (mine / "report.md").read_text()
    for section in ("## Data", "## ICPA", "## BiPoly", "## One-to-one product matching", "## How to read"):
        assert section in report, section
    assert "need labelled" in report or "unavailable" in report  # says which figures need truth
    icpa = json.loads((mine / "metrics/icpa.json").read_text())
    for market in MARKETS:
        assert 0 < icpa[f"{market}.icpa.ndcg@10"] <= 1
    assert icpa["alignment.icpa_phase1.hit@10"] is None and icpa["alignment.icpa_phase1.hits_unavailable"]
    match = json.loads((mine / "metrics/match.json").read_text())
    assert match["f1"] is None and "truth" in match["truth_unavailable"]
    pairs = pl.read_parquet(mine / "data/match/pairs.parquet")
    assert pairs.height > 0 and set(pairs.get_column("left_source")) == {"ca"}
    assert pairs.height == match["pairs"]
    headline = json.loads((mine / "metrics/headline.json").read_text())
    assert 0 < headline["icpa.ndcg@10.icpa"] <= 1
    # no truth anywhere: nothing was generated, and no truth folder was written
    assert not (repo / "data").exists()
    code = {"crossmatch", "stages", "tests", ".git"}  # the project's code may name truth (crossmatch/truth.py)
    assert not [p for p in repo.rglob("*") if "truth" in p.name and not code & set(p.relative_to(repo).parts)]
