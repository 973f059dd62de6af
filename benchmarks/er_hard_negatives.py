"""How many hard negatives the ER scorer draws from the blocked candidates, chosen on train only (issue 12 §3).

For each benchmark folder and each ``--per-record`` value: the stage's own path (``crossmatch.er.pipeline``:
blocking with ``k`` chosen on train, then ``match`` with ``er.match.hard_negatives`` set to the value) on
the benchmark *without valid.csv*, so nothing here can read valid. Printed per value, from train only:

* ``OOF F1``: the scorer's out-of-fold F1 on its training pairs (train.csv plus the hard negatives);
* ``held-out pair F1``: labelled-pair F1 on train pairs held out by pair, the hard negatives drawn without them
  (``selection.held_out_pair_f1``): a held-out true partner of a record can be drawn as a negative, as a
  valid.csv partner can — the record-grouped estimates below are blind to that;
* ``output estimate``: the train-only end-to-end F1 of each post-processing over the blocked candidates
  (``crossmatch.er.selection``: scorers fitted without a fold's left records — and without those records'
  hard negatives — decide that fold's candidates), and the one ``output: auto`` ships.

One value serves every benchmark: the one with the best mean held-out pair F1 (the issue's labelled-pair protocol;
the shipped-output estimate rewards drawing a record's other true partners as negatives, since it counts them
as errors whenever train.csv does not label them).

    python -m benchmarks.er_hard_negatives --data ../shared/data/walmart_amazon ../shared/data/amazon_google \
        ../shared/data/dblp_acm --per-record 0 1 2 3
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from crossmatch.er.candidates import block
from crossmatch.er.features import PairFeaturizer
from crossmatch.er.pipeline import match, oriented
from crossmatch.er.selection import held_out_pair_f1
from crossmatch.er.token_vocab import token_columns
from stages._common import run
from stages._er import load_params, read_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", type=Path, required=True)
    ap.add_argument("--params", default="pipelines/real/params.yaml")
    ap.add_argument("--per-record", nargs="+", type=int, default=[0, 2])
    ap.add_argument("--held-out-only", nargs="+", default=None, metavar="FOLDER=TOKENS",
                    help="only the held-out pair F1, at these token vocabulary sizes (the stage's choice, e.g. "
                         "walmart_amazon=0): skips the stage runs and their output estimates")
    args = ap.parse_args()
    params = load_params(args.params, "er")
    config = params.match_config()
    shipped: dict[int, list[float]] = {n: [] for n in args.per_record}
    held: dict[int, list[float]] = {n: [] for n in args.per_record}
    for folder in args.data:
        # oriented as match() groups (the smaller table left); no reference to valid.csv's pairs is kept
        bench = replace(oriented(read_benchmark(folder)), valid=None)
        if bench.train is None:
            raise SystemExit(f"{folder}: needs train.csv")
        train = bench.train
        cands = block(bench, config=params.blocking_config()).candidates
        print(f"{folder.name}: {cands.height:,} candidates", flush=True)
        for n in args.per_record:
            t0 = time.perf_counter()
            sizes = dict(kv.split("=") for kv in args.held_out_only or [])
            m = match(bench, cands, config=replace(config, hard_negatives=n, output="auto")).metrics \
                if args.held_out_only is None else None
            size = m["scorer"]["token_vocab"]["chosen"] if m is not None else int(sizes[folder.name])
            feats = PairFeaturizer(bench, context_k=config.context_k, context_attributes=config.context_attributes,
                                   context_codes=config.context_codes, token_vocab=size,
                                   token_text_only=config.token_text_only, code_prefix=config.code_prefix)
            Xtr = feats.transform(train.get_column("l").to_numpy(), train.get_column("r").to_numpy())
            Xc = feats.transform(cands.get_column("l").to_numpy(), cands.get_column("r").to_numpy())
            keep = token_columns(feats, size)
            held[n].append(held_out_pair_f1(Xtr[:, keep], train, cands, Xc[:, keep], per_record=n,
                                            scorer=config.scorer, folds=config.scorer.folds, seed=config.seed))
            if m is None:
                print(f"  per record {n}: held-out pair F1 {held[n][-1]:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
                continue
            est = m["output_choice"]["train_end_to_end"]
            chosen = m["output_choice"]["chosen"]
            shipped[n].append(est[chosen]["f1"] if est else float("nan"))
            print(f"  per record {n}: {m['scorer']['hard_negatives']['pairs']:>6} hard negatives, tokens "
                  f"{m['scorer']['token_vocab']['chosen']:>3}, OOF F1 {m['scorer']['oof_f1_train']:.3f}, held-out pair F1 "
                  f"{held[n][-1]:.3f} | output estimate "
                  + " ".join(f"{k} {v['f1']:.3f}" for k, v in est.items())
                  + f" | ships {chosen} {shipped[n][-1]:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    best = max(args.per_record, key=lambda n: np.mean(held[n]))
    for n in args.per_record:
        print(f"per record {n}: mean held-out pair F1 {np.mean(held[n]):.4f}"
              + (f", mean shipped-output estimate {np.mean(shipped[n]):.4f}" if shipped[n] else "")
              + ("  <- chosen" if n == best else ""))


if __name__ == "__main__":
    run("er_hard_negatives", main)  # bad input or params: one short line and exit 2, no traceback
