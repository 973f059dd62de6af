"""ICPA training cost against the size of the data (issue 11 part 1: slope vs edges ≤ 1.15).

For each world size the synthetic generator is run with ``generate.overrides`` (the mechanism of
``params.yaml: generate``): ``scale`` × the default preset's concepts per category and users per
source, and the in-session spreads ``taste_spread`` / ``session_drift`` divided by ``scale`` (the
``large`` preset shrinks them the same way as its catalogue grows, so sessions stay local in
concept space). ``generate``, ``ingest`` and ``edges`` run once per size (cached under
``benchmarks/.cache/icpa-scale-<scale>``). Then, in a fresh process per size (so that the peak
RSS is that size's own), ICPA phase 1 with the ``icpa`` params of ``--params`` runs ``--steps``
timed optimisation steps after ``--warmup`` untimed ones; seconds per epoch = seconds per step ×
steps per epoch (the batch sampler's dry run). Prints one row per size and the least-squares
slope of log(seconds per epoch) against log(training edges), edges = item–item + user–item.

    python -m benchmarks.bench_icpa_scaling [--scales 1,5,25] [--steps 20] [--set pairs.shared_negatives=1024]

``--set key=value`` (dotted under ``icpa``, YAML values; repeatable) measures another setting.
Figures taken while other jobs load the machine are preliminary (the load average is printed).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
DEFAULT_USERS = (1500, 1500, 150)
DEFAULT_CONCEPTS = 20


def world_overrides(scale: float) -> dict[str, Any]:
    """``generate.overrides`` of a world ``scale`` × the default preset (items and users)."""
    return {
        "concepts_per_category": max(1, round(DEFAULT_CONCEPTS * scale)),
        "users_per_source": [max(1, round(u * scale)) for u in DEFAULT_USERS],
        "taste_spread": 0.06 / scale,
        "session_drift": 0.03 / scale,
    }


def prepare(scale: float, params_file: Path, preset: str = "default") -> Path:
    """Run generate → ingest → edges once for this world; returns its folder (cached)."""
    label = preset if preset != "default" else f"x{scale:g}"
    base = CACHE / f"icpa-scale-{label}"
    if (base / "edges").is_dir() and (base / "ingested").is_dir():
        return base
    base.mkdir(parents=True, exist_ok=True)
    full = yaml.safe_load(params_file.read_text())
    gen = {"preset": preset, "seed": 0, "overrides": world_overrides(scale) if preset == "default" else {}}
    params = {"generate": gen, "ingest": full["ingest"], "edges": full["edges"]}
    (base / "params.yaml").write_text(yaml.safe_dump(params))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = str(base / "params.yaml")
    for args in (
        ["generate", "--out", str(base / "raw"), "--truth", str(base / "truth"), "--metrics", str(base / "generate.json")],
        ["ingest", "--logs", str(base / "raw/logs"), "--items", str(base / "raw/items"),
         "--categories", str(base / "raw/categories.parquet"), "--taxonomy", str(base / "raw/taxonomy.parquet"),
         "--out", str(base / "ingested"), "--quarantine-file", str(base / "rejected.parquet"),
         "--report", str(base / "ingest.json")],
        ["edges", "--ingested", str(base / "ingested"), "--out", str(base / "edges"), "--stats", str(base / "edges.json")],
    ):
        print(f"  preparing {label}: {args[0]} ...", flush=True)
        subprocess.run([sys.executable, "-m", f"stages.{args[0]}", "--params", p, *args[1:]], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)
    return base


def apply_sets(section: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """``key.path=value`` (YAML values) set inside a copy of ``section`` (also used by bench_blocking_scale)."""
    out = copy.deepcopy(section)
    for text in sets:
        key, sep, value = text.partition("=")
        if not sep:
            raise SystemExit(f"--set wants key.path=value, got {text!r}")
        node = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def worker(base: Path, params_file: Path, sets: list[str], steps: int, warmup: int, method: str) -> dict[str, Any]:
    """Time ``steps`` phase-1 steps on one world; runs in its own process (own peak RSS)."""
    import torch

    from crossmatch.icpa import Trainer, build_model
    from crossmatch.icpa.methods import phase1_config, single_config
    from stages._common import load_section, params_as
    from stages._icpa import ICPAParams, load_data

    params = params_as(ICPAParams, apply_sets(load_section("icpa", params_file), sets), "icpa")
    params.check()
    t0 = time.perf_counter()
    data = load_data(base / "ingested", base / "edges", params.sources)
    load_s = time.perf_counter() - t0
    g = data.graph
    sched = params.schedule_config
    phase = phase1_config(sched, align=True) if method == "icpa_phase1" else single_config("base", None, sched)
    model = build_model(g.schemas, len(g.categories), params.model_config, params.seed)
    tr = Trainer(model, g, phase, pairs=params.pair_config, align=params.align_config, seed=params.seed, device="cpu")
    per_epoch = tr.epoch_steps()
    from crossmatch.icpa.sampler import category_batches

    batches = category_batches(g, tr.sources, params.pair_config.batch_size, torch.Generator().manual_seed(1),
                               pack=params.pair_config.pack_categories)
    need = warmup + steps
    batches = (batches * (need // max(1, len(batches)) + 1))[:need]
    for b in batches[:warmup]:
        tr.train_step(b)
    t1 = time.perf_counter()
    for b in batches[warmup:]:
        tr._step(b)  # the epoch loop's step: records stay on the device until the flush below
    tr.flush_log()
    sec_step = (time.perf_counter() - t1) / steps
    return {
        "items": sum(s.schema.n_items for s in g.sources),
        "item_item": sum(s.item_item.nnz // 2 for s in g.sources),
        "user_item": sum(s.user_item.nnz for s in g.sources),
        "steps_per_epoch": per_epoch,
        "sec_per_step": sec_step,
        "sec_per_epoch": sec_step * per_epoch,
        "load_s": load_s,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def fit_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / den if den else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_icpa_scaling", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--scales", default="1,5,25", help="comma-separated multiples of the default world")
    ap.add_argument("--large", action="store_true", help="also the `large` preset (10 M events; long)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per size")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--method", default="icpa_phase1", choices=["icpa_phase1", "base"])
    ap.add_argument("--set", action="append", default=[], dest="sets", help="icpa key=value (repeatable)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    params_file = Path(args.params)
    if args.worker:
        print(json.dumps(worker(Path(args.worker), params_file, args.sets, args.steps, args.warmup, args.method)))
        return
    worlds: list[tuple[str, Path]] = [(f"{float(s):g}x", prepare(float(s), params_file))
                                      for s in args.scales.split(",")]
    if args.large:
        worlds.append(("large", prepare(1.0, params_file, preset="large")))
    print(f"ICPA {args.method}, {args.steps} timed steps per size (+{args.warmup} warm-up), sets {args.sets or '-'}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cores {os.cpu_count()}, "
          f"load avg {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'world':>7} {'items':>8} {'ii edges':>10} {'ui edges':>10} {'steps/ep':>8} {'s/step':>8} "
          f"{'s/epoch':>9} {'peak MB':>8}", flush=True)
    rows = []
    for label, base in worlds:
        cmd = [sys.executable, "-m", "benchmarks.bench_icpa_scaling", "--worker", str(base), "--params", str(params_file),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--method", args.method]
        for s in args.sets:
            cmd += ["--set", s]
        out = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True,
                             capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{label:>7} {r['items']:>8,} {r['item_item']:>10,} {r['user_item']:>10,} {r['steps_per_epoch']:>8} "
              f"{r['sec_per_step']:>8.4f} {r['sec_per_epoch']:>9.2f} {r['peak_mb']:>8.0f}", flush=True)
    if len(rows) >= 2:
        edges = [r["item_item"] + r["user_item"] for r in rows]
        slope = fit_slope(edges, [r["sec_per_epoch"] for r in rows])
        step_slope = fit_slope(edges, [r["sec_per_step"] for r in rows])
        print(f"log-log slope of seconds/epoch vs training edges: {slope:.3f} (target <= 1.15); "
              f"seconds/step vs edges: {step_slope:.3f}")


if __name__ == "__main__":
    main()
