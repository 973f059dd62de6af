"""Scheduled deployments of the pipelines, served with ``flow.to_deployment`` + ``prefect.serve``.

``crossmatch serve --cron "0 3 * * *"`` starts a local Prefect server in the background (or
uses ``PREFECT_API_URL``), creates the tag concurrency limits (``flows.server.tag_limits``) there,
and serves one deployment per pipeline until interrupted; the server stops on exit.

Deployments to an existing server and a work pool are declared in ``prefect.yaml`` (``prefect
deploy --all``), for ``prefect worker start``; see the README.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from prefect import serve

from flows.dvc import find_repo
from flows.pipeline import pipeline, shared_data_dir
from flows.server import dashboard_url, ensure_tag_limits, prefect_server


def deployments(
    which: str, *, cron: str | None, interval: float | None, repo: Path, stages: list[str] | None = None
) -> list[Any]:
    """The deployments to serve: ``default``, ``real`` (only when ../shared/data exists) or ``all``."""
    names = ["default", "real"] if which == "all" else [which]
    if which == "all" and not shared_data_dir(repo).is_dir():
        names = ["default"]
    out = []
    for name in names:
        out.append(
            pipeline.to_deployment(
                name=f"crossmatch-{name}",
                cron=cron,
                interval=interval,
                parameters={"name": name, "repo": str(repo), "stages": stages},
                tags=["crossmatch", name],
                description=f"The crossmatch {name} pipeline (dvc repro stage by stage).",
            )
        )
    return out


def serve_deployments(
    which: str = "default",
    *,
    cron: str | None = None,
    interval: float | None = None,
    port: int | None = None,
    limit: int | None = None,
    repo: str | None = None,
    stages: list[str] | None = None,
    ui: bool = False,
) -> None:
    """Serve scheduled deployments until interrupted (Ctrl-C stops the server too); ``ui`` starts the
    local server with its dashboard."""
    root = find_repo(repo)
    log = root / ".prefect" / "server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    own_server = "PREFECT_API_URL" not in os.environ
    with prefect_server(port, log_file=log, ui=ui) as api:
        ensure_tag_limits()
        # the serve command's status line, on stdout for whoever started it (not a log record)
        board = f"; dashboard {dashboard_url(api)}" if ui or not own_server else ""
        print(f"Prefect API {api}{board}; serving {which} pipeline deployment(s); Ctrl-C to stop", flush=True)  # noqa: T201
        # Ctrl-C stops the runner the way SIGTERM does: Prefect's runner handles SIGTERM, while SIGINT only
        # cancels asyncio's main task, which the runner outlives (the process then never exits).
        signal.signal(signal.SIGINT, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
        # A server we started dies with us, so there is nothing to pause on shutdown.
        serve(
            *deployments(which, cron=cron, interval=interval, repo=root, stages=stages),
            limit=limit,
            pause_on_shutdown=not own_server,
        )
