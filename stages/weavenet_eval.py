"""Stage ``weavenet_eval``: WeaveNet vs GS / PolyMin / DACC / PowerBalance, like the paper's Tables 2–3 (§3.7, §4.3).

For every distribution × N in params, ``instances`` fresh test instances (seeded per cell) are solved by
each algorithm (a process pool over ``workers``) and by the trained WeaveNet (binarised, then repaired).
Outputs:
    --metrics   flat JSON: per cell and method mean SEq / Bal / Egal, stable rate, WeaveNet win/tie/loss,
                repair rate and cost change, and the external-check summary
    --report    markdown tables laid out like Tables 2 (SEq) and 3 (Bal), plus the external check
    --cells-csv one row per (N, distribution, method) with means and standard errors
External check: our algorithms' means against the paper's published means (``--paper-table``: by default
the copy shipped in ``crossmatch/twosided/data``, so a clone without ``../shared`` checks too; ``none`` skips).
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import Progress

from crossmatch.checkpoint import load_checkpoint
from crossmatch.errors import ConfigError, InputError
from crossmatch.twosided.evaluation import CheckRow, external_check, published_costs
from crossmatch.twosided.tables import (
    TablesSpec,
    cells_csv,
    check_note,
    describe_models,
    markdown,
    solve_cells,
    summarise,
)
from crossmatch.twosided.weavenet.checkpoints import load_models, model_for
from crossmatch.twosided.weavenet.model import WeaveNet
from crossmatch.twosided.weavenet.train import resolve_device
from stages._common import console, load_section, params_as, run, write_json, write_text


@dataclass(frozen=True)
class WeaveNetEvalParams(TablesSpec):
    device: str = "auto"

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ValueError as exc:
            raise ConfigError(f"weavenet_eval.{exc}") from None


PACKAGED = "packaged"


def read_paper_table(arg: str) -> list[dict[str, str]] | None:
    """The published means: the packaged copy (``packaged``), none (``none``), or the rows of a csv file."""
    if arg == PACKAGED:
        return published_costs()
    if arg.lower() == "none":
        return None
    path = Path(arg)
    if not path.is_file():
        raise InputError(f'paper table not found (default "{PACKAGED}": the copy shipped with crossmatch; "none": '
                         "skip the check)", file=str(path))
    with path.open() as fh:
        return list(csv.DictReader(fh))


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.weavenet_eval", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="weavenet_eval")
    ap.add_argument("--model", default="data/twosided/weavenet.pt", help='checkpoint, or "none" for algorithms only')
    ap.add_argument("--paper-table", default=PACKAGED,
                    help=f'published means (csv); "{PACKAGED}" (default): the copy shipped in crossmatch.twosided; '
                         '"none": skip the external check')
    ap.add_argument("--metrics", default="metrics/weavenet_eval.json")
    ap.add_argument("--report", default="reports/weavenet_tables.md")
    ap.add_argument("--cells-csv", default="reports/weavenet_eval_cells.csv")
    args = ap.parse_args()
    params = params_as(WeaveNetEvalParams, load_section(args.section, args.params), args.section)
    paper_rows = read_paper_table(args.paper_table)  # before the evaluation: a wrong path fails at once
    device = resolve_device(params.device)
    models: dict[str, WeaveNet] | None = None
    model_note, train_facts = "No WeaveNet evaluated (--model none).", dict[str, Any]()
    if args.model.lower() != "none":
        p = Path(args.model)
        if not p.is_file():
            raise InputError("WeaveNet checkpoint not found; run weavenet_train first (or pass --model none)", file=str(p))
        ckpt = load_checkpoint(p)  # InputError for a foreign or unreadable file
        try:
            models = load_models(ckpt, device)
            for d in params.distributions:
                model_for(models, d)
            model_note = describe_models(ckpt)
        except (ValueError, RuntimeError, TypeError, KeyError) as exc:
            raise InputError(f"cannot load the WeaveNet checkpoint: {exc}", file=str(p)) from None
        train_facts = dict(next(iter(ckpt.get("models", {"": ckpt}).values())).get("train", {}))
    torch.use_deterministic_algorithms(True, warn_only=True)
    t0 = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("weavenet_eval", total=None)
        results = solve_cells(params, models, device, lambda done, total: progress.update(task, completed=done, total=total))
    metrics, ours, rows = summarise(params, results, models is not None)
    check: list[CheckRow] | None = None if paper_rows is None else external_check(paper_rows, ours, params.check_sigmas)
    note = check_note(check, params.check_sigmas, params.instances)
    n_pass = 0 if check is None else sum(c.passed for c in check)
    metrics.update({"check_cells": 0 if check is None else len(check), "check_pass": n_pass,
                    "check_fail": 0 if check is None else len(check) - n_pass})
    metrics.update({"instances": params.instances, "seconds": round(time.perf_counter() - t0, 2),
                    "binarize": params.binarize, "model_steps": train_facts.get("steps_done", 0)})
    write_json(args.metrics, metrics)
    write_text(args.report, markdown(params, metrics, check, note, model_note, models is not None))
    write_text(args.cells_csv, cells_csv(rows))
    console.print(f"weavenet_eval: {len(results)} cells × {params.instances} instances in {metrics['seconds']:.0f}s; "
                  f"{note.split('Result: ')[-1]} -> {args.report}")

if __name__ == "__main__":
    run("weavenet_eval", main)
