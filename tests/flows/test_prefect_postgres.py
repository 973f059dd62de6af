"""Deploy like a Prefect user: a Prefect server on PostgreSQL, `prefect deploy` from prefect.yaml, a process worker.

A throw-away PostgreSQL cluster (Debian's binaries; `.ci/run` installs them when missing) listens on a free
loopback port in a temporary folder; `prefect server start` uses it through
PREFECT_API_DATABASE_CONNECTION_URL. The test creates the work pools, deploys every deployment of the
project's prefect.yaml, checks what the server recorded (pools, cron schedules, parameters, runs the scheduler
planned), then re-deploys `crossmatch-default` with test-size overrides (a few stages, an interval schedule
due in a few seconds) and watches a process worker pick the scheduled run up and complete it. Then a run of
`crossmatch-default-routed` sends its gpu-tagged stage (weavenet_train, which needs no pipeline data) to a
second worker, on the `crossmatch-gpu` pool: both workers are process workers on this CPU machine, so what is
tested is the routing, not CUDA. Everything the test started is stopped, also on failure.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flows.server import free_port, wait_healthy
from tests.flows.repo_copy import ROOT, make_repo_copy

STAGES = ["generate", "ingest_source", "ingest"]  # a quick run: synthetic data, per-source fan-out, merge


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (newest version), or of `initdb` on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _stop(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, wait: float = 20) -> None:
    """Stop a process started in its own session, and everything in that session."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=wait)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@pytest.fixture()
def postgres() -> Iterator[str]:
    """A PostgreSQL cluster on 127.0.0.1 (trust authentication, a `prefect` database); yields its
    SQLAlchemy URL for Prefect. initdb refuses to run as root, so as root the cluster belongs to the
    `postgres` user (or `nobody`)."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH); "
                    ".ci/run installs it with apt-get install postgresql")
    user: str | None = None
    if os.geteuid() == 0:
        user = next(u for u in ("postgres", "nobody") if _has_user(u))
    top = Path(tempfile.mkdtemp(prefix="crossmatch-pg-"))
    if user:
        shutil.chown(top, user)
    port = free_port()
    proc = None
    try:
        subprocess.run([str(bindir / "initdb"), "-D", str(top / "data"), "-U", "crossmatch", "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, user=user)
        proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(top / "data"), "-p", str(port), "-k", str(top),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=100"],
            stdout=open(top / "postgres.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115 - the child owns it
            user=user, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                             capture_output=True).returncode != 0:
            assert proc.poll() is None, (top / "postgres.log").read_text()
            assert time.monotonic() < deadline, "PostgreSQL did not accept connections within 30 s"
            time.sleep(0.3)
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "crossmatch", "prefect"],
                       check=True, capture_output=True)
        yield f"postgresql+asyncpg://crossmatch@127.0.0.1:{port}/prefect"
    finally:
        # SIGINT: PostgreSQL's "fast" shutdown (ends the sessions, then exits)
        _stop(proc, signal.SIGINT)
        shutil.rmtree(top, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _prefect(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    exe = Path(sys.executable).parent / "prefect"
    out = subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"prefect {' '.join(args)} exited with {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _query(url: str, sql: str) -> list[Any]:
    """The first column of a query's rows, read from PostgreSQL directly (asyncpg, Prefect's driver)."""
    import asyncio

    import asyncpg

    async def fetch() -> list[Any]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return [row[0] for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _post(api: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{api}{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def _finished_run(api: str, deployment_id: str) -> dict[str, Any] | None:
    """A finished (completed, failed or crashed) flow run of a deployment, if there is one."""
    runs = _post(api, "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}},
                                            "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}})
    return runs[0] if runs else None


@pytest.mark.slow
def test_deploy_from_prefect_yaml_to_a_postgres_server_and_a_process_worker(postgres, tmp_path):
    repo = make_repo_copy(tmp_path / "repo")
    shutil.copy2(ROOT / "prefect.yaml", repo / "prefect.yaml")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env.update(
        PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_DATABASE_CONNECTION_URL=postgres,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
    )
    server = worker = gpu_worker = None
    try:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
             "--no-ui", "--analytics-off"],
            env=env, stdout=open(tmp_path / "server.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True,
        )
        wait_healthy(api, timeout=90)
        client_env = {k: v for k, v in env.items() if k != "PREFECT_API_DATABASE_CONNECTION_URL"}
        client_env["PREFECT_API_URL"] = api

        # A Prefect user's steps: the process work pools, then every deployment of prefect.yaml.
        for pool in ("crossmatch", "crossmatch-gpu"):
            _prefect(["work-pool", "create", pool, "--type", "process"], client_env, repo)
        _prefect(["deploy", "--all", "--no-prompt"], client_env, repo)
        declared = {d["name"]: d for d in yaml.safe_load((repo / "prefect.yaml").read_text())["deployments"]}
        deployments = {d["name"]: d for d in _post(api, "/deployments/filter", {})}
        assert set(deployments) == set(declared) >= {"crossmatch-default", "crossmatch-real"}
        for name, spec in declared.items():
            got = deployments[name]
            assert got["work_pool_name"] == spec["work_pool"]["name"]
            assert got["parameters"] == spec["parameters"]
            assert [s["schedule"].get("cron") for s in got["schedules"]] == [s["cron"] for s in spec.get("schedules", [])]
            assert got["pull_steps"] == [{"prefect.deployments.steps.set_working_directory":
                                          {"directory": str(repo.resolve())}}]
        assert deployments["crossmatch-real"]["work_pool_name"] == "crossmatch-gpu"
        # stored in PostgreSQL (and no SQLite database appeared)
        assert set(_query(postgres, "select name from deployment")) == set(declared)
        assert not list((tmp_path / "prefect-home").glob("*.db"))
        # the scheduler plans the nightly runs of the default pipeline (03:00 UTC)
        default_id = deployments["crossmatch-default"]["id"]
        planned: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not planned and time.monotonic() < deadline:
            time.sleep(1)
            planned = _post(api, "/flow_runs/filter", {"deployments": {"id": {"any_": [default_id]}},
                                                       "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})
        assert planned, "the scheduler planned no run of crossmatch-default"
        assert {datetime.fromisoformat(r["expected_start_time"]).astimezone(timezone.utc).strftime("%H:%M")
                for r in planned} == {"03:00"}

        # Test size: the same deployment from prefect.yaml, with a few stages and one run due in a few seconds.
        anchor = (datetime.now(timezone.utc) + timedelta(seconds=8)).isoformat()
        _prefect(["deploy", "--name", "crossmatch-default", "--no-prompt", "--interval", "86400",
                  "--anchor-date", anchor, "--param", f"stages={json.dumps(STAGES)}"], client_env, repo)
        worker, gpu_worker = (
            subprocess.Popen(
                [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", pool,
                 "--type", "process", "--limit", "1"],
                cwd=tmp_path, env=dict(client_env, PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_WORKER_PREFETCH_SECONDS="5"),
                stdout=open(tmp_path / f"{pool}.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                start_new_session=True,
            )
            for pool in ("crossmatch", "crossmatch-gpu")
        )
        run: dict[str, Any] | None = None
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            time.sleep(2)
            assert worker.poll() is None, (tmp_path / "crossmatch.log").read_text()[-3000:]
            run = _finished_run(api, default_id)
            if run:
                break
        logs = (tmp_path / "crossmatch.log").read_text()[-3000:]
        assert run is not None, f"no run of crossmatch-default finished within 150 s; worker log:\n{logs}"
        assert run["state_type"] == "COMPLETED", f"{run['state_name']}: {run['state']['message']}\n{logs}"
        assert run["auto_scheduled"], "the run came from the deployment's schedule"
        assert run["parameters"]["stages"] == STAGES
        assert run["work_pool_name"] == "crossmatch"
        # the worker ran the pipeline in the project folder the deployment recorded
        assert (repo / "data/ingested").is_dir()
        assert "ingest" in (repo / "dvc.lock").read_text()

        # GPU routing: the cpu stretch (generate, up to date by now) runs in the routed run, weavenet_train as a
        # run of crossmatch-default-gpu on the other pool's worker.
        _prefect(["deployment", "run", "crossmatch-routed/crossmatch-default-routed",
                  "--param", 'stages=["generate", "weavenet_train"]'], client_env, repo)
        routed_id, gpu_id = deployments["crossmatch-default-routed"]["id"], deployments["crossmatch-default-gpu"]["id"]
        routed = None
        deadline = time.monotonic() + 150
        while routed is None and time.monotonic() < deadline:
            time.sleep(2)
            assert gpu_worker.poll() is None, (tmp_path / "crossmatch-gpu.log").read_text()[-3000:]
            routed = _finished_run(api, routed_id)
        logs = "\n".join((tmp_path / f"{p}.log").read_text()[-2000:] for p in ("crossmatch", "crossmatch-gpu"))
        assert routed is not None, f"the routed run did not finish within 150 s:\n{logs}"
        assert routed["state_type"] == "COMPLETED", f"{routed['state_name']}: {routed['state']['message']}\n{logs}"
        gpu_runs = _post(api, "/flow_runs/filter", {"deployments": {"id": {"any_": [gpu_id]}}})
        assert len(gpu_runs) == 1 and gpu_runs[0]["state_type"] == "COMPLETED"
        assert gpu_runs[0]["work_pool_name"] == "crossmatch-gpu"
        assert gpu_runs[0]["parameters"]["stages"] == ["weavenet_train"]
        assert gpu_runs[0]["parent_task_run_id"] is not None  # a subflow of the routed run
        assert (repo / "data/twosided/weavenet.pt").exists()
    finally:
        _stop(worker)
        _stop(gpu_worker)
        _stop(server)
