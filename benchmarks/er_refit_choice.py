"""Which models score new pairs, ``er.scorer.refit: full | folds``, chosen on train only (issue 12 §1, §3).

The scorer's calibration map and threshold come from out-of-fold scores of k fold models; new pairs are
then scored by a model refitted on all training pairs (``full``) or by the fold models themselves
(``folds``, their calibrated probabilities averaged). The out-of-fold F1 cannot tell the two apart (it never
involves the scoring models), so this script estimates the shipped decision one level further out
(``selection.held_out_pair_f1`` with no hard negatives): an outer stratified k-fold over train.csv, the whole
scorer (inner folds, calibration, threshold, scoring models) fitted on each outer training part and its
decisions counted on the outer held-out part. valid.csv's pairs are dropped on reading and never used. The
features are the shipped ones (neighbourhood per attribute at ``--context-k``, the token vocabulary each
benchmark's stage chose, ``--token-vocab name=size``).

    python -m benchmarks.er_refit_choice --data ../shared/data/walmart_amazon ../shared/data/amazon_google \
        ../shared/data/dblp_acm --token-vocab amazon_google=64 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from crossmatch.er.features import PairFeaturizer
from crossmatch.er.pipeline import oriented
from crossmatch.er.scorer import ScorerConfig
from crossmatch.er.selection import held_out_pair_f1
from stages._common import run
from stages._er import read_benchmark

VARIANTS = ("full", "folds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", type=Path, required=True)
    ap.add_argument("--context-k", type=int, default=20)
    ap.add_argument("--token-vocab", nargs="*", default=[], help="name=size per benchmark (default 0)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    vocab = {k: int(v) for k, v in (kv.split("=") for kv in args.token_vocab)}
    no_cands = pl.DataFrame({"l": [], "r": [], "similarity": []})  # no hard negatives: no candidate is read
    mean: dict[str, list[float]] = {v: [] for v in VARIANTS}
    print(f"{'benchmark':16} {'refit':>6} {'nested train F1':>16}  per seed", flush=True)
    for folder in args.data:
        # oriented as match() groups (the smaller table left); valid's pairs are not this script's to read
        bench = replace(oriented(read_benchmark(folder)), valid=None)
        assert bench.train is not None, f"{folder}: needs train.csv"
        feats = PairFeaturizer(bench, context_k=args.context_k, context_attributes=True,
                               token_vocab=vocab.get(folder.name, 0))
        X = feats.transform(bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy())
        for v in VARIANTS:
            t0 = time.perf_counter()
            # the outer split's seed differs from the inner folds' (the scorer's own seed)
            f1 = [held_out_pair_f1(X, bench.train, no_cands, np.zeros((0, X.shape[1])), per_record=0,
                                   scorer=replace(ScorerConfig(seed=s), refit=v), seed=1_000 + s) for s in args.seeds]
            mean[v].append(float(np.mean(f1)))
            print(f"{folder.name:16} {v:>6} {np.mean(f1):>9.4f}±{np.std(f1):.4f}  {' '.join(f'{x:.4f}' for x in f1)}"
                  f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    for v in VARIANTS:
        print(f"refit {v}: mean nested train F1 over the benchmarks {np.mean(mean[v]):.4f}"
              f"{'  <- chosen' if np.mean(mean[v]) == max(np.mean(m) for m in mean.values()) else ''}")


if __name__ == "__main__":
    run("er_refit_choice", main)  # bad input or params: one short line and exit 2, no traceback
