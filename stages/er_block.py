"""Stage ``er_block``: candidate pairs of a two-table benchmark (issue 12 §1; crossmatch.er.block).

Inputs:   --data <folder>    tableA.csv, tableB.csv[, train.csv, valid.csv, test.csv]
Outputs:  --out              candidates.parquet: left_id, right_id, l, r (row positions), similarity,
                             rank_left, rank_right
          --metrics          proposing table and k (chosen on train), candidate pairs, reduction, recall on train / valid / test
          --curve            <prefix>.csv and <prefix>.png: candidate-set size vs recall (k per record of the proposer)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from crossmatch.er import block  # noqa: E402
from stages._common import console, run, write_atomic, write_json  # noqa: E402
from stages._er import benchmark_args, load_params, read_benchmark  # noqa: E402


def main() -> None:
    ap = benchmark_args(__doc__)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--metrics", required=True, type=Path)
    ap.add_argument("--curve", required=True, type=Path, help="path prefix of the recall curve (.csv, .png)")
    args = ap.parse_args()
    params = load_params(args.params, args.section)
    bench = read_benchmark(args.data, labels=not args.no_labels)
    res = block(bench, config=params.blocking_config())
    ids = res.candidates.with_columns(
        pl.Series("left_id", bench.left.get_column("id").gather(res.candidates.get_column("l"))),
        pl.Series("right_id", bench.right.get_column("id").gather(res.candidates.get_column("r"))))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, lambda p: ids.select("left_id", "right_id", "l", "r", "similarity", "rank_left",
                                                "rank_right").write_parquet(p))
    # k in the curve is per record of the proposing table: the column says which
    curve = res.curve.with_columns(pl.lit(res.metrics.get("proposer", "left")).alias("proposer"))
    write_atomic(args.curve.with_suffix(".csv"), lambda p: curve.write_csv(p))
    write_atomic(args.curve.with_suffix(".png"), lambda p: _plot(res.curve, p, args.data.name))
    write_json(args.metrics, {"benchmark": args.data.name, **res.metrics})
    side = "tableA" if res.metrics.get("proposer", "left") == "left" else "tableB"
    console.print(f"er_block {args.data.name}: {res.metrics['candidate_pairs']} candidate pairs ({side} proposes, "
                  f"k = {res.metrics['k']})"
                  + "".join(f", recall {s} {res.metrics[f'recall_{s}']:.4f}" for s in ("train", "valid", "test")
                            if res.metrics.get(f"recall_{s}") is not None))


def _plot(curve: pl.DataFrame, path: Path, name: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for col in curve.columns:
        if col.startswith("recall_"):
            ax.plot(curve.get_column("pairs"), curve.get_column(col), marker="o", label=col.removeprefix("recall_"))
    ax.set_xscale("log")
    ax.set_xlabel("candidate pairs")
    ax.set_ylabel("recall of labelled positives")
    ax.set_title(f"{name}: blocking size vs recall")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    run("er_block", main)
