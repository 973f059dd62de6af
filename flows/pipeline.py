"""The crossmatch pipeline as a Prefect 3 flow: one task per DVC stage, in ``dvc.yaml`` order.

Each task runs ``dvc repro --single-item <stage>``: DVC decides whether the stage is stale
and owns the cache, Prefect owns scheduling, retries, tag routing and the run's artifacts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from flows.dvc import dvc, find_repo
from flows.stages import IO_RETRY_DELAYS, STAGES, StageSpec


@task(cache_policy=NONE)
def repro_stage(stage: str, repo: str, force: bool = False) -> str:
    """Run one DVC stage (``dvc repro --single-item``) and return DVC's output."""
    args = ["repro", "--single-item", stage] + (["--force"] if force else [])
    proc = dvc(args, Path(repo))
    logger = get_run_logger()
    for line in (proc.stdout + proc.stderr).strip().splitlines()[-10:]:
        logger.info(line)
    return proc.stdout


def stage_task(spec: StageSpec) -> Any:
    """The Prefect task for one stage: its tags, and retries with backoff if it is I/O-bound."""
    return repro_stage.with_options(
        name=f"dvc-{spec.name}",
        tags=spec.tags,
        retries=len(IO_RETRY_DELAYS) if spec.io else 0,
        retry_delay_seconds=IO_RETRY_DELAYS if spec.io else 0,
    )


def _flatten(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (int, float, str, bool)) or obj is None:
        out[prefix] = obj


def collect_metrics(repo: Path) -> dict[str, dict[str, Any]]:
    """Every ``metrics/*.json`` flattened to ``{file stem: {dotted key: value}}``."""
    found: dict[str, dict[str, Any]] = {}
    for f in sorted((repo / "metrics").glob("*.json")):
        flat: dict[str, Any] = {}
        try:
            _flatten("", json.loads(f.read_text()), flat)
        except json.JSONDecodeError:
            continue
        found[f.stem] = flat
    return found


def headline_rows(metrics: dict[str, dict[str, Any]], limit: int = 60) -> list[dict[str, Any]]:
    """Numeric metrics as table rows (``file``, ``metric``, ``value``), capped at ``limit``."""
    rows = []
    for file, flat in metrics.items():
        for key, value in flat.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"file": file, "metric": key, "value": round(float(value), 6)})
    return rows[:limit]


def metrics_markdown(metrics: dict[str, dict[str, Any]], ran: list[str]) -> str:
    lines = ["# crossmatch run", "", f"Stages run: {', '.join(ran)}", ""]
    for file, flat in metrics.items():
        lines += [f"## {file}", "", "| metric | value |", "|---|---|"]
        for key, value in list(flat.items())[:40]:
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            lines.append(f"| {key} | {shown} |")
        lines.append("")
    return "\n".join(lines)


@flow(name="crossmatch-pipeline", log_prints=True)
def pipeline(repo: str | None = None, stages: list[str] | None = None, force: bool = False) -> dict[str, Any]:
    """Run the DVC stages in order; a failing stage fails the flow and nothing after it runs.

    Args:
        repo: the project folder (default: the nearest one above the working directory).
        stages: a subset of stage names to run (default: all, in ``dvc.yaml`` order).
        force: re-run stages even when DVC finds them up to date.
    """
    root = find_repo(repo)
    wanted = [s for s in STAGES if stages is None or s.name in stages]
    if stages is not None:
        unknown = sorted(set(stages) - {s.name for s in STAGES})
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; known: {[s.name for s in STAGES]}")
    ran = []
    for spec in wanted:
        stage_task(spec)(spec.name, str(root), force)
        ran.append(spec.name)
    metrics = collect_metrics(root)
    create_table_artifact(
        key="crossmatch-metrics", table=headline_rows(metrics), description="Headline metrics of this run"
    )
    create_markdown_artifact(
        key="crossmatch-report", markdown=metrics_markdown(metrics, ran), description="Metrics of this run"
    )
    return {"stages": ran, "metrics": metrics}


if __name__ == "__main__":
    pipeline()
