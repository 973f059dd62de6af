"""`crossmatch serve`: one local Prefect server, a scheduled deployment, a completed run, clean stop.

The interval is 30 s, not 5: a run holds the `dvc` tag (limit 1) for each stage it repros, and with a run every
5 s the first one missed a 4-minute deadline in the full suite (queued runs competing for the slot).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from flows.server import free_port, gpu_slots
from tests.flows.repo_copy import make_repo_copy


def _api_servers(pid: int) -> list[list[str]]:
    """The Prefect API servers among a process and its descendants: `prefect server start`, or the temporary
    API a Prefect client starts when it has no API URL (`python -m uvicorn ... prefect.server.api.server`)."""
    found = []
    parent = psutil.Process(pid)
    for proc in [parent, *parent.children(recursive=True)]:
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        started = any(a.endswith("prefect") for a in cmd[:2]) and cmd[2:4] == ["server", "start"]
        temporary = "uvicorn" in cmd and any("prefect.server.api.server" in a for a in cmd)
        if started or temporary:
            found.append(cmd)
    return found


@pytest.mark.slow
def test_served_deployment_completes_a_scheduled_run(tmp_path):
    repo = make_repo_copy(tmp_path / "repo")
    port = free_port()
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    exe = Path(sys.executable).parent / "crossmatch"
    proc = subprocess.Popen(
        [str(exe), "serve", "--interval", "30", "--port", str(port), "--repo", str(repo),
         "--stages", "generate,ingest_source,ingest,edges_source,edges"],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    completed = []
    try:
        deadline = time.monotonic() + 360
        while time.monotonic() < deadline and not completed:
            time.sleep(3)
            assert proc.poll() is None, f"serve exited early:\n{proc.stdout.read() if proc.stdout else ''}"
            try:
                runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=5).json()
            except httpx.HTTPError:
                continue
            completed = [r for r in runs if r["deployment_id"] and r["state_type"] == "COMPLETED"]
        assert completed, "no scheduled run completed within 6 minutes"
        # One API server: the announced one (a client that missed its URL would start a temporary second one).
        servers = _api_servers(proc.pid)
        assert len(servers) == 1 and "--port" in servers[0] and str(port) in servers[0], servers
        limits = {lim["tag"]: lim["concurrency_limit"] for lim in httpx.post(f"{api}/concurrency_limits/filter", json={}, timeout=5).json()}
        assert limits == {"gpu": gpu_slots(), "dvc": 1}
        deployment = httpx.get(f"{api}/deployments/{completed[0]['deployment_id']}", timeout=5).json()
        assert deployment["name"] == "crossmatch-default"
        assert (repo / "data/edges").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    # The local server went down with the serve command.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{api}/health", timeout=2)
