"""The committed dvc.lock files describe the committed code and params: no stage is out of date by a code or
params change that nobody re-ran (found: a README inside crossmatch/twosided edited after the last run left
weavenet_eval and match stale, so `make demo` re-ran them on every fresh clone)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# deps that are code, read by path prefix; data deps are absent in a clone and reported deleted, which is expected
CODE = ("crossmatch/", "stages/", "flows/", "pipelines/", "params.yaml")


def _tracked_copy(dest: Path) -> Path:
    """The tracked files of the working tree (so uncommitted edits count) in ``dest/main``, ``../shared`` beside."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    main = dest / "main"
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (main / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, main / rel)
    subprocess.run(["git", "init", "-q"], cwd=main, check=True)  # DVC refuses a folder outside a git repository
    shared = ROOT.parent / "shared"
    if shared.exists():
        (dest / "shared").symlink_to(shared.resolve())
    return main


def _stale(status: dict[str, list[object]]) -> dict[str, list[str]]:
    """Per stage, its code deps reported modified and its params reported changed (DVC lists a params file among
    the changed deps, with a mapping of its keys)."""
    out: dict[str, list[str]] = {}
    for stage, entries in status.items():
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            for path, what in entry.get("changed deps", {}).items():
                if isinstance(what, dict):  # a params file: {key: "modified" | "new" | "deleted"}
                    out.setdefault(stage, []).append(f"{path}: {what}")
                elif what == "modified" and path.startswith(CODE):
                    out.setdefault(stage, []).append(f"{path} modified")
    return out


def test_no_stage_is_stale_by_code_or_params(tmp_path: Path) -> None:
    main = _tracked_copy(tmp_path)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    res = subprocess.run(["dvc", "status", "--json", "dvc.yaml", "pipelines/real/dvc.yaml"], cwd=main, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    stale = _stale(json.loads(res.stdout or "{}"))
    assert not stale, ("stages out of date with the committed code or params (re-run them and commit dvc.lock): "
                       + json.dumps(stale, indent=1))


def test_the_check_sees_a_code_edit_and_a_param_change(tmp_path: Path) -> None:
    main = _tracked_copy(tmp_path)
    params = main / "params.yaml"
    text = params.read_text()
    assert "\n  window: " in text
    params.write_text(text.replace("\n  window: ", "\n  window: 1", 1))  # 9 -> 19: a changed value
    with (main / "stages" / "edges.py").open("a") as f:
        f.write("\n# an edit nobody re-ran\n")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    res = subprocess.run(["dvc", "status", "--json", "dvc.yaml"], cwd=main, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    stale = _stale(json.loads(res.stdout))
    items = [v for k, v in stale.items() if k.startswith("edges_source@")]  # one per source
    assert len(items) == 3 and all("stages/edges.py modified" in v for v in items)
    assert all(any("params.yaml" in s and "edges.window" in s for s in v) for v in items)
