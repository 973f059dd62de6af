"""Stage ``er_match``: score candidate pairs, decide match / no match, post-process (issue 12 §2–§6).

Inputs:   --data <folder>      tableA.csv, tableB.csv[, train.csv, valid.csv, test.csv]
          --candidates         candidates.parquet of ``er_block`` (left_id, right_id, similarity, ...)
Outputs:  --out                pairs.parquet: left_id, right_id, probability, decision, in_<post-processing>
          --metrics            scorer P/R/F1 on valid / test (threshold from train), every post-processing on them
                               and end to end, the unsupervised rule's output and figures
          --pr                 <prefix>.csv / .png: the scorer's precision-recall curve on test, else valid
With labels the scorer is trained on train.csv only; without (or ``--no-labels``) the unsupervised rule
of crossmatch.er.unsupervised decides.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from crossmatch.er import Benchmark, match  # noqa: E402
from crossmatch.er.encoder import embed, serialise  # noqa: E402
from crossmatch.errors import InputError  # noqa: E402
from stages._common import console, run, write_atomic, write_json  # noqa: E402
from stages._er import benchmark_args, load_params, read_benchmark  # noqa: E402

CANDIDATE_COLUMNS = ("left_id", "right_id", "similarity")


def read_candidates(path: Path, bench: Benchmark) -> pl.DataFrame:
    if not path.is_file():
        raise InputError("candidate pairs not found; run the er_block stage first", file=str(path))
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"not a readable parquet file ({type(exc).__name__})", file=str(path)) from None
    missing = [c for c in CANDIDATE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", file=str(path))
    pos = [dict(zip(t.get_column("id").to_list(), range(t.height), strict=True)) for t in (bench.left, bench.right)]
    out = {}
    for col, lookup, key in (("left_id", pos[0], "l"), ("right_id", pos[1], "r")):
        idx = np.array([lookup.get(str(v), -1) for v in frame.get_column(col).to_list()], dtype=np.int64)
        if (idx < 0).any():
            raise InputError("id not in the benchmark's tables (stale candidates?)", file=str(path), column=col,
                             rows=(np.flatnonzero(idx < 0) + 1).tolist())
        out[key] = idx
    return pl.DataFrame({**out, "similarity": frame.get_column("similarity").cast(pl.Float64).to_numpy()})


def main() -> None:
    ap = benchmark_args(__doc__)
    ap.add_argument("--candidates", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--metrics", required=True, type=Path)
    ap.add_argument("--pr", required=True, type=Path, help="path prefix of the precision-recall curve")
    args = ap.parse_args()
    params = load_params(args.params, args.section)
    config = params.match_config()
    bench = read_benchmark(args.data, labels=not args.no_labels)
    cands = read_candidates(args.candidates, bench)
    embeddings = None
    if params.embeddings == "minilm":
        console.print("er_match: MiniLM record embeddings ...")
        rows = [bench.left.select(bench.attributes).rows(), bench.right.select(bench.attributes).rows()]
        embeddings = (embed(serialise(bench.attributes, rows[0])), embed(serialise(bench.attributes, rows[1])))
    res = match(bench, cands, config=config, embeddings=embeddings,
                withheld_positives=params.withheld_positives.get(args.data.name, 0),
                progress=lambda step: console.print(f"er_match {args.data.name}: {step}"))
    out = res.pairs.with_columns(
        pl.Series("left_id", bench.left.get_column("id").gather(res.pairs.get_column("l"))),
        pl.Series("right_id", bench.right.get_column("id").gather(res.pairs.get_column("r"))))
    cols = ["left_id", "right_id", "probability", "decision", *[c for c in out.columns if c.startswith("in_")]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, lambda p: out.select(cols).write_parquet(p))
    pr = res.pr if res.pr is not None else pl.DataFrame(schema={"threshold": pl.Float64, "precision": pl.Float64,
                                                                "recall": pl.Float64})
    write_atomic(args.pr.with_suffix(".csv"), lambda p: pr.write_csv(p))
    split = res.metrics.get("scorer", {}).get("pr_split", "valid")
    write_atomic(args.pr.with_suffix(".png"), lambda p: _plot(pr, p, args.data.name, split))
    write_json(args.metrics, {"benchmark": args.data.name, "embeddings": params.embeddings, **res.metrics})
    scorer = res.metrics.get("scorer", {})
    how = res.metrics.get("output", "unsupervised rule")
    console.print(f"er_match {args.data.name}: {res.metrics['output_pairs']} output pairs ({how})"
                  + "".join(f", scorer {s} F1 {scorer[s]['f1']:.4f}" for s in ("valid", "test") if s in scorer))
    if "mode_reason" in res.metrics:
        console.print(f"er_match {args.data.name}: {res.metrics['mode_reason']}")


def _plot(pr: pl.DataFrame, path: Path, name: str, split: str) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    if pr.height:
        ax.plot(pr.get_column("recall"), pr.get_column("precision"))
    else:
        ax.text(0.5, 0.5, "no labelled valid pairs", ha="center")
    ax.set_xlabel(f"recall ({split})")
    ax.set_ylabel(f"precision ({split})")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{name}: pair scorer")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    run("er_match", main)
