"""Stage ``generate``: the embedded default data — a synthetic multi-source world with planted truth.

Outputs (under ``--out`` and ``--truth``):
    raw/logs/       interaction logs (one parquet with a ``source`` column, or one file per source)
    raw/items/      one item catalogue per source
    raw/categories.parquet, raw/taxonomy.parquet
    truth/concepts.parquet, truth/fine_categories.parquet, truth/product_matches.parquet
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from crossmatch.errors import ConfigError
from crossmatch.synth import World, generate_world, make_config
from stages._common import atomic_dir, console, load_section, params_as, run, write_json


@dataclass(frozen=True)
class GenerateParams:
    preset: str = "default"
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    raw_format: Literal["parquet", "csv"] = "parquet"
    layout: Literal["single", "per_source"] = "single"

    def __post_init__(self) -> None:
        if self.seed < 0:  # numpy seeds are non-negative
            raise ConfigError(f"generate.seed must be an integer >= 0, got {self.seed}")
        if not isinstance(self.overrides, dict):
            raise ConfigError(f"generate.overrides must be a mapping of world settings, got {self.overrides!r:.60}")
        if self.raw_format not in ("parquet", "csv"):
            raise ConfigError(f"generate.raw_format must be 'parquet' or 'csv', got '{self.raw_format}'")
        if self.layout not in ("single", "per_source"):
            raise ConfigError(f"generate.layout must be 'single' or 'per_source', got '{self.layout}'")


def _write_table(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.write_csv(path.with_suffix(".csv"))
    else:
        frame.write_parquet(path.with_suffix(".parquet"))


def write_world(world: World, raw_dir: Path, truth_dir: Path, params: GenerateParams) -> dict[str, Any]:
    """Write a world's observable data under ``raw_dir`` and its hidden truth under ``truth_dir``."""
    (raw_dir / "logs").mkdir(parents=True)
    (raw_dir / "items").mkdir()
    if params.layout == "single":
        _write_table(world.logs, raw_dir / "logs" / "logs", params.raw_format)
    else:
        for (source,), part in world.logs.group_by("source", maintain_order=True):
            _write_table(part.drop("source"), raw_dir / "logs" / str(source), params.raw_format)
    for source, items in world.items.items():
        items.write_parquet(raw_dir / "items" / f"{source}.parquet")
    world.categories.write_parquet(raw_dir / "categories.parquet")
    world.taxonomy.write_parquet(raw_dir / "taxonomy.parquet")
    world.concepts.write_parquet(truth_dir / "concepts.parquet")
    world.fine_truth.write_parquet(truth_dir / "fine_categories.parquet")
    world.product_truth.write_parquet(truth_dir / "product_matches.parquet")
    per_source = world.logs.group_by("source").agg(
        pl.len().alias("events"), pl.col("user_id").n_unique().alias("users")
    )
    return {
        "events": world.logs.height,
        "sources": {
            s: {"events": int(e), "users": int(u), "items": world.items[s].height}
            for s, e, u in per_source.sort("source").iter_rows()
        },
        "categories": world.categories.height,
        "fine_categories": world.taxonomy.height,
        "fine_truth_pairs": world.fine_truth.height,
        "product_truth_pairs": world.product_truth.height,
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.generate", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="data/raw", help="directory for the observable data")
    ap.add_argument("--truth", default="data/truth", help="directory for the hidden truth")
    ap.add_argument("--metrics", default="metrics/generate.json")
    args = ap.parse_args()

    params = params_as(GenerateParams, load_section("generate", args.params), "generate")
    cfg = make_config(params.preset, params.seed, params.overrides)
    with console.status(f"generate: building the '{params.preset}' world") as status:
        world = generate_world(cfg, progress=lambda msg: status.update(f"generate: {msg}"))
    with atomic_dir(args.out) as raw_tmp, atomic_dir(args.truth) as truth_tmp:
        summary = write_world(world, raw_tmp, truth_tmp, params)
    summary["preset"] = params.preset
    summary["seed"] = params.seed
    write_json(args.metrics, summary)
    console.print(f"generate: {summary['events']:,} events over {len(summary['sources'])} sources -> {args.out}")


if __name__ == "__main__":
    run("generate", main)
