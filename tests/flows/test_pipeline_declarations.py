"""What ``dvc.yaml`` declares (issue 14, part 3): every plot once, every input inside the project."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _paths(entries: list[Any] | None) -> list[str]:
    """The paths of a ``deps`` / ``outs`` / ``plots`` list (entries are a path or ``{path: flags}``)."""
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or []]


def _stages() -> dict[str, dict[str, Any]]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: s.get("do", s) for name, s in stages.items()}


def test_every_plot_is_declared_once() -> None:
    """A file that is both a stage-level plot and a top-level plot is drawn twice by ``dvc plots show``."""
    top = [next(iter(p)) if isinstance(p, dict) else p for p in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]]
    assert len(top) == len(set(top))
    in_stages = [p for s in _stages().values() for p in _paths(s.get("plots"))]
    assert not set(top) & set(in_stages), "declare a plot at the top level or in its stage, not both"
    outs = {p for s in _stages().values() for p in _paths(s.get("outs"))}
    # each plotted file has a producer; a plotted folder (the per-epoch ICPA curves) is the parent of outputs
    produced = outs | set(in_stages)
    for plot in (p for p in top if p.startswith("plots/")):
        assert plot in produced or any(o.startswith(plot.rstrip("/") + "/") for o in produced), plot


def test_default_pipeline_reads_nothing_outside_the_project() -> None:
    for name, stage in _stages().items():
        assert "../" not in str(stage["cmd"]), f"{name}: its command reads outside the project"
        assert not [d for d in _paths(stage.get("deps")) if d.startswith("../")], name


def test_dvc_plots_output_is_ignored() -> None:
    proc = subprocess.run(["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=ROOT)
    assert proc.returncode == 0, "dvc plots show writes dvc_plots/: it must be in .gitignore"
