"""Merge WeaveNet model sets trained in separate runs (e.g. one run per group of distributions, in parallel on
several cores) into one shipped set, with their metrics and validation curves.

    python -m benchmarks.weavenet_merge_sets --out <set.pt> --metrics <m.json> \
        --curve-csv <c.csv> --curve-png <c.png> --runs RUN [RUN ...]

A RUN is the prefix of one ``stages.weavenet_train`` run's outputs: ``RUN.pt``, ``RUN_metrics.json`` and
``RUN_curve.csv``. A distribution found in several runs is taken from the last one. ``--specialist RUN N``
adds a run's models as size specialists: each distribution ``d`` of RUN is filed as ``d@N``
(``checkpoints.size_key``; the evaluation uses it at size N and the ``d`` model elsewhere); it replaces a
specialist of that key that an earlier run holds, with its facts and curve. A run-level fact (e.g. ``val_n``) is
kept at the top level only when every run has it with one value. ``--out-sizes PATH`` writes the size specialists
to a second file (the per-distribution models stay in ``--out``): package data holds each file to 5 MB, and the
stages merge a list of files (``weavenet_train.init_checkpoint``). Used for the shipped WN-16
set (crossmatch/twosided/pretrained/README.md).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from matplotlib.figure import Figure

from crossmatch.checkpoint import save_checkpoint
from crossmatch.twosided.generators import DISTRIBUTIONS
from crossmatch.twosided.weavenet.checkpoints import model_set, size_key, split_key
from crossmatch.twosided.weavenet.runs import read_starts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--out-sizes", help="write the size specialists here instead of into --out")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--curve-csv", required=True)
    ap.add_argument("--curve-png", required=True)
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--specialist", nargs=2, action="append", default=[], metavar=("RUN", "N"),
                    help="a run whose models serve size N only (repeatable)")
    ap.add_argument("--title", default="WeaveNet WN-16 phase 3 (fine-tuning from phase 2), validation every 500 steps")
    args = ap.parse_args()
    per_run = {r: read_starts(f"{r}.pt") for r in args.runs}
    models = {k: v for r in args.runs for k, v in per_run[r].items()}  # a model in several runs: the last one's
    # which run each model comes from, so a replaced model's facts and curve go too
    owner = {k: r for r in args.runs for k in per_run[r]}
    # distributions first, then the specialists a run already holds (keys "<dist>@<N>")
    order = [d for d in DISTRIBUTIONS if d in models] + sorted(k for k in models if split_key(k)[1] is not None)
    renames: dict[str, dict[str, str]] = {r: {} for r in args.runs}
    for run, n in args.specialist:
        for d, single in read_starts(f"{run}.pt").items():
            if split_key(d)[1] is not None:
                raise SystemExit(f"--specialist {run} {n}: {d} is already a size specialist")
            key = size_key(d, int(n))
            models[key] = single
            if key not in order:
                order.append(key)
            owner[key] = run
            renames.setdefault(run, {})[d] = key
    sizes = [d for d in order if args.out_sizes and split_key(d)[1] is not None]
    if args.out_sizes and not sizes:
        raise SystemExit(f"--out-sizes {args.out_sizes}: the merged set has no size specialist to write there")
    if args.out_sizes and len(sizes) == len(order):
        raise SystemExit(f"--out-sizes {args.out_sizes}: every model is a size specialist; nothing is left for --out")
    save_checkpoint(model_set({d: models[d] for d in order if d not in sizes}), Path(args.out))
    if sizes:
        save_checkpoint(model_set({d: models[d] for d in sizes}), Path(args.out_sizes))
    metrics: dict[str, object] = {}
    rows: list[dict[str, str]] = []
    shared: dict[str, set[str]] = {}
    all_metrics = {r: json.loads(Path(f"{r}_metrics.json").read_text()) for r in renames}
    for r, names in renames.items():
        run_metrics = all_metrics[r]
        run_models = {k.partition("/")[0] for k in run_metrics if "/" in k}
        for k, v in run_metrics.items():
            d, sep, rest = k.partition("/")
            if sep:
                if owner.get(names.get(d, d)) == r:
                    metrics[f"{names.get(d, d)}/{rest}"] = v
            else:  # a run-level fact (e.g. val_n): filed under each of the run's models, kept only if every run agrees
                shared.setdefault(k, set()).add(json.dumps(v))
                for m in run_models:
                    if owner.get(names.get(m, m)) == r:
                        metrics.setdefault(f"{names.get(m, m)}/{k}", v)
        with open(f"{r}_curve.csv", newline="") as fh:
            rows += [{**x, "model": names.get(x["model"], x["model"])} for x in csv.DictReader(fh)
                     if owner.get(names.get(x["model"], x["model"])) == r]
    for k, vs in shared.items():
        # a fact one run lacks is not agreed on (the round-1 set had no run-level val_n, the specialists do)
        if len(vs) == 1 and all(k in m for m in all_metrics.values()):
            metrics[k] = json.loads(next(iter(vs)))
    Path(args.metrics).write_text(json.dumps(dict(sorted(metrics.items())), indent=2) + "\n")
    with open(args.curve_csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda x: (order.index(x["model"]), int(x["step"]))))
    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    for d in order:
        pts = [(int(x["step"]), float(x["val_stable_rate"]), float(x["val_seq"])) for x in rows if x["model"] == d]
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=d)
        ax2.plot([p[0] for p in pts], [p[2] for p in pts], marker="o", label=d)
    ax1.set(xlabel="step", ylabel="validation stable rate (Hungarian)")
    ax2.set(xlabel="step", ylabel="validation mean SEq", yscale="log")
    ax1.legend()
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.curve_png, dpi=110)
    print(f"merged {[d for d in order if d not in sizes]} from {len(args.runs)} run(s) -> {args.out}"
          + (f", {sizes} -> {args.out_sizes}" if sizes else ""))


if __name__ == "__main__":
    main()
