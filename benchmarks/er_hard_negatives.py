"""How many hard negatives the ER scorer draws from the blocked candidates, chosen on train only (issue 12 §3).

For each benchmark folder and each ``--per-record`` value: the stage's own path (``crossmatch.er.pipeline``:
blocking with ``k`` chosen on train, then ``match`` with ``er.match.hard_negatives`` set to the value) on
the benchmark *without valid.csv*, so nothing here can read valid. Printed per value, from train only:

* ``OOF F1``: the scorer's out-of-fold F1 on its training pairs (train.csv plus the hard negatives);
* ``output estimate``: the train-only end-to-end F1 of each post-processing over the blocked candidates
  (``crossmatch.er.selection``: scorers fitted without a fold's left records — and without those records'
  hard negatives — decide that fold's candidates), and the one ``output: auto`` ships.

One value serves every benchmark: the one whose shipped output has the best mean estimate.

    python -m benchmarks.er_hard_negatives --data ../shared/data/walmart_amazon ../shared/data/amazon_google \
        ../shared/data/dblp_acm --per-record 0 1 2 3
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from crossmatch.er.pipeline import block, match
from stages._er import load_params, read_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", type=Path, required=True)
    ap.add_argument("--params", default="pipelines/real/params.yaml")
    ap.add_argument("--per-record", nargs="+", type=int, default=[0, 2])
    args = ap.parse_args()
    params = load_params(args.params, "er")
    config = params.match_config()
    shipped: dict[int, list[float]] = {n: [] for n in args.per_record}
    for folder in args.data:
        full = read_benchmark(folder)
        if full.train is None:
            raise SystemExit(f"{folder}: needs train.csv")
        bench = replace(full, valid=None)  # valid.csv is not even in memory
        cands = block(bench, config=params.blocking_config()).candidates
        print(f"{folder.name}: {cands.height:,} candidates", flush=True)
        for n in args.per_record:
            t0 = time.perf_counter()
            m = match(bench, cands, config=replace(config, hard_negatives=n, output="auto")).metrics
            est = m["output_choice"]["train_end_to_end"]
            chosen = m["output_choice"]["chosen"]
            shipped[n].append(est[chosen]["f1"] if est else float("nan"))
            print(f"  per record {n}: {m['scorer']['hard_negatives']['pairs']:>6} hard negatives, tokens "
                  f"{m['scorer']['token_vocab']['chosen']:>3}, OOF F1 {m['scorer']['oof_f1_train']:.3f} | output estimate "
                  + " ".join(f"{k} {v['f1']:.3f}" for k, v in est.items())
                  + f" | ships {chosen} {shipped[n][-1]:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    best = max(args.per_record, key=lambda n: np.mean(shipped[n]))
    for n in args.per_record:
        print(f"per record {n}: mean shipped-output estimate {np.mean(shipped[n]):.4f}{'  <- chosen' if n == best else ''}")


if __name__ == "__main__":
    main()
