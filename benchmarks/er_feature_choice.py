"""Which pair-feature set the ER scorer ships with, chosen on train only (issue 12 §1, §3).

For each benchmark folder and each feature variant: the scorer's 5-fold out-of-fold F1 on
train.csv (the figure that chooses) and, beside it, F1 on valid.csv at the train-chosen
threshold (reported, never used to choose). One setting is chosen for every benchmark: the
variant with the best mean train out-of-fold F1 (the token vocabulary size is then chosen per benchmark by the
stage itself, from the grid in params, on its own train out-of-fold F1). ``--end-to-end`` prints beside it the train-only
estimate of the shipped output's quality (every blocked candidate the scorer accepts, out of fold by left
record; ``crossmatch.er.selection``); the script does not act on it — a variant that labels pairs better
but lowers it was left off by hand (``context_codes``, see pipelines/real/params.yaml).

    python -m benchmarks.er_feature_choice --data ../shared/data/walmart_amazon \
        ../shared/data/amazon_google ../shared/data/dblp_acm --context-k 0 5 10 20 --seeds 0 1 2
    # per text attribute and code tokens too, scorer settings:
    #   --context-k 20 --context-attributes --context-codes --scorer '{"max_iter": 600}'
    # scorer variants on the same features: --scorer '{}' '{"ensemble": 5, "max_features": 0.5}'
    # token-presence features: --context-k 20 --context-attributes --token-vocab 0 64 128 --end-to-end
    #   [--token-text-only: the vocabulary from the text attributes only]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from crossmatch.er.blocking import BlockingConfig
from crossmatch.er.candidates import block
from crossmatch.er.evaluate import labelled_metrics
from crossmatch.er.features import PairFeaturizer
from crossmatch.er.pipeline import oriented
from crossmatch.er.scorer import PairScorer, ScorerConfig
from crossmatch.er.selection import grouped_end_to_end
from stages._common import run
from stages._er import read_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", type=Path, required=True)
    ap.add_argument("--context-k", nargs="+", type=int, default=[0, 10])
    ap.add_argument("--context-attributes", action="store_true", help="neighbourhood per text attribute too")
    ap.add_argument("--context-codes", action="store_true", help="neighbourhood on the code tokens too")
    ap.add_argument("--token-vocab", nargs="+", type=int, default=[0],
                    help="token-presence features for this many most frequent tokens (0: off)")
    ap.add_argument("--code-prefix", nargs="+", type=int, default=[0], choices=[0, 1],
                    help="1: the longest-prefix features of values and model codes (PairFeaturizer.code_prefix)")
    ap.add_argument("--token-text-only", action="store_true",
                    help="token vocabulary from the text attributes only (no price / year digits)")
    ap.add_argument("--scorer", nargs="+", default=["{}"],
                    help='ScorerConfig overrides as JSON, one variant each, e.g. {} \'{"ensemble": 5, "max_features": 0.5}\'')
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--end-to-end", action="store_true",
                    help="also the train-only end-to-end F1 over the blocked candidates (selection.grouped_end_to_end)")
    args = ap.parse_args()
    scorers = [json.loads(s) for s in args.scorer]
    grid = [(k, v, cp, i) for k in args.context_k for v in args.token_vocab for cp in args.code_prefix
            for i in range(len(scorers))]
    oof_mean: dict[tuple[int, int, int, int], list[float]] = {g: [] for g in grid}
    print(f"{'benchmark':16} {'context_k':>9} {'tokens':>6} {'cp':>2} {'scorer':>6} {'features':>8} {'train OOF F1':>14} "
          f"{'valid F1':>14} {'s':>6}"
          + (f" {'train e2e F1':>14} {'pairs':>7}" if args.end_to_end else ""))
    for folder in args.data:
        bench = oriented(read_benchmark(folder))  # as match() groups: the smaller table left
        assert bench.train is not None and bench.valid is not None, f"{folder}: needs train.csv and valid.csv"
        cands = block(bench, config=BlockingConfig()).candidates if args.end_to_end else None
        built: dict[tuple[int, int, int], tuple[PairFeaturizer, np.ndarray, np.ndarray]] = {}
        for k, v, cp, i in grid:
            if (k, v, cp) not in built:  # the features do not depend on the scorer variant; keep the current build only
                built.clear()
                feats = PairFeaturizer(bench, context_k=k, context_attributes=args.context_attributes,
                                       context_codes=args.context_codes, token_vocab=v,
                                       token_text_only=args.token_text_only, code_prefix=bool(cp))
                built[(k, v, cp)] = (feats,
                                 feats.transform(bench.train.get_column("l").to_numpy(),
                                                 bench.train.get_column("r").to_numpy()),
                                 feats.transform(bench.valid.get_column("l").to_numpy(),
                                                 bench.valid.get_column("r").to_numpy()))
            feats, Xtr, Xva = built[(k, v, cp)]
            t0 = time.perf_counter()  # the column times the scorer fits, not the feature build
            oof, val = [], []
            for seed in args.seeds:
                sc = PairScorer(ScorerConfig(**{**scorers[i], "seed": seed})).fit(Xtr, bench.train.get_column("label").to_numpy())
                oof.append(sc.oof_f1)
                val.append(labelled_metrics(sc.predict_proba(Xva) >= sc.threshold,
                                            bench.valid.get_column("label").to_numpy())["f1"])
            oof_mean[(k, v, cp, i)].append(float(np.mean(oof)))
            sd = lambda xs: f"±{np.std(xs):.3f}" if len(xs) > 1 else ""  # noqa: E731
            e2e = ""
            if cands is not None:
                runs = [grouped_end_to_end(feats, bench, cands, seed=seed,
                                           scorer=ScorerConfig(**{**scorers[i], "seed": seed}))
                        for seed in args.seeds]
                f1 = [r["f1"] for r in runs]
                e2e = f" {np.mean(f1):>8.4f}{sd(f1):>6} {np.mean([r['pairs'] for r in runs]):>7.0f}"
            print(f"{folder.name:16} {k:>9} {v:>6} {cp:>2} {i:>6} {Xtr.shape[1]:>8} {np.mean(oof):>8.4f}{sd(oof):>6} "
                  f"{np.mean(val):>8.4f}{sd(val):>6} {time.perf_counter() - t0:>6.1f}{e2e}"
                  f"  OOF per seed {' '.join(f'{x:.4f}' for x in oof)}", flush=True)
    best = max(grid, key=lambda g: np.mean(oof_mean[g]))
    for g in grid:
        print(f"context_k {g[0]}, token_vocab {g[1]}, code_prefix {g[2]}, scorer {scorers[g[3]]}: mean train OOF F1 {np.mean(oof_mean[g]):.4f}"
              f"{'  <- chosen' if g == best else ''}")


if __name__ == "__main__":
    run("er_feature_choice", main)  # bad input or params: one short line and exit 2, no traceback
