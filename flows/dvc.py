"""Shelling out to DVC from the repository root, one call at a time.

DVC's Python API follows the process's working directory and two ``dvc repro`` runs in one
repository fail on the lock, so every call goes through :func:`dvc` with ``cwd`` set and the
project's virtual environment first on ``PATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

OFFLINE_ENV = {
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


class DvcError(RuntimeError):
    """A DVC command exited non-zero; the message carries the tail of its output."""


def find_repo(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding a ``dvc.yaml``."""
    here = Path(start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "dvc.yaml").exists():
            return p
    raise FileNotFoundError(f"no dvc.yaml at or above {here}")


def dvc_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: env.get(k, v) for k, v in OFFLINE_ENV.items()})
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


def dvc(args: list[str], repo: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``dvc <args>`` in ``repo``; raise :class:`DvcError` with the output tail on failure."""
    exe = Path(sys.executable).parent / "dvc"
    cmd = [str(exe) if exe.exists() else "dvc", *args]
    proc = subprocess.run(cmd, cwd=repo, env=dvc_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise DvcError(f"`dvc {' '.join(args)}` failed with exit code {proc.returncode}:\n{tail}")
    return proc


def stage_status(repo: Path) -> dict[str, list[Any]]:
    """``dvc status --json``: stages that are not up to date, with what changed."""
    proc = dvc(["status", "--json"], repo)
    out = proc.stdout.strip()
    return json.loads(out) if out else {}
