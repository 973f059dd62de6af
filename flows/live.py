"""What a run shows while it runs: in the terminal of ``crossmatch run`` and in the Prefect run logs.

Every stage gets a start line and an end line (status, wall time); in between, the stage's own output
as it comes (flows.dvc.stream), and on a terminal a live footer with each running stage or fan-out
item, its elapsed time and the progress bar or spinner the stage is drawing. At the end,
:meth:`RunView.summary` is the table of stages, statuses and seconds.

The flow and its tasks report to the :class:`RunView` installed in their process with :func:`watching`
(``crossmatch run`` installs one; a served deployment has none) and, whatever the process, to the
Prefect run logger: every line of a stage's output is an INFO record of its task run, so
``prefect flow-run logs <id>`` and the UI show it. :func:`keep_run_logs` makes sure INFO records of
the run loggers are kept even when ``PREFECT_LOGGING_LEVEL`` is WARNING (the Makefile's setting, which
keeps Prefect's own chatter out of the terminal).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

Sink = Callable[[str], None]

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
LOG_FRAME_EVERY_S = 30.0  # a progress frame goes to the run log at most this often (per stage or item)
PRINT_FRAME_EVERY_S = 10.0  # ... and to a terminal that is not interactive (a log file, CI)

# DVC's own bookkeeping around a stage: kept in the run logs, left out of the terminal view
_DVC_CHATTER = re.compile(
    r"^(Running stage '.*':"
    r"|> .*"
    r"|(Generating|Updating) lock file '.*'"
    r"|To track the changes with git, run:"
    r"|\s*git add .*"
    r"|To enable auto staging, run:"
    r"|\s*dvc config core\.autostage true"
    r"|Use `dvc push` to send your updates to remote storage\."
    r"|Stage '.*' didn't change, skipping"
    r"|Data and pipelines are up to date\."
    r"|!"  # DVC's progress placeholder
    r"|Waiting to acquire lock\. If DVC froze, see .*"
    # the stage has already said why: its exit code is on the end line
    r"|ERROR: failed to reproduce '.*': failed to run: .*, exited with -?\d+"
    r")\s*$"
)
UP_TO_DATE = "didn't change, skipping"
RUN_CACHE = "is cached - skipping run"

STATUS_STYLE = {"done": "green", "up to date": "cyan", "from run cache": "cyan", "failed": "red", "running": "yellow"}
STATUS_MARK = {"done": "✔", "up to date": "•", "from run cache": "•", "failed": "✖", "running": "…"}


def is_dvc_chatter(line: str) -> bool:
    return not line.strip() or bool(_DVC_CHATTER.match(line))


def keep_run_logs(level: int = logging.INFO) -> None:
    """Lower the run loggers to ``level`` where the configuration (``PREFECT_LOGGING_LEVEL``) drops it."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > level:
            logger.setLevel(level)


@contextmanager
def run_logs_off_the_console() -> Iterator[None]:
    """For the block, the run loggers' records go to the Prefect API only, not also to Prefect's console
    handler: the terminal view shows the stages, and an expected failure prints no Prefect traceback."""
    loggers = [logging.getLogger(name) for name in RUN_LOGGERS]
    before = [lg.propagate for lg in loggers]
    for lg in loggers:
        lg.propagate = False
    try:
        yield
    finally:
        for lg, was in zip(loggers, before, strict=True):
            lg.propagate = was


def seconds_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s"


@dataclass
class StageRecord:
    stage: str
    status: str = "running"  # running | done | up to date | from run cache | failed
    seconds: float = 0.0
    exit_code: int | None = None  # the stage command's, when it failed and DVC reported it
    started_at: str = field(default_factory=lambda: datetime.now().strftime("%H:%M:%S"))
    _t0: float = field(default_factory=time.monotonic, repr=False)

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("_t0")
        row["seconds"] = round(self.seconds, 2)
        return row


class RunView:
    """The terminal view of one run. Thread-safe: fan-out items report from worker threads."""

    def __init__(self, console: Console, *, interactive: bool | None = None) -> None:
        self.console = console
        self.interactive = console.is_terminal and not console.is_dumb_terminal if interactive is None else interactive
        self.records: dict[str, StageRecord] = {}
        self.flow_run: tuple[str, str] | None = None  # (name, id)
        self._running: dict[str, list[Any]] = {}  # label -> [monotonic start, last frame, spinner]
        self._printed_frame: dict[str, float] = {}
        self._lock = threading.RLock()  # the running list and records
        self._print_lock = threading.Lock()  # one printed line at a time
        self._live: Live | None = None

    # -- lifetime -------------------------------------------------------------------------------------
    def __enter__(self) -> RunView:
        if self.interactive:
            self._live = Live(self, console=self.console, refresh_per_second=8, transient=True,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __rich__(self) -> RenderableType:
        with self._lock:
            rows: list[RenderableType] = []
            now = time.monotonic()
            for label, (t0, frame, spinner) in self._running.items():
                text = Text.assemble((label, "bold"), (f"  {seconds_text(now - t0)}", "dim"))
                if frame:
                    text.append("  ")
                    text.append(frame)
                text.truncate(max(self.console.width - 3, 20), overflow="ellipsis")
                spinner.text = text
                rows.append(spinner)
            if not rows:
                last = next(reversed(self.records.values()), None)
                if last is None:
                    idle = Text("starting the flow run", style="dim")
                elif last.status == "running":  # DVC's bookkeeping around the stage's command
                    idle = Text.assemble((last.stage, "bold"), (f"  {seconds_text(now - last._t0)}", "dim"))
                else:
                    idle = Text("finishing the flow run", style="dim")
                rows.append(Spinner("dots", idle))
            return Group(*rows)

    def _print(self, renderable: RenderableType) -> None:
        # not under self._lock: the live footer's refresh holds Live's lock while it renders (taking
        # self._lock), and printing above a live display takes Live's lock
        with self._print_lock:
            self.console.print(renderable, soft_wrap=True, highlight=False)

    # -- events from the flow and its tasks -----------------------------------------------------------
    def flow_started(self, name: str, run_id: str) -> None:
        self.flow_run = (name, run_id)
        self._print(Text(f"flow run {name} ({run_id})", style="dim"))

    def stage_started(self, record: StageRecord) -> None:
        with self._lock:
            self.records[record.stage] = record
        self._print(Text.assemble(("▶ ", "bold"), (f"{record.stage:<16}", "bold"), f" started {record.started_at}"))

    def stage_finished(self, record: StageRecord) -> None:
        style = STATUS_STYLE.get(record.status, "")
        status = record.status + (f" (exit {record.exit_code})" if record.exit_code is not None else "")
        self._print(Text.assemble((f"{STATUS_MARK.get(record.status, ' ')} ", style), (f"{record.stage:<16}", "bold"),
                                  (f" {status}", style), f" in {seconds_text(record.seconds)}"))

    def task_started(self, label: str) -> None:
        with self._lock:
            self._running[label] = [time.monotonic(), "", Spinner("dots")]

    def task_finished(self, label: str) -> None:
        with self._lock:
            self._running.pop(label, None)
            self._printed_frame.pop(label, None)

    def line(self, label: str, text: str) -> None:
        if is_dvc_chatter(text):
            return
        with self._lock:
            self._printed_frame[label] = time.monotonic()
        self._print(Text.assemble((f"  {label} │ ", "dim"), text))

    def frame(self, label: str, text: str) -> None:
        if is_dvc_chatter(text):
            return
        with self._lock:
            if label in self._running:
                self._running[label][1] = text
            if self.interactive:
                return
            now = time.monotonic()  # printed only when the stage has been quiet for a while
            if now - self._printed_frame.get(label, now) < PRINT_FRAME_EVERY_S:
                self._printed_frame.setdefault(label, now)
                return
            self._printed_frame[label] = now
        self._print(Text.assemble((f"  {label} │ ", "dim"), (text, "dim")))

    def note(self, label: str, text: str) -> None:
        self._print(Text.assemble((f"  {label} │ ", "dim"), (text, "italic")))

    # -- the end --------------------------------------------------------------------------------------
    def failed_stage(self) -> StageRecord | None:
        return next((r for r in self.records.values() if r.status == "failed"), None)

    def summary(self, title: str = "stages") -> Table:
        table = Table(title=title, title_justify="left")
        table.add_column("stage")
        table.add_column("status")
        table.add_column("seconds", justify="right")
        total = 0.0
        for r in self.records.values():
            status = r.status + (f" (exit {r.exit_code})" if r.exit_code is not None else "")
            table.add_row(r.stage, Text(status, style=STATUS_STYLE.get(r.status, "")), f"{r.seconds:.1f}")
            total += r.seconds
        table.add_section()
        table.add_row("total", "", f"{total:.1f}")
        return table


_view: RunView | None = None


def current() -> RunView | None:
    """The view installed in this process (``None``: nobody watches; the run logs still get everything)."""
    return _view


@contextmanager
def watching(view: RunView) -> Iterator[RunView]:
    """Install ``view`` for the block (and start its live footer on a terminal)."""
    global _view
    before = _view
    _view = view
    try:
        with view:
            yield view
    finally:
        _view = before


def _run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    from prefect.logging import get_run_logger

    keep_run_logs()
    return get_run_logger()


@contextmanager
def stage_output(label: str) -> Iterator[tuple[Sink, Sink]]:
    """Inside a task run: the (line, frame) sinks for a command's output (flows.dvc.stream).

    Lines go to the task run's log at INFO and to the view; frames to the view's footer, and to the
    log at most every :data:`LOG_FRAME_EVERY_S` (so a long training shows its progress in the UI).
    """
    logger = _run_logger()
    view = current()
    logged = [-LOG_FRAME_EVERY_S]

    def on_line(text: str) -> None:
        if text.strip():
            logger.info(text)
        if view is not None:
            view.line(label, text)

    def on_frame(text: str) -> None:
        now = time.monotonic()
        if now - logged[0] >= LOG_FRAME_EVERY_S:
            logged[0] = now
            logger.info(text)
        if view is not None:
            view.frame(label, text)

    if view is not None:
        view.task_started(label)
    try:
        yield on_line, on_frame
    finally:
        if view is not None:
            view.task_finished(label)


def note(label: str, text: str) -> None:
    """A line about the run itself (not a stage's output): the run log and the view."""
    _run_logger().info(f"{label}: {text}")
    view = current()
    if view is not None:
        view.note(label, text)


def flow_started() -> None:
    """Tell the view which flow run this is (so the user can find its logs)."""
    from prefect.runtime import flow_run

    view = current()
    if view is not None:
        view.flow_started(str(flow_run.get_name()), str(flow_run.get_id()))


@contextmanager
def stage(name: str) -> Iterator[StageRecord]:
    """Inside the flow: time one stage, announce its start and end (view and flow-run log).

    The block sets ``record.status`` when it knows better than ``done`` (``up to date``); an exception
    marks the stage ``failed`` with the exit code it carries (:class:`flows.dvc.DvcError`) and goes on.
    """
    logger = _run_logger()
    view = current()
    record = StageRecord(name)
    logger.info(f"{name}: started")
    if view is not None:
        view.stage_started(record)
    try:
        yield record
    except BaseException as exc:
        record.status = "failed"
        record.exit_code = getattr(exc, "stage_exit", None)
        raise
    finally:
        record.seconds = time.monotonic() - record._t0
        if record.status == "running":
            record.status = "done"
        level = logging.ERROR if record.status == "failed" else logging.INFO
        exit_text = f" (exit {record.exit_code})" if record.exit_code is not None else ""
        logger.log(level, f"{name}: {record.status}{exit_text} in {seconds_text(record.seconds)}")
        if view is not None:
            view.stage_finished(record)


def stage_status_from_output(output: str) -> str:
    """What DVC's output says about a stage that exited 0."""
    if UP_TO_DATE in output:
        return "up to date"
    if RUN_CACHE in output:
        return "from run cache"
    return "done"
