"""A throw-away copy of the project (code + pipeline files, no data) for end-to-end flow tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COPY = ("crossmatch", "stages", "flows", "dvc.yaml", "params.yaml", ".dvcignore", "pipelines")

# Settings that shrink every stage to test size; keys must exist in params.yaml.
TINY_OVERRIDES: dict[str, dict[str, Any]] = {
    "generate": {"preset": "tiny"},
    "icpa": {"schedule": {"phase1_epochs": 1, "phase2_epochs": 1}},
    "weavenet_train": {"steps": 4, "val_size": 4, "val_every": 4},
    "weavenet_eval": {"instances": 8, "sizes": [20]},
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def make_repo_copy(dest: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """Copy the project into ``dest`` (git + dvc initialised) with tiny-size params."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dvc.lock")
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    for extra in (TINY_OVERRIDES, overrides or {}):
        for stage, values in extra.items():
            if stage not in params:
                raise KeyError(f"params.yaml has no section '{stage}'")
            _merge(params[stage], values)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)
    return dest
