"""Scheduled deployments of the pipelines, served with ``flow.to_deployment`` + ``prefect.serve``.

``crossmatch serve --cron "0 3 * * *"`` starts a local Prefect server in the background (or
uses ``PREFECT_API_URL``), creates the tag concurrency limits (``flows.server.tag_limits``) there,
and serves one deployment per pipeline until interrupted; the server stops on exit.

Deployments to an existing server and a work pool are declared in ``prefect.yaml`` (``prefect
deploy --all``), for ``prefect worker start``; see the README. Prefect sends flow runs, not tasks,
to work pools, so :func:`routed_pipeline` cuts a pipeline into stretches of cpu and gpu stages and
runs each gpu stretch as a run of a deployment on the GPU pool.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from prefect import flow, serve
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from flows.dvc import find_repo
from flows.pipeline import pipeline, shared_data_dir
from flows.server import dashboard_url, ensure_tag_limits, prefect_server
from flows.stages import PipelineSpec, resolve_pipeline


def stretches(pipeline_spec: PipelineSpec, stages: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """A pipeline's stages (or the chosen subset), in order, cut into maximal runs of one resource:
    ``[("cpu", [...]), ("gpu", [...]), ...]``."""
    known = [s.name for s in pipeline_spec.stages]
    unknown = sorted(set(stages or []) - set(known))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown} in the '{pipeline_spec.name}' pipeline; known: {known}")
    out: list[tuple[str, list[str]]] = []
    for spec in pipeline_spec.stages:
        if stages is not None and spec.name not in stages:
            continue
        if out and out[-1][0] == spec.resource:
            out[-1][1].append(spec.name)
        else:
            out.append((spec.resource, [spec.name]))
    return out


@flow(name="crossmatch-routed", log_prints=True)
def routed_pipeline(
    name: str = "default",
    gpu_deployment: str = "crossmatch-pipeline/crossmatch-default-gpu",
    stages: list[str] | None = None,
    force: bool = False,
    runner: str = "thread",
    workers: int = 2,
) -> list[dict[str, Any]]:
    """Run a pipeline (``default``, ``real`` or a pipeline folder) with its gpu-tagged stages on the GPU pool.

    The cpu stretches run here, as subflows; each gpu stretch runs as a flow run of ``gpu_deployment`` (the
    same pipeline flow, deployed to the GPU pool), and this run waits for it. Both workers must see the
    project at the path their deployment recorded (one machine, or a shared folder). A stretch that does not
    complete fails this run, and nothing after it runs.
    """
    done: list[dict[str, Any]] = []
    for resource, stretch in stretches(resolve_pipeline(name, find_repo(None)), stages):
        if resource == "gpu":
            params = {"name": name, "stages": stretch, "force": force, "runner": runner, "workers": workers}
            run = run_deployment(gpu_deployment, parameters=params, timeout=None, poll_interval=3)
            assert isinstance(run, FlowRun)  # called from a sync flow: the sync API (no coroutine)
            state = run.state
            if state is None or not state.is_completed():
                raise RuntimeError(f"{gpu_deployment} run {run.name} for {stretch} ended "
                                   f"{state.name if state else 'without a state'}: {state.message if state else ''}")
            done.append({"resource": resource, "stages": stretch, "flow_run_id": str(run.id)})
        else:
            pipeline(name=name, stages=stretch, force=force, runner=runner, workers=workers)
            done.append({"resource": resource, "stages": stretch, "flow_run_id": None})
    return done


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
