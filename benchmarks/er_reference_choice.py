"""Which features the reference classifier's "per column" means, settled on train only (crossmatch.er.reference).

Per benchmark folder and variant: the booster's out-of-fold F1 on train.csv (5 stratified folds, seed 0,
threshold 0.5, scikit-learn defaults). valid.csv's labels are not used. The variants: rapidfuzz's ratio + token-set ratio or
its four ratios, character 3–5- or 2–4-grams, with or without the whole record as one more column.

    python -m benchmarks.er_reference_choice --data ../shared/data/dblp_acm ../shared/data/amazon_google \
        ../shared/data/walmart_amazon        # ~1 min on one core
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz import fuzz
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict

import crossmatch.er.reference as ref
from crossmatch.er.evaluate import labelled_metrics
from stages._er import read_benchmark

TWO: dict[str, Any] = {"ratio": fuzz.ratio, "token_set": fuzz.token_set_ratio}
FOUR: dict[str, Any] = dict(ref.RATIOS)
VARIANTS: dict[str, tuple[dict[str, Any], tuple[int, int], bool]] = {
    "two ratios, 3-5": (TWO, (3, 5), False), "four ratios, 3-5": (FOUR, (3, 5), False),
    "four ratios, 2-4": (FOUR, (2, 4), False), "two ratios, 3-5, record": (TWO, (3, 5), True),
    "four ratios, 3-5, record": (FOUR, (3, 5), True), "four ratios, 2-4, record (shipped)": (FOUR, (2, 4), True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    args = ap.parse_args()
    rows: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for folder in args.data:
        bench = read_benchmark(folder)
        assert bench.train is not None
        l, r = bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy()
        y = bench.train.get_column("label").to_numpy().astype(np.int64)
        for name, (ratios, ngrams, record) in VARIANTS.items():
            X, _ = ref.reference_features(bench, l, r, record=record, ratios=ratios, ngrams=ngrams)
            oof = cross_val_predict(HistGradientBoostingClassifier(random_state=0), X, y, method="predict_proba",
                                    cv=StratifiedKFold(5, shuffle=True, random_state=0))[:, 1]
            f1 = labelled_metrics(oof >= ref.THRESHOLD, y)["f1"]
            rows[name].append(f1)
            print(f"{folder.name:16s} {name:36s} train OOF F1 {f1:.4f}", flush=True)
    for name, f1s in rows.items():
        print(f"{name:36s} " + " / ".join(f"{v:.3f}" for v in f1s) + f"   mean {np.mean(f1s):.4f}")


if __name__ == "__main__":
    main()
