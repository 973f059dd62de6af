"""Watchable runs (issue 14, part 1): `crossmatch run` prints a start and an end line per stage with its
status and time, the stages' own output as it comes, a summary table and the report's path; a rejected
param prints the stage's message once, no traceback, exit 2; the stage output reaches the Prefect API
logs of the flow run; `crossmatch serve --ui` serves the dashboard.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from prefect.testing.utilities import prefect_test_harness
from typer.testing import CliRunner

from flows.cli import app
from flows.dvc import OutputSplitter, dvc, stream
from flows.server import free_port
from flows.stages import PIPELINES
from tests.flows.repo_copy import make_repo_copy

EXE = Path(sys.executable).parent / "crossmatch"
STAGES = [s.name for s in PIPELINES["default"].stages]
START = re.compile(r"^▶ (\S+)\s+started \d\d:\d\d:\d\d$", re.M)
END = re.compile(r"^[✔•✖] (\S+)\s+(done|up to date|from run cache|failed(?: \(exit -?\d+\))?) in (?:\d+\.\d s|\d+ min \d\d s)$", re.M)


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, PREFECT_HOME=str(home), COLUMNS="200")
    env.pop("PREFECT_API_URL", None)
    return env


# -- the output splitter: lines, frames, a live display's frames taken back ----------------------------

def test_splitter_tells_lines_from_frames() -> None:
    lines: list[str] = []
    frames: list[str] = []
    s = OutputSplitter(lines.append, frames.append)
    # a line, a bar redrawn in place (\r), a coloured line, a frame printed with \n then taken back
    # (cursor up + erase: what rich's transient Live does when it stops), a last line
    s.feed("start\r\n\x1b[?25ltrain  10%\rtrain  50%\r\x1b[2Ktrain 100%\r")
    s.feed("\x1b[1;36m3\x1b[0m sources\r\n⠋ working\r\n\x1b[?25h\r\x1b[1A\x1b[2Kdone: 3 rows\r\npartial")
    s.flush(final=True)
    assert lines == ["start", "3 sources", "done: 3 rows", "partial"]
    assert frames == ["train  10%", "train  50%", "train 100%", "⠋ working"]


def test_stream_runs_a_command_on_a_terminal(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("import sys\nprint('tty' if sys.stdout.isatty() else 'pipe', flush=True)\n"
                      "sys.stdout.write('50%\\r'); sys.stdout.flush()\nprint('end')\nsys.exit(3)\n")
    lines: list[str] = []
    frames: list[str] = []
    code, tail = stream([sys.executable, str(script)], tmp_path, lines.append, frames.append)
    assert code == 3
    assert lines == ["tty", "end"] and tail == ["tty", "end"]
    assert frames == ["50%"]


# -- a whole tiny pipeline through the CLI, in-process on a test API -----------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    """`crossmatch run` on a tiny copy: (CLI result, repository, flow-run id, messages of its API logs, latest
    artifacts by key). The one whole-pipeline run of the flow tests: every check of a completed run reads it."""
    repo = make_repo_copy(tmp_path_factory.mktemp("watch") / "repo")
    with prefect_test_harness(server_startup_timeout=120):
        result = CliRunner().invoke(app, ["run", "--repo", str(repo)])
        APILogHandler().flush()  # send what the log worker still holds
        found = re.search(r"^flow run \S+ \(([0-9a-f-]{36})\)$", result.output, re.M)
        assert found, result.output
        run_id = found.group(1)
        messages: list[str] = []
        with get_client(sync_client=True) as client:
            while True:
                page = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
                                        limit=200, offset=len(messages))
                messages += [log.message for log in page]
                if len(page) < 200:
                    break
            artifacts = {a.key: a for a in client.read_latest_artifacts()}
    return result, repo, run_id, messages, artifacts


@pytest.mark.slow
def test_run_prints_each_stage_its_output_a_summary_and_the_report(tiny_run) -> None:
    result, repo, run_id, _, _ = tiny_run
    out = result.output
    assert result.exit_code == 0, out
    assert START.findall(out) == STAGES, out
    assert [m[0] for m in END.findall(out)] == STAGES, out
    assert all(status == "done" for _, status in END.findall(out))  # a fresh copy: every stage ran
    # the stages' own output, labelled, as it came (fan-out items under their item name)
    assert re.search(r"^  generate │ generate: [\d,]+ events over 3 sources -> data/raw$", out, re.M), out
    assert re.search(r"^  ingest_source@alpha │ ingest@alpha: [\d,]+ log rows -> data/ingested/alpha$", out, re.M)
    assert "Running stage" not in out and "dvc push" not in out  # DVC's bookkeeping stays in the run log
    # the summary table: one row per stage with its status and seconds, and a total
    for stage in STAGES:
        assert re.search(rf"│ {stage}\s+│ done\s+│\s+\d+\.\d │", out), (stage, out)
    assert re.search(r"│ total\s+│\s+│\s+\d+\.\d │", out)
    assert re.search(rf"^pipeline completed; report: {re.escape(str(repo / 'report.md'))}; logs: prefect flow-run "
                     rf"logs {run_id}$", out, re.M), out
    assert (repo / "report.md").exists()
    assert "Traceback" not in out


@pytest.mark.slow
def test_stage_output_reaches_the_flow_run_logs(tiny_run) -> None:
    _, _, _, messages, _ = tiny_run
    # a stage's own line (task run of dvc-generate), a fan-out item's, DVC's command line, the flow's lines
    assert any(re.fullmatch(r"generate: [\d,]+ events over 3 sources -> data/raw", m) for m in messages), messages
    assert any(re.fullmatch(r"ingest@beta: [\d,]+ log rows -> data/ingested/beta", m) for m in messages)
    assert any(m.startswith("> python -m stages.evaluate") for m in messages)
    assert "generate: started" in messages
    assert any(re.fullmatch(r"evaluate: done in (\d+\.\d s|\d+ min \d\d s)", m) for m in messages)


@pytest.mark.slow
def test_completed_run_publishes_metrics_and_leaves_dvc_up_to_date(tiny_run) -> None:
    result, repo, _, _, artifacts = tiny_run
    assert result.exit_code == 0, result.output
    assert (repo / "data/edges/alpha/item_item.parquet").exists()
    assert (repo / "report.md").read_text().startswith("# crossmatch report")
    assert (repo / "dvc.lock").exists()
    table = artifacts.get("crossmatch-default-metrics")
    assert table is not None and table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    shown = {r["metric"]: r["value"] for r in rows}
    headline = json.loads((repo / "metrics/headline.json").read_text())
    assert shown["match.f1"] == pytest.approx(headline["match.f1"])
    assert shown["blocking.selected.tradeoff"] == pytest.approx(headline["blocking.selected.tradeoff"])
    assert {r["file"] for r in rows} == {"headline"}
    # DVC owns the cache: a second run finds everything up to date.
    status = dvc(["status", "--json", "dvc.yaml"], repo).stdout.strip()
    assert status in ("{}", "")


# -- a rejected param: the stage's message once, no traceback, exit 2 ------------------------------------

@pytest.mark.slow
def test_rejected_param_prints_the_message_once_without_traceback(tmp_path: Path) -> None:
    repo = make_repo_copy(tmp_path / "repo", overrides={"generate": {"seed": -1}})
    proc = subprocess.run([str(EXE), "run", "--repo", str(repo)], cwd=repo, env=_env(tmp_path / "prefect"),
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    message = "generate.seed must be an integer >= 0, got -1"
    assert out.count(message) == 1, out
    assert re.search(rf"^  generate │ generate: error: {re.escape(message)}$", out, re.M), out
    assert "Traceback" not in out and "DvcError" not in out, out
    assert START.findall(out) == ["generate"]
    assert END.findall(out) == [("generate", "failed (exit 2)")], out
    assert re.search(r"│ generate\s+│ failed \(exit 2\)\s+│", out), out
    assert re.search(r"^pipeline stopped at generate: the stage rejected its input or params \(exit 2, message "
                     r"above\); logs: prefect flow-run logs [0-9a-f-]{36}$", out, re.M), out
    assert len([ln for ln in out.splitlines() if ln.strip()]) < 25, out  # not 91 lines


# -- serve --ui: the dashboard --------------------------------------------------------------------------

@pytest.mark.slow
def test_serve_ui_serves_the_dashboard(tmp_path: Path) -> None:
    repo = make_repo_copy(tmp_path / "repo")
    port = free_port()
    proc = subprocess.Popen([str(EXE), "serve", "--ui", "--cron", "0 0 1 1 *", "--port", str(port), "--repo", str(repo)],
                            cwd=repo, env=_env(tmp_path / "prefect"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        status = ""
        while time.monotonic() < deadline and "Ctrl-C to stop" not in status:
            status = proc.stdout.readline()
            assert status or proc.poll() is None, "serve exited early"
        board = f"http://127.0.0.1:{port}"
        assert f"Prefect API {board}/api; dashboard {board};" in status, status
        page = httpx.get(board, timeout=30, follow_redirects=True)
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert httpx.get(f"{board}/api/health", timeout=10).json() is True
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
