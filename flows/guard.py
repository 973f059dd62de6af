"""What the ``crossmatch`` commands check before they touch a repository: that it is one, and that
no other run holds it.

Errors are :class:`CliError` with a one-line message and an exit code, printed by the CLI without a
traceback:

* :class:`NotARepository` (exit 2): no ``dvc.yaml`` at or above the folder, or DVC not initialised.
* :class:`Busy` (exit 3): another ``crossmatch run`` holds the project, or a DVC command (``dvc
  repro``, ``dvc exp run``, ...) holds DVC's repository lock. A second ``crossmatch run`` would
  otherwise start a second temporary Prefect API on the same database (two schema migrations at
  once) and its DVC stages would fail on DVC's lock.

DVC's lock is ``.dvc/tmp/lock``: DVC holds an exclusive ``flock`` on it (through ``zc.lockfile``)
and writes its pid into it; the file stays behind when the lock is released, so it is the lock,
not the file, that tells whether DVC is busy. ``crossmatch run`` holds its own lock the same way,
on ``.dvc/tmp/crossmatch-run.lock``, for the whole run; the kernel releases both when the process
ends, however it ends.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flows.dvc import find_repo

EXIT_NOT_A_REPOSITORY = 2
EXIT_BUSY = 3

DVC_LOCK = Path(".dvc/tmp/lock")
RUN_LOCK = Path(".dvc/tmp/crossmatch-run.lock")
# what DVC prints when it cannot take its lock (dvc.lock.FAILED_TO_LOCK_MESSAGE)
DVC_LOCK_MESSAGE = "Unable to acquire lock"


class CliError(Exception):
    """An expected failure of a command: ``str(exc)`` is the one line to print, ``exit_code`` its code."""

    exit_code = 1


class NotARepository(CliError):
    exit_code = EXIT_NOT_A_REPOSITORY


class Busy(CliError):
    exit_code = EXIT_BUSY


def repository(start: str | Path | None = None) -> Path:
    """The project folder at or above ``start`` (default: the working directory), initialised for DVC.

    Raises:
        NotARepository: no ``dvc.yaml`` at or above ``start``, or no ``.dvc`` folder beside it.
    """
    where = Path(start or Path.cwd()).resolve()
    if not where.is_dir():
        raise NotARepository(f"not a crossmatch repository: {where} is not a folder")
    try:
        root = find_repo(where)
    except FileNotFoundError:
        raise NotARepository(f"not a crossmatch repository: no dvc.yaml in {where} or any folder above it "
                             "(run crossmatch inside the project, or pass --repo)") from None
    if not (root / ".dvc").is_dir():
        raise NotARepository(f"not a crossmatch repository: {root} has a dvc.yaml but DVC is not initialised "
                             "there (run `make setup` or `dvc init`)")
    return root


def _pid_in(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def lock_holder(path: Path) -> tuple[bool, int | None]:
    """Whether a process holds the lock file ``path`` now, and its pid when the file names it.

    Probes the lock the way DVC takes it (a non-blocking exclusive ``flock``) and releases it at once.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # absent or unreadable: nobody can hold it
        return False, None
    try:
        if _try_flock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False, None
    finally:
        os.close(fd)
    return True, _pid_in(path)


def _pid_text(pid: int | None) -> str:
    return f"pid {pid}" if pid is not None else "pid unknown"


def busy_with_dvc(root: Path, pid: int | None) -> Busy:
    """The :class:`Busy` error for DVC's lock held by ``pid`` (naming the ``crossmatch run`` behind it, if any)."""
    held, run_pid = lock_holder(root / RUN_LOCK)
    # (not this process's own run: `crossmatch run` checks DVC's lock while it holds its own)
    behind = f", part of `crossmatch run` ({_pid_text(run_pid)})" if held and run_pid != os.getpid() else ""
    return Busy(f"busy: a DVC command ({_pid_text(pid)}{behind}) holds the repository lock "
                f"{root / DVC_LOCK}; try again when it has finished")


def check_dvc_idle(root: Path) -> None:
    """Raise :class:`Busy` when a DVC process holds ``root``'s repository lock."""
    held, pid = lock_holder(root / DVC_LOCK)
    if held:
        raise busy_with_dvc(root, pid)


@contextmanager
def run_lock(root: Path) -> Iterator[None]:
    """Hold ``root``'s ``crossmatch run`` lock for the block; :class:`Busy` when another run holds it."""
    path = root / RUN_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_flock(fd):
            raise Busy(f"busy: another `crossmatch run` ({_pid_text(_pid_in(path))}) is running in {root}; "
                       "try again when it has finished")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
