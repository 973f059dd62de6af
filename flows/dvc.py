"""Shelling out to DVC from the repository root, one call at a time.

DVC's Python API follows the process's working directory and two ``dvc repro`` runs in one
repository fail on the lock, so every call goes through :func:`dvc` with ``cwd`` set and the
project's virtual environment first on ``PATH``.
"""

from __future__ import annotations

import json
import os
import re
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


BAD_INPUT_EXIT = 2  # what every stage exits with for bad input or bad params (stages._common.run)
_STAGE_EXIT = re.compile(r"exited with (-?\d+)")


class DvcError(RuntimeError):
    """A DVC command exited non-zero; the message carries the tail of its output.

    ``stage_exit`` is the exit code of the stage command DVC ran, when DVC reports one.
    """

    def __init__(self, message: str, stage_exit: int | None = None) -> None:
        super().__init__(message)
        self.stage_exit = stage_exit

    @property
    def bad_input(self) -> bool:
        """True when the stage itself rejected its input or params: retrying cannot help."""
        return self.stage_exit == BAD_INPUT_EXIT


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
        out = (proc.stdout.strip() + "\n" + proc.stderr.strip()).strip()
        tail = "\n".join(out.splitlines()[-25:])
        codes = _STAGE_EXIT.findall(proc.stderr)
        raise DvcError(
            f"`dvc {' '.join(args)}` failed with exit code {proc.returncode}:\n{tail}",
            stage_exit=int(codes[-1]) if codes else None,
        )
    return proc


def stage_status(repo: Path, dvcfile: str = "dvc.yaml") -> dict[str, list[Any]]:
    """``dvc status --json <dvcfile>``: stages that are not up to date, with what changed."""
    proc = dvc(["status", "--json", dvcfile], repo)
    out = proc.stdout.strip()
    return json.loads(out) if out else {}
