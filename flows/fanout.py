"""Fan-out of a DVC ``foreach`` stage over a Prefect task runner, then ``dvc commit``.

DVC runs stages one at a time (two ``dvc repro`` in a repository fail on its lock), so the
items of a ``foreach`` group — e.g. one Pareto fine-tune per target source — would run in
sequence. Here the flow asks DVC which items are stale and what their commands are
(``dvc repro --dry``), runs those commands concurrently on the task runner chosen by the
``runner`` parameter (``thread``, ``process``, ``dask`` or ``ray``), and finally records the
outputs with ``dvc commit`` one item at a time, so DVC's cache and ``dvc.lock`` stay the
single source of truth: a later ``dvc repro`` finds the items up to date.

Tags: an item runs its stage's command itself, not ``dvc repro``, so it does not take DVC's
repository lock and does not carry the ``dvc`` tag (whose limit of 1 would run the items one at
a time); it keeps its resource tag (``gpu``: one per GPU slot, ``flows.server.gpu_slots``). The
``dvc commit`` that records the items is a task tagged ``dvc``: it does take the lock.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from flows import live
from flows.dvc import DvcError, dvc, dvc_env, stream

RUNNERS = ("thread", "process", "dask", "ray")
_RUNNING = re.compile(r"^Running stage '([^']+)':\s*$")


@dataclass(frozen=True)
class ItemCommand:
    stage: str  # e.g. "pareto_finetune@alpha"
    cmd: str


def stale_item_commands(group_target: str, repo: Path, force: bool = False) -> list[ItemCommand]:
    """The stale items of a foreach group and their commands, as ``dvc repro --dry`` reports them."""
    args = ["repro", "--dry", "--single-item", group_target] + (["--force"] if force else [])
    lines = dvc(args, repo).stdout.splitlines()
    items: list[ItemCommand] = []
    for i, line in enumerate(lines):
        m = _RUNNING.match(line)
        if m and i + 1 < len(lines) and lines[i + 1].startswith("> "):
            items.append(ItemCommand(m.group(1), lines[i + 1][2:].strip()))
    return items


@task(cache_policy=NONE, task_run_name="{item.stage}")
def run_item(item: ItemCommand, repo: str) -> str:
    """Run one item's command as DVC would (same working directory and environment), its output streamed
    to the run log and the terminal view (flows.live)."""
    with live.stage_output(item.stage) as (on_line, on_frame):
        code, tail = stream(shlex.split(item.cmd), Path(repo), on_line, on_frame, env=dvc_env(), keep=20)
    if code != 0:
        # a DvcError, like a stage run through `dvc repro`: exit 2 (bad input) is marked and never retried
        raise DvcError(f"{item.stage}: `{item.cmd}` exited with {code}:\n" + "\n".join(tail), code)
    return item.stage


@task(cache_policy=NONE, task_run_name="dvc-commit-{group}")
def commit_items(stages: list[str], repo: str, group: str) -> list[str]:
    """Record the items' outputs in the DVC cache and ``dvc.lock``, one ``dvc commit`` per item."""
    for stage in stages:
        dvc(["commit", "--force", stage], Path(repo))
    return stages


def flow_api_url() -> str | None:
    """The Prefect API of the flow run in progress: the one its task runs must report to. Under
    ``crossmatch run`` it is a temporary local API that only this process knows of."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    client = ctx.client if ctx else None
    return str(client.api_url).rstrip("/") if client is not None else None


def make_task_runner(runner: str, workers: int = 2, address: str | None = None,
                     api_url: str | None = None) -> TaskRunner[Any]:
    """The Prefect task runner for ``runner`` (dask and ray need the optional extras). ``api_url``: the
    Prefect API the worker processes of a local Dask cluster report to (without it, each worker process
    that does not inherit ``PREFECT_API_URL`` starts a temporary API of its own: ~34 s and ~220 MB each)."""
    if runner == "thread":
        return ThreadPoolTaskRunner(max_workers=workers)
    if runner == "process":
        return ProcessPoolTaskRunner(max_workers=workers)
    if runner == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:
            raise RuntimeError("runner 'dask' needs the extra: pip install -c constraints.txt -e '.[dask]'") from exc
        address = address or os.environ.get("CROSSMATCH_DASK_ADDRESS")
        if address:
            return DaskTaskRunner(address=address)
        # `env` is set in each worker process (dask's Nanny) before it imports Prefect.
        env = {"PREFECT_API_URL": api_url} if api_url else {}
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                              "env": env})
    if runner == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as exc:
            raise RuntimeError("runner 'ray' needs the extra: pip install -c constraints.txt -e '.[ray]'") from exc
        return RayTaskRunner(address=address or os.environ.get("CROSSMATCH_RAY_ADDRESS"))
    raise ValueError(f"unknown runner '{runner}'; choose one of {RUNNERS}")


def fan_out(group_target: str, repo: Path, *, runner: str = "thread", workers: int = 2, force: bool = False,
            address: str | None = None, tags: set[str] | None = None) -> list[str]:
    """Run the stale items of a foreach group concurrently, then ``dvc commit`` each of them.

    Must be called inside a flow. Returns the item names that ran (empty when all were up to date).
    """
    items = stale_item_commands(group_target, repo, force=force)
    group = group_target.rsplit(":", 1)[-1]
    if not items:
        live.note(group, "every item is up to date")
        return []
    live.note(group, f"{len(items)} item(s) on the '{runner}' runner: {', '.join(i.stage for i in items)}")
    with make_task_runner(runner, workers, address, api_url=flow_api_url()) as task_runner:
        item_task = run_item.with_options(tags=(tags or set()) - {"dvc"})  # see the module doc
        futures = [task_runner.submit(item_task, parameters={"item": it, "repo": str(repo)}) for it in items]
        done = [f.result() for f in futures]
    return list(commit_items.with_options(tags={"dvc"})(done, str(repo), group))


