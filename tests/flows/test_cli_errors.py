"""Friendly CLI errors (issue 14, part 9): outside a repository, while DVC holds its lock, and for two
concurrent ``crossmatch run``: one line, the pid when known, a non-zero exit, no traceback.

No pipeline runs here: every command stops at its checks, before Prefect or DVC start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dvc.lock import Lock
from typer.testing import CliRunner

from flows.cli import app
from flows.dvc import DvcError
from flows.guard import DVC_LOCK, EXIT_BUSY, EXIT_NOT_A_REPOSITORY, RUN_LOCK, lock_holder, run_lock

EXE = Path(sys.executable).parent / "crossmatch"


def _cli(args: list[str], cwd: Path) -> tuple[int, str]:
    env = dict(os.environ, COLUMNS="300")  # one line however long the path
    proc = subprocess.run([str(EXE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def _one_line(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    assert "Traceback" not in out
    return lines[0]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder with no dvc.yaml at or above it."""
    assert not any((p / "dvc.yaml").exists() for p in (tmp_path, *tmp_path.parents))
    return tmp_path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The shape the checks look at: a dvc.yaml and DVC's folder (no data, no stage is run)."""
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize("command", [["stages"], ["run"], ["exps"]])
def test_outside_a_repository(outside: Path, command: list[str]) -> None:
    code, out = _cli(command, outside)
    line = _one_line(out)
    assert code == EXIT_NOT_A_REPOSITORY
    assert "not a crossmatch repository" in line and str(outside) in line


def test_a_dvc_yaml_without_dvc_init_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    res = CliRunner().invoke(app, ["stages", "--repo", str(tmp_path)])
    assert res.exit_code == EXIT_NOT_A_REPOSITORY
    assert "DVC is not initialised" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("command", [["stages"], ["run"]])
def test_while_dvc_holds_the_repository_lock(repo: Path, command: list[str]) -> None:
    lock = Lock(str(repo / DVC_LOCK))  # DVC's own lock class: zc.lockfile, pid written into the file
    lock.lock()
    try:
        code, out = _cli(command, repo)
    finally:
        lock.unlock()
    line = _one_line(out)
    assert code == EXIT_BUSY
    assert line.startswith("error: busy:") and f"pid {os.getpid()}" in line and "repository lock" in line
    assert "part of" not in line  # `run` holds its own lock while it checks DVC's: not another run
    assert lock_holder(repo / RUN_LOCK) == (False, None)  # and releases it


def test_a_lock_file_dvc_left_behind_is_not_busy(repo: Path) -> None:
    (repo / DVC_LOCK).write_text(" 4242\n")  # DVC keeps the file, with the last pid, after unlocking
    assert lock_holder(repo / DVC_LOCK) == (False, None)


def test_dvc_taking_the_lock_after_the_check_is_busy_too(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(*_: object, **__: object) -> None:
        raise DvcError("`dvc status --json dvc.yaml` failed with exit code 1:\nERROR: Unable to acquire lock. "
                       "Most likely another DVC process is running or was terminated abruptly.")

    monkeypatch.setattr("flows.dvc.stage_status", locked)
    res = CliRunner().invoke(app, ["stages", "--repo", str(repo)])
    assert res.exit_code == EXIT_BUSY
    assert "busy: a DVC command (pid unknown)" in res.output


HOLDER = """
import sys
from pathlib import Path
from flows.guard import run_lock
with run_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_two_concurrent_runs(repo: Path) -> None:
    # the first run's lock, held by another process exactly as `crossmatch run` holds it
    first = subprocess.Popen([sys.executable, "-c", HOLDER, str(repo)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "held"
        code, out = _cli(["run"], repo)
        line = _one_line(out)
        assert code == EXIT_BUSY
        assert "busy: another `crossmatch run`" in line and f"pid {first.pid}" in line
        # a DVC command of that run: the message names the run behind it
        with Lock(str(repo / DVC_LOCK)):
            res = CliRunner().invoke(app, ["stages", "--repo", str(repo)])
        assert res.exit_code == EXIT_BUSY and f"part of `crossmatch run` (pid {first.pid})" in res.output
    finally:
        first.send_signal(signal.SIGKILL)  # killed, not closed: the kernel still releases the lock
        first.wait(timeout=30)
    assert lock_holder(repo / RUN_LOCK) == (False, None)
    with run_lock(repo):  # and the next run may start
        assert lock_holder(repo / RUN_LOCK) == (True, os.getpid())
