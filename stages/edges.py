"""Stage ``edges``: per-source graph tables from the ingested logs (ALGORITHMS.md §2.2).

Outputs, per source under ``--out/<source>/``:
    item_item.parquet      src, dst, weight        co-occurrence within ``window`` positions
    user_item.parquet      user_idx, item_idx, weight, count, last_ts   (training part only)
    item_category.parquet  item_idx, category[, fine_category]
    valid.parquet          the ``valid_fraction`` of each user's interactions before the test part
    heldout.parquet        the last ``holdout_fraction`` of every user's interactions (test)
Both held-out parts hold at least ``min_per_user`` events of every user who keeps one training
event. Settings are selected on ``valid``; ``heldout`` (test) is reported.
and a stats JSON (nodes, edges, degree quantiles per source).

With ``--source S`` (the default pipeline's ``foreach``; issue 11 part 7) only S is read and built:
``--out`` is then S's own folder and ``--stats`` S's part, merged by ``stages.edges_report``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from rich.progress import Progress

from crossmatch.errors import ConfigError, InputError
from crossmatch.graph import (
    cooccurrence_edges,
    graph_stats,
    item_category_edges,
    split_train_valid_test,
    user_item_edges,
)
from stages._common import atomic_dir, console, load_section, params_as, run, write_json


@dataclass(frozen=True)
class EdgesParams:
    window: int = 9
    holdout_fraction: float = 0.2
    valid_fraction: float = 0.0
    min_per_user: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.window, int) or self.window < 1:
            raise ConfigError(f"edges.window must be an integer >= 1, got {self.window!r}")
        if not 0.0 <= float(self.holdout_fraction) < 1.0:
            raise ConfigError(f"edges.holdout_fraction must lie in [0, 1), got {self.holdout_fraction}")
        if not isinstance(self.valid_fraction, (int, float)) or isinstance(self.valid_fraction, bool) \
                or not 0.0 <= float(self.valid_fraction) < 1.0 - float(self.holdout_fraction):
            raise ConfigError(f"edges.valid_fraction must lie in [0, 1 - holdout_fraction), got {self.valid_fraction!r}")
        if not isinstance(self.min_per_user, int) or isinstance(self.min_per_user, bool) or self.min_per_user < 0:
            raise ConfigError(f"edges.min_per_user must be an integer >= 0, got {self.min_per_user!r}")


def build_source(logs: pl.DataFrame, items: pl.DataFrame, params: EdgesParams) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """All graph tables of one source (pure: frames in, frames out)."""
    train, valid, test = split_train_valid_test(logs, params.holdout_fraction, float(params.valid_fraction),
                                                min_per_user=params.min_per_user)
    item_item = cooccurrence_edges(train, window=params.window, n_items=items.height)
    user_item = user_item_edges(train)
    tables = {
        "item_item": item_item,
        "user_item": user_item,
        "item_category": item_category_edges(items),
        "valid": valid.select("user_idx", "item_idx", "timestamp", "weight"),
        "heldout": test.select("user_idx", "item_idx", "timestamp", "weight"),
    }
    n_users = int(logs.select(pl.col("user_idx").max()).item() or 0) + 1 if logs.height else 0
    stats = graph_stats(n_users, items.height, item_item, user_item, train.height, test.height)
    stats["events_valid"] = valid.height
    return tables, stats


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.edges", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--ingested", default="data/ingested")
    ap.add_argument("--out", default="data/edges")
    ap.add_argument("--stats", default="metrics/edges.json")
    ap.add_argument("--source", help="build this source only (--out is its folder, --stats its part)")
    args = ap.parse_args()
    params = params_as(EdgesParams, load_section("edges", args.params), "edges")

    root = Path(args.ingested)
    sources = sorted(p.name for p in root.iterdir() if (p / "logs.parquet").exists()) if root.is_dir() else []
    if args.source is not None:
        sources = [s for s in sources if s == args.source]
    if not sources:
        what = f"'{args.source}/logs.parquet'" if args.source else "'<source>/logs.parquet'"
        raise InputError(f"no {what} found; run the ingest stage first", file=str(root))
    stats: dict[str, Any] = {"window": params.window, "holdout_fraction": params.holdout_fraction,
                             "valid_fraction": params.valid_fraction, "sources": {}}
    with atomic_dir(args.out) as tmp, Progress(console=console, transient=True) as progress:
        task = progress.add_task("edges", total=len(sources))
        for source in sources:
            progress.update(task, description=f"edges: {source}")
            logs = pl.read_parquet(root / source / "logs.parquet")
            items = pl.read_parquet(root / source / "items.parquet")
            tables, stats["sources"][source] = build_source(logs, items, params)
            if tables["item_item"].height == 0:  # ICPA draws its positive pairs from these edges: nothing to learn
                raise InputError(
                    f"source '{source}' gives no item-item co-occurrence edge: no user keeps two events in the "
                    f"training part ({stats['sources'][source].get('events_train', 0)} training events); "
                    "more events per user, or a smaller edges.holdout_fraction / valid_fraction",
                    file=str(root / source / "logs.parquet"))
            folder = tmp if args.source else tmp / source
            folder.mkdir(exist_ok=True)
            for name, frame in tables.items():
                frame.write_parquet(folder / f"{name}.parquet")
            progress.advance(task)
    write_json(args.stats, stats)
    total = sum(s["item_item_edges"] for s in stats["sources"].values())
    console.print(f"edges: {total:,} item-item edges over {len(sources)} sources -> {args.out}")


if __name__ == "__main__":
    run("edges", main)
