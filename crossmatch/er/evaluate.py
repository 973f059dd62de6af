"""Entity-resolution metrics (issue 12 §5, §8): pairwise P/R/F1 and precision–recall curves.

* Labelled-pair protocol (DeepMatcher / Magellan): a labelled pair counts as predicted positive
  when the method outputs it; precision, recall and F1 over the labelled pairs only.
* End-to-end protocol: every output pair counts; truth is the set of labelled positives (so an
  unlabelled true match in the output counts against precision — a pessimistic figure).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_curve


def prf(tp: float, n_pred: float, n_true: float) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def labelled_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """P/R/F1 of boolean decisions ``pred`` on labelled pairs ``y``."""
    pred, y = np.asarray(pred, dtype=bool), np.asarray(y).astype(bool)
    return prf(float((pred & y).sum()), float(pred.sum()), float(y.sum()))


def output_metrics(output: set[tuple[int, int]], pairs: pl.DataFrame) -> dict[str, float]:
    """Labelled-pair protocol for a set of output pairs: predicted positive iff in ``output``."""
    keys = zip(pairs.get_column("l").to_list(), pairs.get_column("r").to_list(), strict=True)
    pred = np.array([k in output for k in keys], dtype=bool)
    return labelled_metrics(pred, pairs.get_column("label").to_numpy())


def end_to_end(output: set[tuple[int, int]], truth: set[tuple[int, int]]) -> dict[str, float]:
    """Every output pair counts against the truth set."""
    return {**prf(float(len(output & truth)), float(len(output)), float(len(truth))), "pairs": float(len(output))}


def end_to_end_bounds(output: set[tuple[int, int]], truth: set[tuple[int, int]],
                      labelled: set[tuple[int, int]]) -> dict[str, float]:
    """:func:`end_to_end` plus how the output splits over the labels, and the same F1 counting every output pair
    nobody labelled as a true match (``f1_if_unlabelled_true``; added to the truth too, so recall's denominator
    grows). Where the labels are a sample of the pairs (the test split withheld, pairs never labelled) the second
    is an upper bound of the true F1 (its precision and recall both are); the first is the figure against the labels:
    its precision is a lower bound, its recall is not (a true match nobody labelled and the output missed is not
    counted), so the true F1 can lie below it too. ``labelled``: every labelled pair, positive or negative."""
    unlabelled = len(output - labelled - truth)
    hits = len(output & truth)
    up = prf(float(hits + unlabelled), float(len(output)), float(len(truth) + unlabelled))
    return {**end_to_end(output, truth), "labelled_positive": float(hits),
            "labelled_negative": float(len((output & labelled) - truth)),
            "unlabelled": float(unlabelled), "f1_if_unlabelled_true": up["f1"]}


def pr_curve(prob: np.ndarray, y: np.ndarray, points: int = 101) -> pl.DataFrame:
    """Precision–recall curve (``threshold, precision, recall``) thinned to about ``points`` rows."""
    p, r, t = precision_recall_curve(np.asarray(y).astype(int), prob)
    p, r, t = p[:-1], r[:-1], t
    keep = np.unique(np.linspace(0, len(t) - 1, min(points, len(t))).round().astype(int)) if len(t) else np.zeros(0, int)
    return pl.DataFrame({"threshold": t[keep], "precision": p[keep], "recall": r[keep]})
