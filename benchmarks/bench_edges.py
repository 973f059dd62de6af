"""Benchmark of the ``edges`` stage on the ``large`` preset (>= 10 M events).

Prints, on the same ingested input:
* the whole edges stage (read, hold-out split, co-occurrence, user–item, stats, write): seconds and peak RSS;
* the co-occurrence core in polars vs the straightforward per-user Python loop
  (``crossmatch.graph.cooccurrence_edges_loop``) over all events: seconds, peak RSS, the ratio,
  and a check that both produce the same edges.

Targets (issue 2): stage <= 20 s on 2 cores, core >= 30x faster than the loop, peak memory <= 4 GB.

Usage: python -m benchmarks.bench_edges [--preset large] [--seed 0] [--skip-loop]
Each measurement runs in its own process so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _sources(ingested: Path) -> list[str]:
    return sorted(p.name for p in ingested.iterdir() if (p / "logs.parquet").exists())


def worker(kind: str, ingested: Path, window: int) -> dict[str, float]:
    import polars as pl

    from crossmatch.graph import cooccurrence_edges, cooccurrence_edges_loop

    result: dict[str, float] = {"edges": 0, "weight": 0, "checksum": 0, "events": 0}
    frames = {s: pl.read_parquet(ingested / s / "logs.parquet", columns=["user_idx", "item_idx"]) for s in _sources(ingested)}
    n_items = {s: pl.read_parquet(ingested / s / "items.parquet", columns=["item_idx"]).height for s in frames}
    result["events"] = sum(f.height for f in frames.values())
    if kind == "stage":
        from stages.edges import EdgesParams, build_source

        params = EdgesParams(window=window)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            for s in frames:
                logs = pl.read_parquet(ingested / s / "logs.parquet")
                items = pl.read_parquet(ingested / s / "items.parquet")
                tables, stats = build_source(logs, items, params)
                for name, frame in tables.items():
                    frame.write_parquet(Path(tmp) / f"{s}_{name}.parquet")
                result["edges"] += stats["item_item_edges"]
        result["seconds"] = time.perf_counter() - start
    elif kind == "polars":
        # Only the edge computation is timed (here and for the loop); the checksums that prove
        # both produce the same edges are computed outside the clock.
        result["seconds"] = 0.0
        for s, f in frames.items():
            start = time.perf_counter()
            e = cooccurrence_edges(f, window=window, n_items=n_items[s])
            result["seconds"] += time.perf_counter() - start
            result["edges"] += e.height
            result["weight"] += int(e.get_column("weight").sum())
            result["checksum"] += int(((e["src"].cast(pl.Int64) * 7 + e["dst"].cast(pl.Int64) * 13) * e["weight"]).sum())
    elif kind == "loop":
        lists = {s: (f.get_column("user_idx").to_list(), f.get_column("item_idx").to_list()) for s, f in frames.items()}
        result["seconds"] = 0.0
        for _s, (u, i) in lists.items():
            start = time.perf_counter()
            counts = cooccurrence_edges_loop(u, i, window=window)
            result["seconds"] += time.perf_counter() - start
            result["edges"] += len(counts)
            result["weight"] += sum(counts.values())
            result["checksum"] += sum((a * 7 + b * 13) * w for (a, b), w in counts.items())
            del counts
    result["peak_mb"] = _peak_mb()
    return result


def prepare(preset: str, seed: int) -> Path:
    """Generate and ingest the preset once; reuse the cached result on later runs."""
    base = CACHE / f"{preset}-seed{seed}"
    ingested = base / "ingested"
    if (ingested / "categories.parquet").exists():
        return ingested
    base.mkdir(parents=True, exist_ok=True)
    params = base / "params.yaml"
    params.write_text(f"generate: {{preset: {preset}, seed: {seed}}}\ningest: {{duplicates: drop}}\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args in (
        ["generate", "--out", str(base / "raw"), "--truth", str(base / "truth"), "--metrics", str(base / "generate.json")],
        ["ingest", "--logs", str(base / "raw/logs"), "--items", str(base / "raw/items"),
         "--categories", str(base / "raw/categories.parquet"), "--taxonomy", str(base / "raw/taxonomy.parquet"),
         "--out", str(ingested), "--quarantine-file", str(base / "rejected.parquet"), "--report", str(base / "ingest.json")],
    ):
        print(f"preparing: {args[0]} ...", flush=True)
        subprocess.run([sys.executable, "-m", f"stages.{args[0]}", "--params", str(params), *args[1:]], cwd=ROOT, env=env, check=True)
    return ingested


def measure(kind: str, ingested: Path, window: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_edges", "--worker", kind, "--ingested", str(ingested), "--window", str(window)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="large")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--window", type=int, default=9)
    ap.add_argument("--skip-loop", action="store_true", help="skip the slow Python-loop reference")
    ap.add_argument("--worker", choices=["stage", "polars", "loop"], help=argparse.SUPPRESS)
    ap.add_argument("--ingested", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.ingested), args.window)))
        return
    ingested = prepare(args.preset, args.seed)
    stage = measure("stage", ingested, args.window)
    print(f"input: {stage['events']:,.0f} events ({args.preset} preset, seed {args.seed}), window {args.window}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cores={os.cpu_count()}")
    print(f"edges stage (split + co-occurrence + user-item + stats + write): {stage['seconds']:.2f} s, "
          f"peak RSS {stage['peak_mb']:.0f} MB  [target <= 20 s, <= 4096 MB]")
    fast = measure("polars", ingested, args.window)
    print(f"co-occurrence, polars:      {fast['seconds']:.2f} s, peak RSS {fast['peak_mb']:.0f} MB, "
          f"{fast['edges']:,.0f} edges, total weight {fast['weight']:,.0f}")
    if args.skip_loop:
        return
    slow = measure("loop", ingested, args.window)
    print(f"co-occurrence, Python loop: {slow['seconds']:.2f} s, peak RSS {slow['peak_mb']:.0f} MB, "
          f"{slow['edges']:,.0f} edges, total weight {slow['weight']:,.0f}")
    same = (fast["edges"], fast["weight"], fast["checksum"]) == (slow["edges"], slow["weight"], slow["checksum"])
    print(f"same edges and weights: {same}")
    print(f"speed-up polars vs loop: {slow['seconds'] / fast['seconds']:.1f}x  [target >= 30x]")


if __name__ == "__main__":
    main()
