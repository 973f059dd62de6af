"""What a long-text attribute costs the ER stages (a product description, as in Abt-Buy or DeepMatcher's
textual benchmarks), with the rapidfuzz features capped at ``er.match.fuzzy_max_chars`` and uncapped.

From a benchmark folder (default Amazon–Google) it builds variants with one more column, ``description``: the
record's title followed by ``--words`` words drawn at random (seeded) from all titles of both tables, ~6.5
characters a word. The descriptions carry no signal, so the F1 printed is no quality figure; the seconds are.

Per variant it prints
* the mean description length;
* featurisation milliseconds per pair on ``--sample`` train pairs (``PairFeaturizer`` without neighbourhood
  features), capped at the shipped ``fuzzy_max_chars`` and uncapped, and their ratio; capped with the code-prefix
  features too (``code_prefix``);
* the reference classifier's milliseconds per pair (:mod:`crossmatch.er.reference`: features of every train and
  valid pair, its fit and scoring, at the shipped cap);
* the README's two commands (``stages.er_block``, ``stages.er_match``) end to end with the shipped params: seconds,
  candidate pairs, output pairs (``--no-stages`` skips them).

    python -m benchmarks.bench_er_long_text [--data ../shared/data/amazon_google] [--words 0 150 300] [--no-stages]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import polars as pl

from benchmarks.er_layouts import fresh_workdir, run_layout, with_description
from crossmatch.er.features import PairFeaturizer
from crossmatch.er.reference import reference_classifier
from stages._common import run
from stages._er import load_params, read_benchmark


def ms_per_pair(folder: Path, sample: int, max_chars: int, code_prefix: bool = False) -> float:
    bench = read_benchmark(folder)
    assert bench.train is not None
    pairs = bench.train.head(sample)
    feats = PairFeaturizer(bench, fuzzy_max_chars=max_chars, code_prefix=code_prefix)
    t0 = time.perf_counter()
    feats.transform(pairs.get_column("l").to_numpy(), pairs.get_column("r").to_numpy())
    return (time.perf_counter() - t0) / pairs.height * 1e3


def reference_ms_per_pair(folder: Path, max_chars: int) -> float:
    bench = read_benchmark(folder)
    assert bench.train is not None and bench.valid is not None
    t0 = time.perf_counter()
    reference_classifier(bench, {"valid": bench.valid}, fuzzy_max_chars=max_chars)
    return (time.perf_counter() - t0) / (bench.train.height + bench.valid.height) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/amazon_google"))
    ap.add_argument("--words", type=int, nargs="+", default=[0, 150, 300])
    ap.add_argument("--sample", type=int, default=100, help="train pairs timed per featurisation")
    ap.add_argument("--work", type=Path, default=Path("/tmp/er_long_text"))
    ap.add_argument("--params", type=Path, default=Path("pipelines/real/params.yaml"))
    ap.add_argument("--no-stages", action="store_true", help="skip the two stages end to end")
    args = ap.parse_args()
    if "title" not in pl.read_csv(args.data / "tableA.csv", n_rows=1).columns:
        raise SystemExit(f"{args.data}: needs a title column to build descriptions from")
    fresh_workdir(args.work, ".bench_er_long_text")
    cap = load_params(str(args.params), "er").match_config().fuzzy_max_chars
    for words in args.words:
        folder = args.work / f"words_{words}"
        with_description(args.data, folder, words)
        lengths = pl.read_csv(folder / "tableA.csv").get_column("description").str.len_chars().to_numpy()
        length = float(lengths.mean())
        capped, uncapped = ms_per_pair(folder, args.sample, cap), ms_per_pair(folder, args.sample, 1 << 30)
        prefixed = ms_per_pair(folder, args.sample, cap, code_prefix=True)
        print(json.dumps({"words": words, "description_chars": round(length), "fuzzy_max_chars": cap,
                          "ms_per_pair_capped": round(capped, 2), "ms_per_pair_uncapped": round(uncapped, 2),
                          "uncapped_over_capped": round(uncapped / capped, 1),
                          "ms_per_pair_capped_code_prefix": round(prefixed, 2),
                          "reference_ms_per_pair": round(reference_ms_per_pair(folder, cap), 2)}), flush=True)
        if not args.no_stages:
            print(json.dumps({"words": words, **run_layout(folder, args.params)}), flush=True)


if __name__ == "__main__":
    run("bench_er_long_text", main)  # bad input or params: one short line and exit 2, no traceback
