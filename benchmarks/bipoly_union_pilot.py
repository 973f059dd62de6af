"""The train-only pilot behind ``blocking.labelled_union`` (docs/blocking.md, BiPoly plus the labelled category pairs).

Before the method was built, one 5-fold split of Walmart–Amazon's *train* positives asked whether BiPoly.C on the
label-free ``neighbours`` kind, united with the category pairs of the other folds' positives, blocks the held-out
fold better than either alone. valid.csv's pairs are dropped on reading and never scored.

    python -m benchmarks.bipoly_union_pilot [--root data/real/walmart_amazon]   (~20 s; needs the ingest stage's output)

Printed (cross-fitted train tradeoff, mean over the 5 folds): BiPoly.C alone 0.668, train's pairs alone (m = 1)
0.699, their union at BiPoly.C's own best rewards (ω = −0.8, η = −1) 0.738, and at the best grid point for the union
0.746.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import polars as pl

from crossmatch.bipoly.center import bipoly_c
from crossmatch.bipoly.instance import Rewards
from crossmatch.bipoly.metrics import BlockingTruth, blocking_truth
from crossmatch.bipoly.neighbours import neighbour_similarity
from crossmatch.errors import InputError
from stages._common import run


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise InputError("file not found; run dvc repro pipelines/real/dvc.yaml:ingest_walmart_amazon first",
                         file=str(path))
    return pl.read_parquet(path)


def _cv(pairs_of_fold: list[np.ndarray], held: list[BlockingTruth], own: np.ndarray) -> tuple[float, float, float]:
    scores = []
    for labelled, truth in zip(pairs_of_fold, held, strict=True):
        p = np.unique(np.r_[labelled, own], axis=0).reshape(-1, 2)
        s = truth.score(p[:, 0], p[:, 1])
        scores.append((s.coverage, s.reduction, s.tradeoff))
    c, r, t = np.mean(scores, axis=0)
    return float(c), float(r), float(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("data/real/walmart_amazon"))
    args = ap.parse_args()
    left = _read(args.root / "ingested/walmart/items.parquet")
    right = _read(args.root / "ingested/amazon/items.parquet")
    truth = _read(args.root / "truth/product_matches.parquet")
    train = truth.filter(pl.col("split") == "train")  # valid's pairs are never read below
    ln = tuple(sorted(left.get_column("fine_category").unique().to_list()))
    rn = tuple(sorted(right.get_column("fine_category").unique().to_list()))
    inst = neighbour_similarity(left, right, left_names=ln, right_names=rn, k=10, top_k=20).instance
    fold = np.random.default_rng(0).integers(0, 5, train.height)
    labelled, held = [], []
    for k in range(5):
        c = blocking_truth(left, right, ln, rn, train.filter(pl.Series(fold != k))).counts().tocoo()
        labelled.append(np.c_[c.row, c.col])
        held.append(blocking_truth(left, right, ln, rn, train.filter(pl.Series(fold == k))))
    none = np.zeros((0, 2), dtype=np.int64)
    own_best = bipoly_c(inst, Rewards.tied(-0.8, -1.0))  # BiPoly.C's best setting on train for this kind
    own = np.c_[own_best.left, own_best.right]
    print("cross-fitted train coverage / reduction / tradeoff (5 folds of train's positives):")
    print("  BiPoly.C alone (ω −0.8, η −1):      %.3f / %.3f / %.3f" % _cv([none] * 5, held, own))
    print("  train's pairs alone (m = 1):         %.3f / %.3f / %.3f" % _cv(labelled, held, none))
    print("  union, BiPoly.C's own rewards:       %.3f / %.3f / %.3f" % _cv(labelled, held, own))
    grid = np.round(np.arange(-1.0, 1.0001, 0.1), 1)
    rows = []
    for w, e in itertools.product(grid, grid):  # in grid order; ties keep the first, as the library's choice
        m = bipoly_c(inst, Rewards.tied(float(w), float(e)))
        rows.append((_cv(labelled, held, np.c_[m.left, m.right]), float(w) + 0.0, float(e) + 0.0))
    (c, r, t), w, e = max(rows, key=lambda row: row[0][2])
    print(f"  union, best grid point (ω {w:g}, η {e:g}): {c:.3f} / {r:.3f} / {t:.3f}")


if __name__ == "__main__":
    run("bipoly_union_pilot", main)
