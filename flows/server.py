"""A local Prefect server for schedules, started in the background and stopped on exit.

Schedules do not fire on Prefect's temporary (ephemeral) server, so ``crossmatch serve``
needs a real one. When the user already points ``PREFECT_API_URL`` at a server, that one is
used and nothing is started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

TAG_LIMITS: dict[str, int] = {"gpu": 1, "dvc": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(api_url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"Prefect server at {api_url} not healthy after {timeout:.0f} s ({last})")


def dashboard_url(api_url: str) -> str:
    """The UI's address for a Prefect API URL (the server serves both; the API under ``/api``)."""
    return api_url[: -len("/api")] if api_url.rstrip("/").endswith("/api") else api_url


@contextmanager
def prefect_server(port: int | None = None, log_file: Path | None = None, ui: bool = False) -> Iterator[str]:
    """Yield a Prefect API URL: the user's ``PREFECT_API_URL`` or a local server started here, with the
    dashboard (the Prefect UI, at :func:`dashboard_url`) when ``ui`` is set."""
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        yield existing
        return
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    prefect = Path(sys.executable).parent / "prefect"
    cmd = [str(prefect if prefect.exists() else "prefect"), "server", "start", "--host", "127.0.0.1",
           "--port", str(port), "--ui" if ui else "--no-ui", "--analytics-off"]
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(api_url)
        # Left set on exit on purpose: Prefect's own shutdown hooks still talk to the API.
        os.environ["PREFECT_API_URL"] = api_url
        yield api_url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if log_file:
            out.close()  # type: ignore[union-attr]


def ensure_tag_limits(limits: dict[str, int] | None = None) -> dict[str, int]:
    """Create (or reset) the tag concurrency limits on the Prefect API in use."""
    from prefect.client.orchestration import get_client

    limits = limits or TAG_LIMITS
    with get_client(sync_client=True) as client:
        for tag, value in limits.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=value)
        return {tag: client.read_concurrency_limit_by_tag(tag).concurrency_limit for tag in limits}
