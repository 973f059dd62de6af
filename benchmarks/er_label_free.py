"""The entity-resolution pipeline with no label read anywhere, judged afterwards against the labels (issue 12 §2, §5).

    python -m benchmarks.er_label_free --data ../shared/data/walmart_amazon [--params pipelines/real/params.yaml] \
        [--out reports/er_label_free_walmart_amazon.json]

What a user with two bare catalogues gets (``er_block`` and ``er_match`` with ``--no-labels``: blocking at
``er.blocking.k_left``, the unsupervised rule): the tables are read without train.csv / valid.csv, blocked and
matched; only then are the pair files read, to print the output's valid labelled-pair P/R/F1, its end-to-end F1
against the labelled positives of train + valid (with how its pairs split over the labels, and the optimistic
figure that counts every unlabelled pair a match), and, where ``er.withheld_positives`` names the folder, the
estimate against all labelled positives (:func:`crossmatch.er.evaluate.end_to_end_estimate`). The pipeline's own
unsupervised row differs in one way: it matches on candidates whose ``k`` was chosen on train labels.
About 30 s on Walmart–Amazon (one core).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks._output import emit_json
from crossmatch.er.candidates import block
from crossmatch.er.evaluate import end_to_end_bounds, end_to_end_estimate, output_metrics
from crossmatch.er.pipeline import match
from crossmatch.er.tables import positives
from stages._common import run
from stages._er import load_params, read_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--params", default="pipelines/real/params.yaml")
    ap.add_argument("--out", type=Path, help="also write the printed figures here (JSON)")
    args = ap.parse_args()
    params = load_params(args.params, "er")
    if params.embeddings != "none":
        raise SystemExit(f"{args.params}: er.embeddings is not rebuilt here (the stage embeds the records); set none")
    t0 = time.perf_counter()
    bare = read_benchmark(args.data, labels=False)
    cands = block(bare, config=params.blocking_config()).candidates
    res = match(bare, cands, config=params.match_config())
    seconds = time.perf_counter() - t0
    pairs = res.pairs.filter(res.pairs.get_column("decision"))
    out = set(zip(pairs.get_column("l").to_list(), pairs.get_column("r").to_list(), strict=True))
    # only now the labels: the same record order, so the same integer ids
    bench = read_benchmark(args.data)
    if bench.train is None or bench.valid is None:
        raise SystemExit(f"{args.data}: needs train.csv and valid.csv to judge the output")
    truth = positives(bench.train) | positives(bench.valid)
    labelled = {(a, b) for f in (bench.train, bench.valid)
                for a, b in zip(f.get_column("l").to_list(), f.get_column("r").to_list(), strict=True)}
    valid = output_metrics(out, bench.valid)
    row: dict[str, object] = {"benchmark": args.data.name, "mode": res.metrics["mode"], "candidates": cands.height,
                              "output_pairs": len(out), "seconds": round(seconds, 1), "valid": valid,
                              "end_to_end": end_to_end_bounds(out, truth, labelled)}
    withheld = params.withheld_positives.get(args.data.name, 0)
    if withheld:
        row["end_to_end_estimate"] = end_to_end_estimate(
            out, truth, labelled, withheld_positives=withheld, valid_recall=valid["recall"],
            valid_positives=int(bench.valid.get_column("label").sum()))
    emit_json(row, args.out)


if __name__ == "__main__":
    run("er_label_free", main)  # bad input or params: one short line and exit 2, no traceback
