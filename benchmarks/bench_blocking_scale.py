"""The blocking stage against the size of the world (issue 14, item 6: 25× the default world in ≤ 2 minutes).

For each scale the synthetic generator runs with ``generate.overrides`` of ``scale`` × the default preset's
concepts per category and users per source (the mechanism of ``params.yaml: generate``, as in
``bench_icpa_scaling``), then ``ingest``; both once per scale, cached under
``benchmarks/.cache/blocking-scale-x<scale>``. Then ``python -m stages.blocking`` runs on that world with the
``blocking`` section of ``--params`` (plus ``--set`` values) and the default pipeline's arguments (truth pairs
and planted category truth), outputs in a temporary folder. Printed per scale: categories per side, the
stage's wall time (process start, imports and writes included) and CPU time (user + system, its worker
processes included: on a machine shared with other jobs the wall time grows, the CPU time much less), the
library's own time split (similarity,
grid, ILPs), the ILP budget figures, and the ratio to the 2-minute target.

    nice -n 19 python -m benchmarks.bench_blocking_scale [--scales 1,5,25] [--set ilp.grid=full] [--no-truth]

Figures taken while other jobs load the machine are preliminary (the load average is printed).
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
from typing import Any

import yaml

from benchmarks.bench_icpa_scaling import apply_sets

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
DEFAULT_USERS = (1500, 1500, 150)
DEFAULT_CONCEPTS = 20
TARGET_S = 120.0


def world_overrides(scale: float) -> dict[str, Any]:
    """``generate.overrides`` of a world ``scale`` × the default preset (items and users)."""
    if scale == 1:
        return {}
    return {"concepts_per_category": max(1, round(DEFAULT_CONCEPTS * scale)),
            "users_per_source": [max(1, round(u * scale)) for u in DEFAULT_USERS]}


def prepare(scale: float, params_file: Path) -> Path:
    """Run generate → ingest once for this world; returns its folder (cached)."""
    base = CACHE / f"blocking-scale-x{scale:g}"
    if (base / "ingested").is_dir() and (base / "truth").is_dir():
        return base
    base.mkdir(parents=True, exist_ok=True)
    full = yaml.safe_load(params_file.read_text())
    params = {"generate": {"preset": "default", "seed": 0, "overrides": world_overrides(scale)}, "ingest": full["ingest"]}
    (base / "params.yaml").write_text(yaml.safe_dump(params))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = str(base / "params.yaml")
    for args in (
        ["generate", "--out", str(base / "raw"), "--truth", str(base / "truth"), "--metrics", str(base / "generate.json")],
        ["ingest", "--logs", str(base / "raw/logs"), "--items", str(base / "raw/items"),
         "--categories", str(base / "raw/categories.parquet"), "--taxonomy", str(base / "raw/taxonomy.parquet"),
         "--out", str(base / "ingested"), "--quarantine-file", str(base / "rejected.parquet"),
         "--report", str(base / "ingest.json")],
    ):
        print(f"  preparing x{scale:g}: {args[0]} ...", flush=True)
        subprocess.run([sys.executable, "-m", f"stages.{args[0]}", "--params", p, *args[1:]], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)
    return base


def time_stage(base: Path, section: dict[str, Any], truth: bool, timeout: float) -> dict[str, Any]:
    """The blocking stage on one world in a fresh process: wall seconds and its metrics / timings."""
    with tempfile.TemporaryDirectory(prefix="bench_blocking_") as tmp:
        work = Path(tmp)
        (work / "params.yaml").write_text(yaml.safe_dump({"blocking": section}))
        args = [sys.executable, "-m", "stages.blocking", "--params", str(work / "params.yaml"),
                "--ingested", str(base / "ingested"), "--out", str(work / "blocking"),
                "--metrics", str(work / "metrics" / "blocking.json"), "--plots", str(work / "plots" / "blocking")]
        if truth:
            args += ["--truth-pairs", str(base / "truth" / "product_matches.parquet"),
                     "--truth-categories", str(base / "truth" / "fine_categories.parquet")]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(args, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"wall_s": time.perf_counter() - t0, "rc": "timeout"}
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            return {"wall_s": wall, "rc": proc.returncode, "stderr": proc.stderr[-2000:]}
        metrics = json.loads((work / "metrics" / "blocking.json").read_text())
        timings = json.loads((work / "timings" / "blocking.json").read_text())
    return {"wall_s": wall, "cpu_s": cpu, "rc": 0, "metrics": metrics, "timings": timings}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="1,5,25", help="comma-separated multiples of the default world")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="blocking.<key>=value (repeatable)")
    ap.add_argument("--no-truth", action="store_true", help="block without labelled pairs (nothing tuned)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds before a stage run is stopped")
    ap.add_argument("--keep-metrics", type=Path, default=None, help="folder to copy each scale's metrics JSON to")
    args = ap.parse_args()
    section = apply_sets(yaml.safe_load(args.params.read_text())["blocking"], args.sets)
    print(f"blocking stage vs world size; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"settings: {args.sets or 'params.yaml'}{' (no truth)' if args.no_truth else ''}", flush=True)
    rows = []
    for scale in (float(s) for s in args.scales.split(",")):
        base = prepare(scale, args.params)
        r = time_stage(base, section, not args.no_truth, args.timeout)
        rows.append((scale, r))
        if args.keep_metrics is not None and r["rc"] == 0:
            args.keep_metrics.mkdir(parents=True, exist_ok=True)
            (args.keep_metrics / f"blocking_x{scale:g}.json").write_text(json.dumps(r["metrics"], indent=2, sort_keys=True))
        if r["rc"] != 0:
            print(f"x{scale:g}: FAILED ({r['rc']}) after {r['wall_s']:.1f} s {r.get('stderr', '')}", flush=True)
            continue
        m, t = r["metrics"], r["timings"]["seconds"]
        b = m.get("ilp_budget") or {}
        sel = m["methods"].get(m["selected"], {})
        print(f"x{scale:g}: {m['n_left_categories']:,} x {m['n_right_categories']:,} categories, "
              f"{m['n_left_items']:,} x {m['n_right_items']:,} items; stage {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU "
              f"(similarity {t['similarity']:.1f}, grid {t['grid']:.1f}, ILPs {t['ilp']:.1f}, library total "
              f"{t['total']:.1f}); ILP solves {b.get('n_solves')}, budget {b.get('total_time_limit')} s hit: {b.get('hit')}; "
              f"{m['selected']} tradeoff {sel.get('tradeoff')}; {r['wall_s'] / TARGET_S:.2f} x the 2-minute target",
              flush=True)
    print(f"\nscale | stage wall s | CPU s | ratio to 120 s (load average now {os.getloadavg()[0]:.2f})")
    for scale, r in rows:
        print(f"x{scale:g} | {r['wall_s']:.1f}{'' if r['rc'] == 0 else ' (' + str(r['rc']) + ')'} | "
              f"{r.get('cpu_s', float('nan')):.1f} | {r['wall_s'] / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
