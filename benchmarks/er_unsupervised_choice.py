"""How the unsupervised rule's self-training is set, chosen on train labels only (issue 12 §2).

For each benchmark folder: label-free blocking (``er.blocking.k_left`` nearest neighbours, as a user with
no labels gets), then the rule of :mod:`crossmatch.er.unsupervised` — the mixture alone, and self-training
for each ``--quantiles`` value (the share of the mixture's matches that are *not* pseudo-positives). Printed
per variant, from train.csv only (valid.csv's labels are never read):

* ``trainF1``: the labelled-pair F1 on the train pairs;
* ``e2e*``: end to end on the records outside valid.csv — every output pair whose left or right record has
  no valid pair counts, against the train positives among those records (valid's ids are read to leave its
  records out, never its labels). Unlabelled true matches count as errors, as in the reported end-to-end F1.

One setting serves every benchmark: the variant with the best mean ``trainF1``. ``--cross-fit 0 1`` and
``--refit full folds`` add the scorer's variants (pseudo-labelled pairs scored out of fold; which models
score the other candidates) to the grid. ``--final threshold greedy`` adds unique-mapping clustering of the
self-trained matches (one partner per record) as the output; ``--similarity tfidf minilm mean`` starts the rule
from the packaged MiniLM encoder's record cosine (or its mean with the blocking's TF-IDF cosine) instead, and
``--embedding-feature 0 1`` gives the self-trained scorer that cosine as a feature (both embed every record
once: ~4 min on one core for Walmart–Amazon's 24.6 k).

    python -m benchmarks.er_unsupervised_choice --data ../shared/data/walmart_amazon \
        ../shared/data/amazon_google ../shared/data/dblp_acm --quantiles 0.5 0.25 0.0
    # at the chosen quantile: --quantiles 0.0 --cross-fit 0 1 --refit full folds
    # the output and the starting similarity: --quantiles 0.0 --final threshold greedy
    #   --quantiles 0.0 --similarity tfidf minilm mean --embedding-feature 0 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from crossmatch.er.blocking import candidates
from crossmatch.er.encoder import embed, serialise
from crossmatch.er.evaluate import end_to_end, output_metrics
from crossmatch.er.features import PairFeaturizer
from crossmatch.er.pipeline import oriented
from crossmatch.er.postprocess import greedy_one_to_one
from crossmatch.er.scorer import ScorerConfig
from crossmatch.er.tables import Benchmark, positives
from crossmatch.er.unsupervised import self_trained_scores, unsupervised_matches
from stages._common import run
from stages._er import load_params, read_benchmark


def judge(bench: Benchmark, l: np.ndarray, r: np.ndarray, chosen: np.ndarray) -> tuple[float, float, int]:
    """Train labelled-pair F1, end-to-end F1 outside valid's records, output size."""
    assert bench.train is not None and bench.valid is not None
    out = set(zip(l[chosen].tolist(), r[chosen].tolist(), strict=True))
    held_l, held_r = set(bench.valid.get_column("l").to_list()), set(bench.valid.get_column("r").to_list())
    outside = {p for p in out if p[0] not in held_l and p[1] not in held_r}
    truth = {p for p in positives(bench.train) if p[0] not in held_l and p[1] not in held_r}
    return output_metrics(out, bench.train)["f1"], end_to_end(outside, truth)["f1"], len(out)


def run_grid(args: argparse.Namespace, bench: Benchmark, l: np.ndarray, r: np.ndarray, start: np.ndarray,
             X: np.ndarray, tag: str, scores: dict[str, list[float]], e2es: dict[str, list[float]]) -> None:
    """Self-training from ``start`` for every quantile × cross-fit × refit × final output; prints and records."""
    for q, cf, refit in ((q, cf, refit) for q in args.quantiles for cf in args.cross_fit for refit in args.refit):
        name = tag + f"quantile {q}" + (f" cross-fit {cf} refit {refit}" if (args.cross_fit, args.refit) != ([0], ["full"]) else "")
        res = self_trained_scores(X, l, r, start, rounds=args.rounds, confident_quantile=q, cross_fit=bool(cf),
                                  scorer=ScorerConfig(refit=refit))
        if res is None:
            print(f"  {name:<40} too few pseudo-labels")
            continue
        s, th, _ = res
        above = np.flatnonzero(s >= th)
        for final in args.final:
            chosen = above if final == "threshold" else above[greedy_one_to_one(l[above], r[above], s[above])]
            label = name + ("" if args.final == ["threshold"] else f" {final}")
            f1, e2e, n = judge(bench, l, r, chosen)
            scores.setdefault(label, []).append(f1)
            e2es.setdefault(label, []).append(e2e)
            print(f"  {label:<40} trainF1 {f1:.3f}  e2e* {e2e:.3f}  pairs {n}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", type=Path, required=True)
    ap.add_argument("--params", default="pipelines/real/params.yaml")
    ap.add_argument("--quantiles", nargs="+", type=float, default=[0.5, 0.0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--cross-fit", nargs="+", type=int, default=[0], choices=[0, 1])
    ap.add_argument("--refit", nargs="+", default=["full"], choices=["full", "folds"])
    ap.add_argument("--final", nargs="+", default=["threshold"], choices=["threshold", "greedy"],
                    help="the output: pairs above the threshold, or unique-mapping clustering of those")
    ap.add_argument("--similarity", nargs="+", default=["tfidf"], choices=["tfidf", "minilm", "mean"],
                    help="the score the mixture and the pseudo-labels start from")
    ap.add_argument("--embedding-feature", nargs="+", type=int, default=[0], choices=[0, 1],
                    help="1: the MiniLM record cosine is one more feature of the self-trained scorer")
    ap.add_argument("--code-prefix", type=int, default=0, choices=[0, 1],
                    help="1: the self-trained scorer also gets the longest-prefix features of values and model codes "
                         "(PairFeaturizer.code_prefix; the pipeline's rule never does: this measures why)")
    args = ap.parse_args()
    params = load_params(args.params, "er")
    bc = params.blocking_config()
    scores: dict[str, list[float]] = {}
    e2es: dict[str, list[float]] = {}
    for folder in args.data:
        t0 = time.perf_counter()
        bench = oriented(read_benchmark(folder))  # the smaller table left: it proposes, as without labels
        if bench.train is None or bench.valid is None:
            raise SystemExit(f"{folder}: needs train.csv and valid.csv to judge the variants")
        cands = candidates(bench, bc, k_left=bc.k_left)
        l, r, sim = (cands.get_column(c).to_numpy() for c in ("l", "r", "similarity"))
        emb = None
        if args.similarity != ["tfidf"] or 1 in args.embedding_feature:
            rows = (bench.left.select(bench.attributes).rows(), bench.right.select(bench.attributes).rows())
            emb = (embed(serialise(bench.attributes, rows[0])), embed(serialise(bench.attributes, rows[1])))
        print(f"{folder.name}: {len(l):,} candidates (k {bc.k_left})")
        starts = {"tfidf": sim}
        if emb is not None:
            cos = np.einsum("ij,ij->i", emb[0][l], emb[1][r]).astype(np.float64)
            starts |= {"minilm": cos, "mean": (sim + cos) / 2}
        for sname in args.similarity:
            s0 = starts[sname]
            tag = "" if args.similarity == ["tfidf"] else f"sim {sname} "
            kept, _ = unsupervised_matches(l, r, s0)
            f1, e2e, n = judge(bench, l, r, kept)
            scores.setdefault(f"{tag}mixture", []).append(f1)
            e2es.setdefault(f"{tag}mixture", []).append(e2e)
            print(f"  {tag + 'mixture only':<40} trainF1 {f1:.3f}  e2e* {e2e:.3f}  pairs {n}", flush=True)
            for ef in args.embedding_feature:
                feats = PairFeaturizer(bench, context_k=0, token_vocab=0, embeddings=emb if ef else None,
                                       code_prefix=bool(args.code_prefix))
                # the rule's own features, as in the pipeline (context_k and token_vocab are 0 here anyway); with
                # --code-prefix 1 the code-prefix columns are deliberately kept, unlike the pipeline
                drop = feats.context_names | feats.token_names
                X = feats.transform(l, r)[:, [i for i, c in enumerate(feats.names) if c not in drop]]
                etag = tag + ("" if args.embedding_feature == [0] else f"embfeat {ef} ")
                run_grid(args, bench, l, r, s0, X, etag, scores, e2es)
        print(f"  ({time.perf_counter() - t0:.0f} s)")
    print("mean over the benchmarks: trainF1, e2e*")
    for name, v in scores.items():
        print(f"  {name:<40} {np.mean(v):.3f}  {np.mean(e2es[name]):.3f}"
              + ("" if len(v) == len(args.data) else f" (on {len(v)} of them)"))


if __name__ == "__main__":
    run("er_unsupervised_choice", main)  # bad input or params: one short line and exit 2, no traceback
