"""The crossmatch pipeline as a Prefect 3 flow: one task per DVC stage, in ``dvc.yaml`` order.

Each task runs ``dvc repro --single-item <stage>``: DVC decides whether the stage is stale
and owns the cache, Prefect owns scheduling, retries, tag routing and the run's artifacts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.states import State

from flows import live
from flows.dvc import DvcError, dvc_stream, find_repo
from flows.fanout import fan_out
from flows.stages import IO_RETRY_DELAYS, StageSpec, resolve_pipeline


@task(cache_policy=NONE)
def repro_stage(stage: str, repo: str, force: bool = False) -> str:
    """Run one DVC stage (``dvc repro --single-item``), its output streamed to the run log and the
    terminal view as it comes (flows.live); return DVC's output."""
    args = ["repro", "--single-item", stage] + (["--force"] if force else [])
    lines: list[str] = []
    with live.stage_output(stage.rsplit(":", 1)[-1]) as (on_line, on_frame):

        def line(text: str) -> None:
            lines.append(text)
            on_line(text)

        dvc_stream(args, Path(repo), line, on_frame)
    return "\n".join(lines)


def retry_unless_bad_input(task: Any, task_run: Any, state: State) -> bool:
    """Retry I/O failures, but not a stage that rejected its input (exit 2): that never heals."""
    try:
        state.result()
    except DvcError as exc:
        return not exc.bad_input
    except Exception:
        return True
    return False


def stage_task(spec: StageSpec) -> Any:
    """The Prefect task for one stage: its tags, and retries with backoff if it is I/O-bound."""
    return repro_stage.with_options(
        name=f"dvc-{spec.name}",
        tags=spec.tags,
        retries=len(IO_RETRY_DELAYS) if spec.io else 0,
        retry_delay_seconds=IO_RETRY_DELAYS if spec.io else 0,
        retry_condition_fn=retry_unless_bad_input if spec.io else None,
    )


def _flatten(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (int, float, str, bool)) or obj is None:
        out[prefix] = obj


def collect_metrics(repo: Path, metrics_dir: str = "metrics") -> dict[str, dict[str, Any]]:
    """Every ``<metrics_dir>/*.json`` flattened to ``{file stem: {dotted key: value}}``."""
    found: dict[str, dict[str, Any]] = {}
    for f in sorted((repo / metrics_dir).glob("*.json")):
        flat: dict[str, Any] = {}
        try:
            _flatten("", json.loads(f.read_text()), flat)
        except json.JSONDecodeError:
            continue
        found[f.stem] = flat
    return found


def headline_rows(metrics: dict[str, dict[str, Any]], headline_file: str, limit: int = 200) -> list[dict[str, Any]]:
    """Table rows (``file``, ``metric``, ``value``): the pipeline's headline metrics from its evaluate
    stage when that file exists, otherwise every numeric metric of the run (capped at ``limit``)."""
    chosen = {headline_file: metrics[headline_file]} if headline_file in metrics else metrics
    rows = []
    for file, flat in chosen.items():
        for key, value in flat.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"file": file, "metric": key, "value": round(float(value), 6)})
    return rows[:limit]


def metrics_markdown(metrics: dict[str, dict[str, Any]], ran: list[str],
                     timings: list[dict[str, Any]] | None = None) -> str:
    lines = ["# crossmatch run", "", f"Stages run: {', '.join(ran)}", ""]
    if timings:
        lines += ["| stage | status | seconds |", "|---|---|---|"]
        lines += [f"| {t['stage']} | {t['status']} | {t['seconds']:.1f} |" for t in timings]
        lines.append("")
    for file, flat in metrics.items():
        lines += [f"## {file}", "", "| metric | value |", "|---|---|"]
        for key, value in list(flat.items())[:40]:
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            lines.append(f"| {key} | {shown} |")
        lines.append("")
    return "\n".join(lines)


def _slug(name: str) -> str:
    """An artifact key part: Prefect allows lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "pipeline"


def shared_data_dir(root: Path) -> Path:
    return root.parent / "shared" / "data"


@flow(name="crossmatch-pipeline", log_prints=True)
def pipeline(
    name: str = "default",
    repo: str | None = None,
    stages: list[str] | None = None,
    force: bool = False,
    runner: str = "thread",
    workers: int = 2,
) -> dict[str, Any]:
    """Run one pipeline's DVC stages in order; a failing stage fails the flow and nothing after it runs.

    Args:
        name: ``default`` (synthetic data), ``real`` (``../shared/data``; skipped with a
            message when that folder is absent), or a project folder with a ``dvc.yaml`` (what
            ``crossmatch init`` writes, e.g. ``pipelines/mine``).
        repo: the project folder (default: the nearest one above the working directory).
        stages: a subset of stage names to run (default: all, in ``dvc.yaml`` order).
        force: re-run stages even when DVC finds them up to date.
        runner: how the items of a fan-out stage (a ``foreach`` group such as one Pareto
            fine-tune per target) run concurrently: ``thread``, ``process``, ``dask`` or ``ray``.
            ``serial`` leaves them to ``dvc repro``, one after the other.
        workers: concurrent items for the thread/process/local-dask runners.
    """
    root = find_repo(repo)
    spec = resolve_pipeline(name, root)
    logger = get_run_logger()
    if spec.needs_shared_data and not shared_data_dir(root).is_dir():
        msg = f"skipped the '{name}' pipeline: {shared_data_dir(root)} is absent (a fresh clone has no real data)"
        logger.warning(msg)
        return {"pipeline": name, "stages": [], "skipped": msg, "metrics": {}}
    known = [s.name for s in spec.stages]
    if stages is not None:
        unknown = sorted(set(stages) - set(known))
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown} in the '{name}' pipeline; known: {known}")
    live.flow_started()
    ran = []
    timings: list[dict[str, Any]] = []
    for stage in spec.stages:
        if stages is not None and stage.name not in stages:
            continue
        with live.stage(stage.name) as record:
            if stage.fanout and runner != "serial":
                items = fan_out(spec.target(stage.name), root, runner=runner, workers=workers, force=force,
                                tags=stage.tags)
                record.status = "done" if items else "up to date"
            else:
                output = stage_task(stage)(spec.target(stage.name), str(root), force)
                record.status = live.stage_status_from_output(output)
        timings.append(record.as_row())
        ran.append(stage.name)
    metrics = collect_metrics(root, spec.metrics_dir)
    create_table_artifact(
        key=f"crossmatch-{_slug(name)}-metrics",
        table=headline_rows(metrics, spec.headline_file),
        description=f"Headline metrics of the {name} pipeline",
    )
    create_markdown_artifact(
        key=f"crossmatch-{_slug(name)}-report", markdown=metrics_markdown(metrics, ran, timings), description=f"Metrics of the {name} pipeline"
    )
    report = root / spec.report
    return {"pipeline": name, "stages": ran, "timings": timings, "metrics": metrics,
            "report": str(report) if report.exists() else None}


def run_pipeline(name: str = "default", **kwargs: Any) -> State:
    """Run :func:`pipeline` in-process and return its final state (never raises on stage failure)."""
    return pipeline(name=name, return_state=True, **kwargs)


if __name__ == "__main__":
    pipeline()
