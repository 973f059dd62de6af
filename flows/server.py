"""A local Prefect server for schedules, started in the background and stopped on exit.

Schedules do not fire on Prefect's temporary (ephemeral) server, so ``crossmatch serve``
needs a real one. When the user already points ``PREFECT_API_URL`` at a server, that one is
used and nothing is started.

Prefect reads its settings once, when it is imported, so setting ``PREFECT_API_URL`` in
``os.environ`` afterwards does not reach this process's clients: they would start a second,
temporary API on the same database. :func:`prefect_server` therefore also enters a settings
context with the URL (and sets the variable for child processes: flow-run subprocesses,
Dask workers, the stages).
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

# `dvc`: tasks that run `dvc repro` or `dvc commit` hold DVC's repository lock, so one at a time.
# `gpu`: see gpu_slots().
DVC_LIMIT = 1


def gpu_slots() -> int:
    """How many ``gpu``-tagged task runs may run at once on this machine: one per CUDA device (one
    training per GPU), or ``CROSSMATCH_GPU_SLOTS``. Without a CUDA device the gpu stages train on the
    CPU, where there is no device memory to protect: one per CPU core."""
    override = os.environ.get("CROSSMATCH_GPU_SLOTS")
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ValueError(f"CROSSMATCH_GPU_SLOTS must be a positive integer, not {override!r}")
        return int(override)
    import torch

    devices = int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    return devices if devices else max(1, os.cpu_count() or 1)


def tag_limits() -> dict[str, int]:
    """The tag concurrency limits for this machine: ``{"gpu": gpu_slots(), "dvc": 1}``."""
    return {"gpu": gpu_slots(), "dvc": DVC_LIMIT}


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


def _die_with_parent() -> None:
    """Run in the server's process before it starts: Linux sends it SIGTERM when the process that started
    it ends, however that ends (a SIGKILL skips the ``finally`` below and would leave the server running)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@contextmanager
def prefect_server(port: int | None = None, log_file: Path | None = None, ui: bool = False) -> Iterator[str]:
    """Yield a Prefect API URL: the user's ``PREFECT_API_URL`` or a local server started here, with the
    dashboard (the Prefect UI, at :func:`dashboard_url`) when ``ui`` is set."""
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        yield existing
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    prefect = Path(sys.executable).parent / "prefect"
    cmd = [str(prefect if prefect.exists() else "prefect"), "server", "start", "--host", "127.0.0.1",
           "--port", str(port), "--ui" if ui else "--no-ui", "--analytics-off"]
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_die_with_parent)  # noqa: PLW1509 - prctl only, before exec
    try:
        wait_healthy(api_url)
        # The variable for child processes, left set on exit on purpose: Prefect's own shutdown hooks
        # still talk to the API; the settings context for this process's clients (see the module doc).
        os.environ["PREFECT_API_URL"] = api_url
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
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
    """Create (or reset) the tag concurrency limits (default: :func:`tag_limits`) on the Prefect API in use."""
    from prefect.client.orchestration import get_client

    limits = limits or tag_limits()
    with get_client(sync_client=True) as client:
        for tag, value in limits.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=value)
        return {tag: client.read_concurrency_limit_by_tag(tag).concurrency_limit for tag in limits}
