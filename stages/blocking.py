"""Stage ``blocking``: BiPoly category blocking between two sources (ALGORITHMS.md §1; issue 3).

Inputs (CLI): ``--ingested`` holds ``<source>/items.parquet`` (``item_id``, ``title``,
``category``[, ``fine_category``, ``title``]: blocking works from the columns that exist) and optionally
``taxonomy.parquet`` (``source``, ``fine_category``); optional ``--truth-pairs``, the labelled true product
pairs (``item_a``, ``item_b`` [, ``source_a``, ``source_b``]) used for tuning and scoring (without them nothing
is tuned: every method runs at ``blocking.untuned`` and the metrics say ``tuned: false`` with null coverage);
optional ``--truth-categories`` the planted category correspondence (``source_a``, ``fine_a``, ``source_b``,
``fine_b``); optional ``--embeddings`` a folder of ``<source>.parquet`` ICPA item embeddings (``item_id``,
``embedding``) for the ``icpa`` category similarity.

Outputs:
    <out>/category_pairs.parquet   method, left, right            every method's matched category pairs
    <out>/blocks.parquet           block_id, left, right          the pairs of the selected method
    <out>/candidate_pairs.parquet  left_item_id, right_item_id, block_id   its product pairs
    <metrics>                      per method coverage, reduction, tradeoff, n_pairs, objective, seconds,
                                   status, gap (+ category P/R, entity scenario, meta-blocking)
    <plots>_tradeoff.csv/.png, <plots>_grid.csv/.png   tradeoff per method; ω/η heat-map

The protocol is :func:`crossmatch.bipoly.blocking.run_blocking`; this script reads, calls it once, writes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import polars as pl
from matplotlib.figure import Figure
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from crossmatch.bipoly.blocking import run_blocking, warm_up
from crossmatch.bipoly.config import BlockingParams
from crossmatch.bipoly.figures import grid_figure, recall_curve_figure, save_png, tradeoff_figure
from crossmatch.errors import InputError
from crossmatch.truth import oriented_truth
from stages._common import atomic_dir, console, load_section, params_as, run, write_atomic, write_json


def make_executor(runner: str, workers: int) -> Executor:
    """The scale-out hook: the grid and per-partition solves run on this executor."""
    return ProcessPoolExecutor(max_workers=workers) if runner == "process" else ThreadPoolExecutor(max_workers=workers)


def load_source(root: Path, source: str) -> tuple[pl.DataFrame, list[str] | None]:
    path = root / source / "items.parquet"
    if not path.exists():
        raise InputError(f"no items for source '{source}'; run the ingest stage first", file=str(path))
    items = pl.read_parquet(path)
    tax_path = root / "taxonomy.parquet"
    cats = None
    if tax_path.exists():
        tax = pl.read_parquet(tax_path)
        if {"source", "fine_category"} <= set(tax.columns):
            cats = sorted(tax.filter(pl.col("source") == source).get_column("fine_category").unique().to_list()) or None
    return items, cats


def load_embeddings(root: str | None, source: str) -> pl.DataFrame | None:
    """``<root>/<source>.parquet`` (ICPA item embeddings) where it exists: a source without logs has none."""
    path = Path(root) / f"{source}.parquet" if root else None
    return pl.read_parquet(path) if path is not None and path.is_file() else None


def _write_plot(prefix: str, table: pl.DataFrame, fig: Figure) -> None:
    write_atomic(f"{prefix}.csv", lambda p: table.write_csv(p))
    write_atomic(f"{prefix}.png", lambda p: save_png(fig, p))


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.blocking", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="blocking")
    ap.add_argument("--ingested", default="data/ingested")
    ap.add_argument("--truth-pairs", default=None, help="labelled true pairs (none: nothing is tuned)")
    ap.add_argument("--truth-categories", default=None, help="planted category correspondence (synthetic only)")
    ap.add_argument("--embeddings", default=None, help="<dir>/<source>.parquet ICPA item embeddings (icpa similarity)")
    ap.add_argument("--out", default="data/blocking")
    ap.add_argument("--metrics", default="metrics/blocking.json")
    ap.add_argument("--plots", default="plots/blocking", help="prefix of the plot files")
    args = ap.parse_args()
    params = params_as(BlockingParams, load_section(args.section, args.params), args.section)

    root = Path(args.ingested)
    left_items, left_cats = load_source(root, params.left)
    right_items, right_cats = load_source(root, params.right)
    truth_pairs = None
    if args.truth_pairs:
        tp = Path(args.truth_pairs)
        if not tp.exists():
            raise InputError("labelled true pairs not found (leave out --truth-pairs to block without tuning)",
                             file=str(tp))
        truth_pairs = oriented_truth(pl.read_parquet(tp), params.left, params.right, file=str(tp))
    if args.truth_categories and not Path(args.truth_categories).exists():
        raise InputError("category truth not found", file=args.truth_categories)
    cat_truth = pl.read_parquet(args.truth_categories) if args.truth_categories else None
    emb = (load_embeddings(args.embeddings, params.left), load_embeddings(args.embeddings, params.right))
    warm_up()
    with make_executor(params.runner, params.workers) as executor, progress_bar() as on_progress:
        res = run_blocking(params, left_items=left_items, right_items=right_items, truth_pairs=truth_pairs,
                           left_categories=left_cats, right_categories=right_cats, category_truth=cat_truth,
                           executor=executor, on_progress=on_progress, embeddings=emb)
    metrics = res.metrics
    with atomic_dir(args.out) as tmp:
        res.category_pairs.write_parquet(tmp / "category_pairs.parquet")
        res.blocks.write_parquet(tmp / "blocks.parquet")
        if res.candidates is not None:  # else the blocks alone (blocking.max_listed_pairs); match reads those
            res.candidates.write_parquet(tmp / "candidate_pairs.parquet")
    _write_plot(f"{args.plots}_tradeoff", *tradeoff_figure(metrics["methods"]))
    _write_plot(f"{args.plots}_grid", *grid_figure(res.categories.grid, params.select))
    if res.curve is not None:
        _write_plot(f"{args.plots}_recall_curve", *recall_curve_figure(res.curve, params.metablocking.max_pairs))
    else:  # outputs are `persist: true` (DVC leaves them in place): no stale curve from an earlier run
        for suffix in (".csv", ".png"):
            Path(f"{args.plots}_recall_curve{suffix}").unlink(missing_ok=True)
    write_json(args.metrics, metrics)
    console.print(f"blocking: {res.summary(params.select, args.out)}")


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A transient progress bar with an ETA on stderr, one task per stage (grid, ILPs) of the library."""
    columns = (TextColumn("blocking: {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    # off a terminal (DVC without the flow's pty) rich would only print an empty line
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield update


if __name__ == "__main__":
    run("blocking", main)
