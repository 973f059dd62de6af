"""The whole default pipeline (every stage of ``dvc.yaml``) on the ``large`` preset: wall, CPU, peak RSS per stage.

The workspace is never touched: the repository is cloned (``git clone``, i.e. the committed HEAD) into a
temporary folder, the large-scale preset ``params.large.yaml`` (plus ``--set`` values) is merged over the
clone's ``params.yaml``, and every stage runs in ``dvc.yaml`` order with ``dvc repro --force --single-item
<stage>`` from the clone (foreach groups item by item, as ``dvc stage list`` names them).

Per stage:
* wall seconds of the ``dvc repro`` call (DVC's own hashing and caching included);
* CPU seconds: user + sys of the whole child tree (``RUSAGE_CHILDREN`` delta: DVC waits for the stage
  command, so its CPU reaches us when we wait for DVC);
* peak RSS: the largest sum of RSS over the process tree, polled every 0.5 s (shared pages of forked
  workers are counted once per process), and the largest single process.

Each finished stage is appended to a JSON-lines file as it ends (a partial run still yields its rows);
``--write`` replaces the marked section of ``reports/benchmarks.md`` with the table, the exact overrides,
machine facts and the total. ``--from-rows FILE --write`` writes the section from an earlier run's rows.

Usage:
    python -m benchmarks.bench_pipeline_large [--write] [--set icpa.schedule.phase1_epochs=3 ...]
    python -m benchmarks.bench_pipeline_large --scale 0.2 --until icpa_eval     # a smaller trial world
    python -m benchmarks.bench_pipeline_large --from-rows benchmarks/.cache/pipeline_large/rows.jsonl --write
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the environment
import yaml

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "params.large.yaml"
CACHE = ROOT / "benchmarks" / ".cache" / "pipeline_large"
REPORT = ROOT / "reports" / "benchmarks.md"
BEGIN = "<!-- BEGIN bench_pipeline_large -->"
END = "<!-- END bench_pipeline_large -->"
POLL_S = 0.5
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1",
       "PYTHONHASHSEED": "0", "PREFECT_LOGGING_LEVEL": "WARNING", "DO_NOT_TRACK": "1"}


# ---------------------------------------------------------------------------------------------- params


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: mappings recursively, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``a.b.c=value`` strings (value parsed as YAML) as a nested mapping."""
    tree: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set wants key.path=value, got {item!r}")
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return tree


def scaled_world(scale: float) -> dict[str, Any]:
    """``generate.overrides`` of ``scale`` × the large preset's concepts and users (a trial world)."""
    from crossmatch.synth.config import PRESETS

    large = PRESETS["large"]
    return {"concepts_per_category": max(1, round(large.concepts_per_category * scale)),
            "users_per_source": [max(1, round(u * scale)) for u in large.users_per_source]}


def overrides(preset: Path, sets: Sequence[str], scale: float) -> dict[str, Any]:
    over = yaml.safe_load(preset.read_text()) if preset.exists() else {}
    over = deep_merge(over or {}, parse_set(sets))
    if scale != 1.0:
        over = deep_merge(over, {"generate": {"overrides": scaled_world(scale)}})
    return over


# ---------------------------------------------------------------------------------------------- running


def stage_names(repo: Path, env: dict[str, str]) -> list[str]:
    out = subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=repo, env=env, check=True,
                         capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def run_stage(name: str, repo: Path, env: dict[str, str], log: Path, t_start: float) -> dict[str, Any]:
    """``dvc repro --force --single-item name`` with wall, CPU (children's rusage) and polled tree RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    peak_sum = peak_one = 0
    last_note = t0
    with log.open("w") as fh:
        popen = subprocess.Popen(["dvc", "repro", "--force", "--single-item", name], cwd=repo, env=env,
                                 stdout=fh, stderr=subprocess.STDOUT)
        root = psutil.Process(popen.pid)
        while popen.poll() is None:
            rss = []
            for p in _tree(root):
                try:
                    rss.append(p.memory_info().rss)
                except psutil.Error:
                    pass
            if rss:
                peak_sum, peak_one = max(peak_sum, sum(rss)), max(peak_one, max(rss))
            now = time.perf_counter()
            if now - last_note >= 60:
                print(f"    ... {name}: {now - t0:,.0f} s (total {now - t_start:,.0f} s), tree RSS now "
                      f"{sum(rss) / 2**20:,.0f} MB, peak {peak_sum / 2**20:,.0f} MB", flush=True)
                last_note = now
            time.sleep(POLL_S)
        rc = popen.wait()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"stage": name, "rc": rc, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "peak_rss_mb": round(peak_sum / 2**20, 1), "peak_rss_one_mb": round(peak_one / 2**20, 1)}


def clone(work: Path, env: dict[str, str]) -> Path:
    repo = work / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, env=env)
    shared = ROOT.parent / "shared"  # weavenet_eval reads ../shared/data relative to the repository root
    if shared.exists() and not (work / "shared").exists():
        (work / "shared").symlink_to(shared)
    subprocess.run(["dvc", "config", "--local", "core.analytics", "false"], cwd=repo, env=env, check=True)
    return repo


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)), "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "mem_total_gb": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# ---------------------------------------------------------------------------------------------- report


def fmt_rows(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The stage table as Markdown lines, with a total row (wall and CPU summed, peak RSS the max)."""
    lines = ["| stage | wall s | CPU s | peak RSS (tree) MB | largest process MB | rc |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['wall_s']:,.1f} | {r['cpu_s']:,.1f} | {r['peak_rss_mb']:,.0f} | "
                     f"{r['peak_rss_one_mb']:,.0f} | {r['rc']} |")
    if rows:
        wall = sum(r["wall_s"] for r in rows)
        cpu = sum(r["cpu_s"] for r in rows)
        peak = max(r["peak_rss_mb"] for r in rows)
        one = max(r["peak_rss_one_mb"] for r in rows)
        lines.append(f"| **total** ({len(rows)} stages) | **{wall:,.1f}** ({wall / 60:.1f} min) | **{cpu:,.1f}** | "
                     f"**{peak:,.0f}** | {one:,.0f} | |")
    return lines


def section(meta: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """The Markdown section written between the markers."""
    wall = sum(r["wall_s"] for r in rows)
    peak = max((r["peak_rss_mb"] for r in rows), default=0.0)
    expected = meta.get("stages") or []
    done = [r["stage"] for r in rows]
    complete = bool(expected) and done == list(expected) and all(r["rc"] == 0 for r in rows)
    m = meta.get("machine", {})
    status = "complete" if complete else f"PARTIAL: {len(done)} of {len(expected) or '?'} stages"
    targets = (f"wall {wall / 60:.1f} min (target <= 60: {'met' if complete and wall <= 3600 else 'not met'}), "
               f"peak RSS {peak / 1024:.2f} GB (target <= 12: {'met' if complete and peak <= 12 * 1024 else 'not met'})")
    over = yaml.safe_dump(meta.get("overrides", {}), sort_keys=False, default_flow_style=None, width=110).rstrip()
    lines = [
        BEGIN,
        "## The `large` preset through the whole pipeline (`python -m benchmarks.bench_pipeline_large`)",
        "",
        f"Run {m.get('started', '?')}, commit `{meta.get('commit', '?')}`, {status}. Machine: {m.get('cores')} cores "
        f"({m.get('cpu_affinity')} usable), {m.get('mem_total_gb')} GB RAM, load average at start "
        f"{' / '.join(str(x) for x in m.get('loadavg_start', []))}, Python {m.get('python')}, OMP_NUM_THREADS=1. "
        "Each stage is `dvc repro --force --single-item <stage>` in a fresh clone; CPU = user + sys of the child "
        "tree; peak RSS = the largest polled (0.5 s) sum over the process tree.",
        "",
        *fmt_rows(rows),
        "",
        f"Totals: {targets}.",
        "",
        "Params merged over `params.yaml` (`params.large.yaml`" + (" + `--set`/`--scale`" if meta.get("extra") else "") + "):",
        "",
        "```yaml",
        over,
        "```",
        END,
    ]
    return "\n".join(lines) + "\n"


def replace_section(text: str, new: str) -> str:
    """``text`` with the marked section replaced by ``new`` (appended when absent)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + new.rstrip("\n") + tail
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + new


def write_report(meta: dict[str, Any], rows: Sequence[dict[str, Any]], path: Path = REPORT) -> None:
    text = path.read_text() if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(text, section(meta, rows)))


def read_rows(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    meta: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            if rec.get("kind") == "meta":
                meta = rec
            else:
                rows.append(rec)
    return meta, rows


# ---------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--preset", type=Path, default=PRESET, help="params preset merged over params.yaml")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="extra override, dotted key, YAML value (repeatable)")
    ap.add_argument("--scale", type=float, default=1.0, help="trial world: this share of the large preset's concepts and users")
    ap.add_argument("--until", default=None, help="stop after this stage (or foreach group)")
    ap.add_argument("--rows", type=Path, default=CACHE / "rows.jsonl", help="JSON-lines file of finished stages")
    ap.add_argument("--workdir", type=Path, default=None, help="clone here (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the clone and its data")
    ap.add_argument("--write", action="store_true", help=f"replace the marked section of {REPORT.relative_to(ROOT)}")
    ap.add_argument("--from-rows", type=Path, default=None, help="only write the report from this rows file")
    args = ap.parse_args(argv)

    if args.from_rows:
        meta, old = read_rows(args.from_rows)
        print("\n".join(fmt_rows(old)))
        if args.write:
            write_report(meta, old)
            print(f"wrote {REPORT}")
        return 0

    env = dict(os.environ, **ENV)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("PREFECT_HOME", str(ROOT / ".prefect_test"))
    env.pop("PYTHONPATH", None)  # python -m stages.* must import the clone's code

    over = overrides(args.preset, args.sets, args.scale)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_pipeline_large_"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        repo = clone(work, env)
        params_file = repo / "params.yaml"
        params = deep_merge(yaml.safe_load(params_file.read_text()), over)
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        stages = stage_names(repo, env)
        if args.until:
            last = max(i for i, s in enumerate(stages) if s == args.until or s.startswith(args.until + "@"))
            stages = stages[: last + 1]
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                                check=True).stdout.strip()
        meta = {"kind": "meta", "commit": commit, "machine": machine(), "overrides": over, "stages": stages,
                "extra": bool(args.sets or args.scale != 1.0), "workdir": str(work)}
        args.rows.parent.mkdir(parents=True, exist_ok=True)
        args.rows.write_text(json.dumps(meta) + "\n")
        print(f"clone {repo} (commit {commit}); {len(stages)} stages; load average {meta['machine']['loadavg_start']}",
              flush=True)
        print(f"overrides: {json.dumps(over)}", flush=True)
        (work / "logs").mkdir(exist_ok=True)
        for i, name in enumerate(stages, 1):
            print(f"[{i}/{len(stages)}] {name} (elapsed {time.perf_counter() - t_start:,.0f} s)", flush=True)
            row = run_stage(name, repo, env, work / "logs" / f"{name}.log", t_start)
            rows.append(row)
            with args.rows.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"    done {name}: wall {row['wall_s']:,.1f} s, CPU {row['cpu_s']:,.1f} s, peak RSS "
                  f"{row['peak_rss_mb']:,.0f} MB, rc {row['rc']}", flush=True)
            if row["rc"] != 0:
                print((work / "logs" / f"{name}.log").read_text()[-4000:], flush=True)
                break
        print("\n".join(fmt_rows(rows)))
        if args.write:
            write_report(meta, rows)
            print(f"wrote {REPORT}")
        return 0 if rows and all(r["rc"] == 0 for r in rows) and len(rows) == len(stages) else 1
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    sys.exit(main())
