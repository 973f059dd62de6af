"""Benchmark of the ``ingest`` stage's peak memory on the ``large`` preset (>= 10 M events).

Prints, for the ingest stage of this checkout and (``--ref``) of an older git revision, on the same raw
input: seconds, baseline RSS (after imports), peak RSS, and bytes per event =
(peak RSS - baseline RSS) / events; then whether both wrote the same tables (same bytes, or else the same
frames). Target (issue 11, part 6): <= 150 bytes per event.

Usage: python -m benchmarks.bench_ingest [--preset large] [--seed 0] [--ref e21b58e] [--layout single]
The raw world is generated once under ``benchmarks/.cache/ingest-<preset>-seed<seed>/`` (git-ignored) and
reused. Each measurement runs in its own process so its peak memory is its own; the old revision runs from
a ``git archive`` of its ``crossmatch/`` and ``stages/`` put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(base: Path, out: Path) -> dict[str, float | str]:
    """Run the ingest stage in this process (whatever ``stages.ingest`` resolves to) on ``base/raw``."""
    import crossmatch
    import stages.ingest as ingest_stage

    baseline = _rss_bytes()
    raw = base / "raw"
    sys.argv = [
        "stages.ingest", "--params", str(base / "params.yaml"), "--logs", str(raw / "logs"), "--items", str(raw / "items"),
        "--categories", str(raw / "categories.parquet"), "--taxonomy", str(raw / "taxonomy.parquet"),
        "--out", str(out / "ingested"), "--quarantine-file", str(out / "rejected.parquet"),
        "--report", str(out / "ingest.json"),
    ]
    start = time.perf_counter()
    ingest_stage.main()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report = json.loads((out / "ingest.json").read_text())
    events = sum(s.get("rows_in", 0) for s in report["sources"].values())
    return {"seconds": seconds, "baseline_mb": baseline / 2**20, "peak_mb": peak / 2**20, "events": events,
            "bytes_per_event": (peak - baseline) / max(events, 1), "library": str(Path(crossmatch.__file__).parent)}


def prepare(preset: str, seed: int, layout: str) -> Path:
    """Generate the raw world once; reuse it on later runs."""
    base = CACHE / (f"ingest-{preset}-seed{seed}" + ("" if layout == "single" else f"-{layout}"))
    if (base / "raw" / "categories.parquet").exists():
        return base
    base.mkdir(parents=True, exist_ok=True)
    (base / "params.yaml").write_text(
        f"generate: {{preset: {preset}, seed: {seed}, layout: {layout}}}\ningest: {{duplicates: drop}}\n")
    print(f"preparing: generate --preset {preset} ...", flush=True)
    subprocess.run([sys.executable, "-m", "stages.generate", "--params", str(base / "params.yaml"),
                    "--out", str(base / "raw"), "--truth", str(base / "truth"), "--metrics", str(base / "generate.json")],
                   cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
    return base


def measure(base: Path, out: Path, code: Path) -> dict[str, float | str]:
    """One child process whose ``crossmatch``/``stages`` come from ``code``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys([str(code), str(ROOT)])))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_ingest.py"), "--worker", str(base), str(out)],
                          cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _tables(out: Path) -> dict[str, str]:
    files = sorted(p for p in out.rglob("*.parquet"))
    return {str(p.relative_to(out)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


def same_frames(a: Path, b: Path) -> bool:
    import polars as pl
    from polars.testing import assert_frame_equal

    for rel in _tables(a):
        try:
            assert_frame_equal(pl.read_parquet(a / rel), pl.read_parquet(b / rel))
        except (AssertionError, FileNotFoundError):
            print(f"  differs: {rel}")
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="large")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", default="single", choices=["single", "per_source"])
    ap.add_argument("--ref", default=None, help="also measure this git revision's ingest (e.g. e21b58e)")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.worker[0]), Path(args.worker[1]))))
        return
    base = prepare(args.preset, args.seed, args.layout)
    work = Path(tempfile.mkdtemp(prefix="bench_ingest_", dir=base))
    try:
        runs = {"this checkout": (ROOT, work / "new")}
        if args.ref:
            code = work / "ref-code"
            code.mkdir()
            archive = subprocess.run(["git", "archive", args.ref, "crossmatch", "stages"], cwd=ROOT, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
            runs = {f"git {args.ref}": (code, work / "old"), **runs}
        results = {}
        for label, (code, out) in runs.items():
            r = measure(base, out, code)
            results[label] = r
            print(f"ingest ({label}): {r['events']:,} events, {r['seconds']:.1f} s, baseline RSS {r['baseline_mb']:.0f} MB, "
                  f"peak RSS {r['peak_mb']:.0f} MB, {r['bytes_per_event']:.0f} bytes/event  [target <= 150]", flush=True)
        if args.ref:
            old, new = _tables(work / "old"), _tables(work / "new")
            same_bytes = old == new
            print(f"same output files (md5 of every parquet): {same_bytes}")
            if not same_bytes:
                print(f"same tables (polars frame equality): {same_frames(work / 'old', work / 'new')}")
            a, b = (json.loads((work / d / "ingest.json").read_text()) for d in ("old", "new"))
            print(f"same report: {a == b}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
