"""The ``crossmatch`` command line: generate data, run or serve the pipeline, inspect stages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """An expected failure (:class:`flows.guard.CliError`: not a repository, busy) as one red line and
    its exit code, without a traceback."""
    from flows.guard import CliError

    try:
        yield
    except CliError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


@app.command()
def generate(
    preset: Annotated[str, typer.Option(help="tiny | default | large")] = "default",
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path, typer.Option(help="folder for the observable data")] = Path("data/raw"),
    truth: Annotated[Path, typer.Option(help="folder for the hidden truth")] = Path("data/truth"),
    fmt: Annotated[str, typer.Option("--format", help="parquet | csv")] = "parquet",
    layout: Annotated[str, typer.Option(help="single | per_source")] = "single",
) -> None:
    """Generate a synthetic multi-source world with planted truth (outside the DVC pipeline)."""
    from crossmatch.errors import CrossmatchError
    from crossmatch.synth import generate_world, make_config
    from stages._common import atomic_dir
    from stages.generate import GenerateParams, write_world

    try:
        params = GenerateParams(preset=preset, seed=seed, raw_format=fmt, layout=layout)  # type: ignore[arg-type]
        cfg = make_config(preset, seed)
        with console.status(f"generating the '{preset}' world") as status:
            world = generate_world(cfg, progress=lambda m: status.update(f"generating: {m}"))
        with atomic_dir(out) as raw_tmp, atomic_dir(truth) as truth_tmp:
            summary = write_world(world, raw_tmp, truth_tmp, params)
    except CrossmatchError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"{summary['events']:,} events, {len(summary['sources'])} sources -> {out}, truth -> {truth}")


@app.command()
def init(
    logs: Annotated[Path, typer.Option(help="interaction logs: a file with a source column, or a folder of <source>.csv")],
    items: Annotated[Path, typer.Option(help="item catalogues: a file with a source column, or a folder")],
    categories: Annotated[Path, typer.Option(help="the shared coarse categories (one file, column 'category')")],
    taxonomy: Annotated[Optional[Path], typer.Option(help="optional fine taxonomy: source, fine_category, category")] = None,
    truth_dir: Annotated[Optional[Path], typer.Option(
        help="optional folder with concepts.parquet / product_matches.parquet / fine_categories.parquet")] = None,
    left: Annotated[Optional[str], typer.Option(help="left source of blocking and match (default: the first)")] = None,
    right: Annotated[Optional[str], typer.Option(help="right source (default: the second)")] = None,
    out: Annotated[Path, typer.Option(help="pipeline folder to write (inside the project)")] = Path("pipelines/mine"),
    force: Annotated[bool, typer.Option(help="replace an existing dvc.yaml / params.yaml there")] = False,
    repo: Annotated[Optional[Path], typer.Option(help="project folder")] = None,
) -> None:
    """Set up a pipeline on your own data: check the files, find the sources, write <out>/dvc.yaml and
    <out>/params.yaml (sources filled in, no synthetic stage, truth only if given). Exit 2 on bad input."""
    from crossmatch.errors import CrossmatchError
    from flows.guard import repository
    from flows.init import init_pipeline

    with _friendly_errors():
        root = repository(repo)
    try:
        res = init_pipeline(root=root, logs=logs, items=items, categories=categories, taxonomy=taxonomy,
                            truth_dir=truth_dir, left=left, right=right, out=out, force=force)
    except CrossmatchError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    s = res.summary
    console.print(f"sources {', '.join(s.sources)} ({s.log_rows:,} log rows); blocking and match: {res.left} x "
                  f"{res.right}; truth: {', '.join(res.truth) or 'none'}", highlight=False, soft_wrap=True)
    for note in res.notes:
        console.print(f"  note: {note}", highlight=False, soft_wrap=True)
    console.print(f"wrote {res.dvcfile} and {res.params} in {_shown_path(root)}; next, from there:\n  "
                  f"[bold]{res.next_command}[/]", highlight=False, soft_wrap=True)


@app.command()
def run(
    stages: Annotated[Optional[str], typer.Option(help="comma-separated subset of stages")] = None,
    force: Annotated[bool, typer.Option(help="re-run stages DVC finds up to date")] = False,
    pipeline_name: Annotated[str, typer.Option("--pipeline", help="default | real | a folder with a dvc.yaml (crossmatch init)")] = "default",
    repo: Annotated[Optional[Path], typer.Option(help="project folder")] = None,
    runner: Annotated[str, typer.Option(help="fan-out of foreach stages: thread | process | dask | ray | serial")] = "thread",
    workers: Annotated[int, typer.Option(help="concurrent fan-out items")] = 2,
) -> None:
    """Run the pipeline once through the Prefect flow (temporary local API, offline), stage by stage: a
    start and an end line per stage, its output as it runs, a summary table and the report's path.

    Exit codes: 0 done; 2 a stage rejected its input or params (its message is printed, no traceback);
    1 any other failure; 3 busy (another run or a DVC command holds the project).
    """
    from flows.guard import check_dvc_idle, repository, run_lock

    wanted = [s.strip() for s in stages.split(",")] if stages else None
    with _friendly_errors():
        root = repository(repo)
        _pipeline_spec(pipeline_name, root)
        # held for the whole run: a second `crossmatch run` here stops with "busy" before it starts a
        # second temporary Prefect API on the same database
        with run_lock(root):
            check_dvc_idle(root)
            console.print(f"[bold]crossmatch run[/]: the {pipeline_name} pipeline in {root}", highlight=False,
                          soft_wrap=True)
            # after the checks: importing Prefect takes seconds
            from flows.live import RunView, run_logs_off_the_console, watching
            from flows.pipeline import run_pipeline

            view = RunView(console)
            with watching(view), run_logs_off_the_console():
                state = run_pipeline(pipeline_name, repo=str(root), stages=wanted, force=force,
                                     runner=runner, workers=workers)
    _run_summary(view, state, root)


def _pipeline_spec(name: str, root: Path) -> Any:
    """The pipeline ``--pipeline`` names, or exit 2 with one line saying what is accepted."""
    from flows.stages import UnknownPipeline, resolve_pipeline

    try:
        return resolve_pipeline(name, root)
    except UnknownPipeline as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _run_summary(view: Any, state: Any, root: Path) -> None:
    """After the run: the table of stages, then the report (done) or why it stopped, and the exit code."""
    from flows.dvc import DvcError

    if view.records:
        console.print(view.summary())
    logs = f"; logs: prefect flow-run logs {view.flow_run[1]}" if view.flow_run else ""
    if state.is_completed():
        result = state.result()
        if result.get("skipped"):
            console.print(f"[yellow]{result['skipped']}[/]", highlight=False, soft_wrap=True)
            return
        report = result.get("report")
        where = f"report: [bold]{_shown_path(Path(report))}[/]" if report else "no report written by these stages"
        console.print(f"[green]pipeline completed[/]; {where}{logs}", highlight=False, soft_wrap=True)
        return
    exc = state.result(raise_on_failure=False)
    failed = view.failed_stage()
    at = f" at [bold]{failed.stage}[/]" if failed else ""
    if isinstance(exc, DvcError):
        # the stage's own message is already on the screen (its output): not repeated here
        if exc.bad_input:
            console.print(f"[red]pipeline stopped{at}:[/] the stage rejected its input or params "
                          f"(exit 2, message above){logs}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        code = f"exit {exc.stage_exit}" if exc.stage_exit is not None else "DVC failed"
        console.print(f"[red]pipeline failed{at}[/] ({code}; its output is above){logs}", highlight=False,
                      soft_wrap=True)
        raise typer.Exit(1)
    if isinstance(exc, ValueError):  # the flow's own checks (unknown pipeline or stage)
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    console.print(f"[red]pipeline {state.name}{at}:[/] {state.message}{logs}", highlight=False, soft_wrap=True)
    if isinstance(exc, BaseException):
        from rich.traceback import Traceback

        console.print(Traceback.from_exception(type(exc), exc, exc.__traceback__))
    raise typer.Exit(1)


@app.command("er")
def entity_resolution(
    data: Annotated[Path, typer.Argument(help="folder with tableA.csv, tableB.csv [, train.csv, valid.csv, test.csv]")],
    out: Annotated[Path, typer.Option(help="folder for candidates, pairs, matches.csv, metrics and curves")] = Path("out/er"),
    params: Annotated[Optional[Path], typer.Option(help="params file with an `er` section [default: the "
                                                      "repository's pipelines/real/params.yaml]")] = None,
    section: Annotated[str, typer.Option(help="the params section")] = "er",
    no_labels: Annotated[bool, typer.Option("--no-labels", help="ignore the pair files even when present")] = False,
) -> None:
    """Match the records of two tables: er_block then er_match (the README's two commands), matches.csv, a summary.

    Only train.csv chooses anything; without labelled pairs the unsupervised rule decides. Exit codes: 0 done;
    2 bad input or params (the stage's own one-line message); 1 any other failure.
    """
    from flows.er import ErOutputs, run_er, summary_rows, write_matches

    chosen = params if params is not None else Path(__file__).resolve().parents[1] / "pipelines/real/params.yaml"
    outputs = ErOutputs.under(out)
    failed, code = run_er(data, outputs, params=chosen, section=section, no_labels=no_labels,
                          on_stage=lambda s: console.print(f"[bold]crossmatch er[/]: {s} on {data}", highlight=False))
    if failed is not None:
        raise typer.Exit(code)
    n = write_matches(outputs)
    table = Table(title=f"crossmatch er: {data.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary_rows(outputs, n):
        table.add_row(key, value)
    console.print(table)


@app.command()
def serve(
    cron: Annotated[Optional[str], typer.Option(help='cron schedule, e.g. "0 3 * * *"')] = None,
    interval: Annotated[Optional[float], typer.Option(help="or: seconds between runs")] = None,
    pipeline_name: Annotated[str, typer.Option("--pipeline", help="default | real | all")] = "default",
    port: Annotated[Optional[int], typer.Option(help="port of the local Prefect server")] = None,
    limit: Annotated[Optional[int], typer.Option(help="at most this many runs at once")] = None,
    repo: Annotated[Optional[Path], typer.Option(help="project folder")] = None,
    stages: Annotated[Optional[str], typer.Option(help="comma-separated subset of stages each run executes")] = None,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="start the local server with its dashboard (Prefect UI)")] = False,
) -> None:
    """Serve scheduled deployments (starts a local Prefect server unless PREFECT_API_URL is set;
    --ui: with the dashboard, whose address the status line prints)."""
    from flows.deploy import serve_deployments

    if (cron is None) == (interval is None):
        console.print("[red]error:[/] give exactly one of --cron or --interval")
        raise typer.Exit(2)
    serve_deployments(pipeline_name, cron=cron, interval=interval, port=port, limit=limit,
                      repo=str(repo) if repo else None,
                      stages=[s.strip() for s in stages.split(",")] if stages else None, ui=ui)


@app.command("stages")
def list_stages(
    pipeline_name: Annotated[str, typer.Option("--pipeline", help="default | real | a folder with a dvc.yaml (crossmatch init)")] = "default",
    repo: Annotated[Optional[Path], typer.Option(help="project folder")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List the stages in order, their tags, and whether DVC finds each up to date."""
    from flows.dvc import DvcError, stage_status
    from flows.guard import DVC_LOCK_MESSAGE, busy_with_dvc, check_dvc_idle, repository
    with _friendly_errors():
        root = repository(repo)
        spec = _pipeline_spec(pipeline_name, root)
        check_dvc_idle(root)
        try:
            changed = stage_status(root, spec.dvcfile)
        except DvcError as exc:
            if DVC_LOCK_MESSAGE not in str(exc):
                raise
            raise busy_with_dvc(root, None) from None  # taken between the check and `dvc status`
    rows: list[dict[str, Any]] = []
    for stage in spec.stages:
        target = spec.target(stage.name)
        stale = [k for k in changed if k == target or k.startswith(f"{target}@")]
        rows.append({"stage": stage.name, "tags": sorted(stage.tags), "up_to_date": not stale})
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"{pipeline_name} pipeline ({spec.dvcfile})")
    for col in ("stage", "tags", "status"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["stage"], ", ".join(r["tags"]), "[green]up to date[/]" if r["up_to_date"] else "[yellow]changed[/]")
    console.print(table)


@app.command()
def readme(
    path: Annotated[Path, typer.Option(help="README to update")] = Path("README.md"),
    metrics_dir: Annotated[Path, typer.Option(help="folder of the metrics files")] = Path("metrics"),
    check: Annotated[bool, typer.Option(help="only check that the README is up to date")] = False,
) -> None:
    """Regenerate the README's results table from metrics/*.json."""
    from crossmatch.report.readme import replace_block, results_block

    files = {f.stem: json.loads(f.read_text()) for f in sorted(metrics_dir.glob("*.json"))}
    text = path.read_text()
    new = replace_block(text, results_block(files))
    if check:
        if new != text:
            console.print("[red]README results table is out of date: run `crossmatch readme`[/]")
            raise typer.Exit(1)
        console.print("README results table is up to date")
        return
    path.write_text(new)
    console.print(f"updated the results table in {path}")


def _render_comparison(comp: Any, pipeline_name: str) -> Table:
    """The comparison as a table: one row per changed param and per metric, one column per experiment."""
    from crossmatch.experiments import cell

    n_exp, n_eq = len(comp.columns), comp.unchanged_params
    table = Table(title=f"{n_exp} experiment{'s' * (n_exp != 1)}, {pipeline_name} pipeline", title_justify="left",
                  caption=f"{n_eq} param{'s' * (n_eq != 1)} equal in all, not shown", caption_justify="left")
    table.add_column("", overflow="fold")  # a narrow terminal folds a long key instead of cutting it
    for label in comp.columns:
        table.add_column(label, justify="right", no_wrap=True)
    table.add_row("[bold]params that differ[/]" if comp.params else "[bold]params[/]: none differ")
    for key, values in comp.params:
        table.add_row(f"  {key}", *(cell(v) for v in values))
    for path, rows in comp.metrics:
        table.add_row(f"[bold]{path}[/]")
        for key, values in rows:
            table.add_row(f"  {key}", *(cell(v) for v in values))
    return table


@app.command("exps")
def experiments(
    pipeline_name: Annotated[str, typer.Option("--pipeline", help="whose headline metrics: default | real | a folder with a dvc.yaml")] = "default",
    repo: Annotated[Optional[Path], typer.Option(help="project folder")] = None,
    num: Annotated[int, typer.Option("-n", "--num", help="commits back from HEAD, with their experiments")] = 1,
    all_commits: Annotated[bool, typer.Option("-A", "--all-commits", help="every commit")] = False,
    all_metrics: Annotated[bool, typer.Option(help="every metrics file DVC reports, not only the pipeline's headline")] = False,
    only_changed: Annotated[bool, typer.Option(help="drop metric rows equal in every experiment")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Compare experiments on one screen: the params that differ and the headline metrics, one column per experiment (`dvc exp show`, transposed and filtered)."""
    from crossmatch.errors import CrossmatchError
    from crossmatch.experiments import compare, experiments_from_json
    from flows.dvc import DvcError, dvc
    from flows.guard import repository

    with _friendly_errors():
        root = repository(repo)
    spec = _pipeline_spec(pipeline_name, root)
    args = ["exp", "show", "--json", "--no-fetch"] + (["-A"] if all_commits else ["-n", str(max(num, 1))])
    try:
        records = json.loads(dvc(args, root).stdout)
        headline = None if all_metrics else [f"{spec.metrics_dir}/{spec.headline_file}.json"]
        comp = compare(experiments_from_json(records), metric_files=headline, only_changed_metrics=only_changed)
    except (DvcError, CrossmatchError, json.JSONDecodeError) as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        # DVC's own reason is its last line ("ERROR: ..."); the first only names the command
        why = lines[-1] if isinstance(exc, DvcError) and lines else (lines[0] if lines else type(exc).__name__)
        console.print(f"[red]error:[/] {why}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        console.print_json(json.dumps(comp.to_dict()))
        return
    console.print(_render_comparison(comp, pipeline_name))
    for path in comp.missing_files:
        console.print(f"[yellow]{path}: in none of these experiments (its stage has not run)[/]", highlight=False)
    for label, msg in comp.errors:
        console.print(f"[yellow]{label}: not shown, DVC reports an error: {msg}[/]", highlight=False, soft_wrap=True)


@app.command()
def concurrency() -> None:
    """Create the tag concurrency limits on the Prefect API in use: dvc = 1, gpu = one per CUDA device of this machine (one per CPU core without one; CROSSMATCH_GPU_SLOTS overrides)."""
    from flows.server import ensure_tag_limits

    for tag, value in ensure_tag_limits().items():
        console.print(f"tag '{tag}': at most {value} task run(s) at a time")


if __name__ == "__main__":
    app()
