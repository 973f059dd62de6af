"""Shelling out to DVC from the repository root, one call at a time.

DVC's Python API follows the process's working directory and two ``dvc repro`` runs in one
repository fail on the lock, so every call goes through :func:`dvc` with ``cwd`` set and the
project's virtual environment first on ``PATH``.

Commands that run a stage go through :func:`stream` instead: the command writes to a pseudo-terminal,
so a stage's own progress bars and spinners (rich, which draws them only on a terminal) are live, and
its output is split as it arrives into *lines* (what the stage printed for good) and *frames* (a
progress display redrawn in place), for the terminal view and the Prefect run logs (flows.live).
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections import deque
from collections.abc import Callable
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
    cmd = [dvc_executable(), *args]
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


Sink = Callable[[str], None]

# CSI / OSC escape sequences (colours, cursor moves, erase-line, hide/show cursor) and other C0 controls
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]")
_CURSOR_UP = re.compile(r"\x1b\[(\d*)A")
_PARTIAL_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*)?$")
IDLE_FLUSH_S = 0.5  # a printed line is shown once this long has passed without a redraw taking it back
TERMINAL_COLUMNS = 200  # the width a stage's rich console sees on the pseudo-terminal


def plain(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tabs kept as spaces)."""
    return _ANSI.sub("", text.replace("\t", "    ")).rstrip()


class OutputSplitter:
    """Split a terminal byte stream into lines and progress frames.

    A segment ended by ``\n`` is a line; one ended by a bare ``\r`` is a frame (redrawn in place). A
    live display (rich) also prints its frame followed by ``\n`` and takes it back with cursor-up: so
    lines are held for :data:`IDLE_FLUSH_S` (a live display redraws more often), and a cursor-up by *n*
    turns the last *n* held lines into a frame instead.
    """

    def __init__(self, on_line: Sink, on_frame: Sink) -> None:
        self.on_line, self.on_frame = on_line, on_frame
        self._buf = ""
        self._held: list[tuple[float, str]] = []  # (when, text) of lines a redraw may still take back
        self._shown = ""  # the unterminated text last passed on as a frame

    def feed(self, text: str) -> None:
        self._buf += text
        while True:
            cut = min((i for i in (self._buf.find("\n"), self._buf.find("\r")) if i >= 0), default=-1)
            if cut < 0:
                break
            if self._buf[cut] == "\r":
                if cut + 1 == len(self._buf):
                    break  # maybe the first half of \r\n: wait for the next chunk
                if self._buf[cut + 1] == "\n":
                    self._segment(self._buf[:cut], ended_line=True)
                    self._buf = self._buf[cut + 2 :]
                    continue
            self._segment(self._buf[:cut], ended_line=self._buf[cut] == "\n")
            self._buf = self._buf[cut + 1 :]

    def _segment(self, raw: str, ended_line: bool) -> None:
        ups = sum(int(n or 1) for n in _CURSOR_UP.findall(raw))
        if ups:
            taken = self._held[-ups:]
            del self._held[-ups:]
            self._release(float("inf"))  # what came before the taken-back frame stays
            frames = [t for _, t in taken if t.strip()]
            if frames:
                self.on_frame(frames[-1])
        text = plain(raw)
        self._release(time.monotonic() - IDLE_FLUSH_S)
        if ended_line:
            self._held.append((time.monotonic(), text))
        elif text.strip():
            self.on_frame(text)

    def _release(self, before: float) -> None:
        while self._held and self._held[0][0] <= before:
            self.on_line(self._held.pop(0)[1])

    def flush(self, final: bool = False) -> None:
        """Pass on the lines held long enough (at the end: all of them, and what is left unterminated in
        the buffer); show an unterminated frame."""
        if final:
            if _PARTIAL_ESCAPE.search(self._buf):
                self._buf = _PARTIAL_ESCAPE.sub("", self._buf)
            if self._buf.strip("\r"):
                self._segment(self._buf.rstrip("\r"), ended_line=True)
            self._buf = ""
        self._release(float("inf") if final else time.monotonic() - IDLE_FLUSH_S)
        pending = plain(_PARTIAL_ESCAPE.sub("", self._buf))
        if pending.strip() and pending != self._shown:  # a frame still being drawn, or a line still being typed
            self._shown = pending
            self.on_frame(pending)


def _open_terminal(columns: int) -> tuple[int, int] | None:
    try:
        leader, follower = pty.openpty()
    except OSError:
        return None
    with contextlib.suppress(OSError):
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    return leader, follower


def stream(cmd: list[str], cwd: Path, on_line: Sink, on_frame: Sink, *, env: dict[str, str] | None = None,
           columns: int = TERMINAL_COLUMNS, keep: int = 25) -> tuple[int, list[str]]:
    """Run ``cmd`` in ``cwd`` with its output on a pseudo-terminal (a pipe where none can be opened),
    passing each line to ``on_line`` and each progress frame to ``on_frame`` as they come.

    Returns the exit code and the last ``keep`` non-empty lines.
    """
    env = dict(env if env is not None else dvc_env())
    env.update({"TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": "50"})
    tail: deque[str] = deque(maxlen=keep)

    def line(text: str) -> None:
        if text.strip():
            tail.append(text)
        on_line(text)

    splitter = OutputSplitter(line, on_frame)
    terminal = _open_terminal(columns)
    if terminal is None:
        env.pop("TERM")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        leader = proc.stdout.fileno()
    else:
        leader, follower = terminal
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=follower,
                                    stderr=follower, close_fds=True)
        except BaseException:
            os.close(leader)
            raise
        finally:
            os.close(follower)  # the child holds its own copy: EOF (EIO) comes when it and its children exit
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], IDLE_FLUSH_S / 4)
            if not ready:
                splitter.flush()
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the pseudo-terminal's other end is closed
                chunk = b""
            if not chunk:
                break
            splitter.feed(decoder.decode(chunk))
        splitter.feed(decoder.decode(b"", final=True))
        splitter.flush(final=True)
    finally:
        if terminal is not None:
            os.close(leader)
        code = proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return code, list(tail)


def dvc_executable() -> str:
    exe = Path(sys.executable).parent / "dvc"
    return str(exe) if exe.exists() else "dvc"


def dvc_stream(args: list[str], repo: Path, on_line: Sink, on_frame: Sink) -> None:
    """Run ``dvc <args>`` in ``repo`` through :func:`stream`; :class:`DvcError` (with the exit code of the
    stage when DVC reports one) when it fails."""
    code, tail = stream([dvc_executable(), *args], repo, on_line, on_frame)
    if code != 0:
        codes = [int(c) for line in tail for c in _STAGE_EXIT.findall(line)]
        raise DvcError(f"`dvc {' '.join(args)}` failed with exit code {code}:\n" + "\n".join(tail),
                       stage_exit=codes[-1] if codes else None)


def stage_status(repo: Path, dvcfile: str = "dvc.yaml") -> dict[str, list[Any]]:
    """``dvc status --json <dvcfile>``: stages that are not up to date, with what changed."""
    proc = dvc(["status", "--json", dvcfile], repo)
    out = proc.stdout.strip()
    return json.loads(out) if out else {}
