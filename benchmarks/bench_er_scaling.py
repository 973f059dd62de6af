"""How the ER stages' neighbour searches grow with the tables: exact vs pruned (``crossmatch.er.knn``).

From a benchmark folder (default Walmart–Amazon, 2,554 × 22,074 records) it builds tables ``s`` times as large on
both sides: the records plus ``s − 1`` copies, each copy's first attribute followed by a random code (``v123456``),
so every copy is a near-duplicate of a real record — the hard case for a neighbour search, and for the pruned one
in particular, since every n-gram's document frequency grows with ``s``. The labelled pairs stay on the original
records. Per scale it prints, as JSON lines:

* the TF-IDF fit seconds (the blocking representation; linear) and the exact search's multiply-adds;
* the top-``k`` search left → right: exact seconds (up to ``--exact-up-to``), pruned seconds at the shipped
  ``max_df``, the share of the exact top-k pairs the pruned search returns, and the recall of the labelled
  positives (train + valid) among each one's top-k;
* ``block()`` end to end with the shipped blocking params (``search: auto``): seconds, candidate pairs, the search
  it ran;
* the pair scorer's featuriser with the shipped neighbourhood features (``PairFeaturizer``: its TF-IDF fits and
  the top-20 searches of the record and of every text attribute, both directions) up to ``--context-up-to``;
* at the end, the log-log slope of seconds against records for each column (1: linear, 2: quadratic).

    python -m benchmarks.bench_er_scaling [--data ../shared/data/walmart_amazon] [--scales 1 2 4 8 16]
        [--exact-up-to 4] [--context-up-to 8] [--k 20]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from crossmatch.er.blocking import BlockingConfig, tfidf_matrices
from crossmatch.er.candidates import block
from crossmatch.er.features import PairFeaturizer
from crossmatch.er.knn import exact_work, topk
from crossmatch.er.tables import Benchmark, positives
from stages._common import run
from stages._er import load_params, read_benchmark


def grown(bench: Benchmark, scale: int, seed: int = 0) -> Benchmark:
    """``bench`` with ``scale − 1`` near-duplicate copies of every record appended on both sides."""
    rng = np.random.default_rng(seed)
    first = bench.attributes[0]

    def grow(frame: pl.DataFrame) -> pl.DataFrame:
        parts = [frame]
        for c in range(1, scale):
            code = pl.Series([f"v{x}" for x in rng.integers(0, 10**6, frame.height)])
            parts.append(frame.with_columns(pl.col("id") + f"_c{c}", (pl.col(first) + " " + code).alias(first)))
        return pl.concat(parts)

    return Benchmark(grow(bench.left), grow(bench.right), bench.attributes, bench.train, bench.valid)


def _slope(x: list[float], y: list[float]) -> float | None:
    """Log-log slope of ``y`` against ``x`` over the scales that measured it (None below two)."""
    ok = [(a, b) for a, b in zip(x, y, strict=True) if b > 0]
    if len(ok) < 2:
        return None
    return round(float(np.polyfit(np.log([a for a, _ in ok]), np.log([b for _, b in ok]), 1)[0]), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/walmart_amazon"))
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--exact-up-to", type=int, default=4, help="largest scale the exact search is timed at")
    ap.add_argument("--context-up-to", type=int, default=8, help="largest scale the featuriser is timed at")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--params", type=Path, default=Path("pipelines/real/params.yaml"))
    args = ap.parse_args()
    er = load_params(str(args.params), "er")
    shipped, match = er.blocking_config(), er.match_config()
    base = read_benchmark(args.data)
    truth = positives(base.train) | positives(base.valid) if base.train is not None and base.valid is not None else set()
    cols: dict[str, list[float]] = {"records": [], "tfidf_s": [], "exact_s": [], "pruned_s": [], "block_s": [],
                                "featuriser_s": []}
    for scale in args.scales:
        bench = grown(base, scale)
        t0 = time.perf_counter()
        A, B = tfidf_matrices(bench, BlockingConfig())
        row: dict[str, object] = {"scale": scale, "left": A.shape[0], "right": B.shape[0],
                                  "tfidf_s": round(time.perf_counter() - t0, 1), "exact_work": exact_work(A, B)}
        found: dict[str, set[tuple[int, int]]] = {}
        for search in ("exact", "pruned"):
            if search == "exact" and scale > args.exact_up_to:
                continue
            t0 = time.perf_counter()
            r, c, _, _ = topk(A, B, args.k, shipped.chunk, search=search, max_df=shipped.max_df,
                              shortlist=shipped.shortlist)
            row[f"{search}_s"] = round(time.perf_counter() - t0, 1)
            found[search] = set(zip(r.tolist(), c.tolist(), strict=True))
            if truth:
                row[f"{search}_recall"] = round(len(truth & found[search]) / len(truth), 4)
        if "exact" in found:
            row["pruned_share_of_exact_topk"] = round(len(found["exact"] & found["pruned"]) / len(found["exact"]), 4)
        t0 = time.perf_counter()
        res = block(bench, config=shipped)
        row.update({"block_s": round(time.perf_counter() - t0, 1), "block_candidates": res.metrics["candidate_pairs"],
                    "block_search": res.metrics["search"]})
        if scale <= args.context_up_to:
            t0 = time.perf_counter()
            PairFeaturizer(bench, context_k=match.context_k, context_attributes=match.context_attributes,
                           context_codes=match.context_codes, fuzzy_max_chars=match.fuzzy_max_chars,
                           code_prefix=match.code_prefix)
            row["featuriser_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)
        cols["records"].append(float(A.shape[0] + B.shape[0]))
        for key in ("tfidf_s", "exact_s", "pruned_s", "block_s", "featuriser_s"):
            cols[key].append(float(row.get(key, 0.0)))  # type: ignore[arg-type]
    n = cols["records"]
    print(json.dumps({"slope_vs_records": {k: _slope(n, v) for k, v in cols.items() if k != "records"}}))


if __name__ == "__main__":
    run("bench_er_scaling", main)  # bad input or params: one short line and exit 2, no traceback
