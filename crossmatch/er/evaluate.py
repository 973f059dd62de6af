"""Entity-resolution metrics (issue 12 §5, §8): pairwise P/R/F1 and precision–recall curves.

* Labelled-pair protocol (DeepMatcher / Magellan): a labelled pair counts as predicted positive
  when the method outputs it; precision, recall and F1 over the labelled pairs only.
* End-to-end protocol: every output pair counts; truth is the set of labelled positives (so an
  unlabelled true match in the output counts against precision — a pessimistic figure).
* Where a split's labels are withheld (the benchmarks' test splits) but its number of positives is published,
  :func:`end_to_end_estimate` estimates the end-to-end figure against *all* labelled positives, as the issue
  defines it, from the output's recall on valid.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import binomtest
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


def end_to_end_estimate(output: set[tuple[int, int]], truth: set[tuple[int, int]], labelled: set[tuple[int, int]],
                        *, withheld_positives: int, valid_recall: float, valid_positives: int,
                        confidence: float = 0.95) -> dict[str, float]:
    """End-to-end P/R/F1 against the labelled positives *plus* a withheld split's ``withheld_positives``.

    The withheld positives are pairs nobody labelled here, so an output that finds one counts it among its
    unlabelled pairs. Assumed: the output finds them at its labelled-pair recall on valid (the splits are drawn
    alike; nothing was chosen on valid), and every other unlabelled output pair is a false match (the benchmark's
    own truth: all labelled positives). The estimate of found withheld positives is ``valid_recall ·
    withheld_positives``, capped by the unlabelled output pairs (``capped`` = 1 when the cap decides);
    ``f1_low`` / ``f1_high`` use the Wilson interval of that recall over ``valid_positives`` pairs (scipy's
    ``binomtest``; F1 grows with the count, so its bounds are the count's). An estimate under those assumptions,
    not a measurement; the labelled positives count as the output finds them, train's included, as in
    :func:`end_to_end` (for a scorer fitted on train, near its in-sample recall)."""
    if withheld_positives < 0 or valid_positives < 1 or not 0.0 <= valid_recall <= 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError(f"need withheld_positives >= 0, valid_positives >= 1, 0 <= valid_recall <= 1 and 0 < "
                         f"confidence < 1, got {withheld_positives}, {valid_positives}, {valid_recall}, {confidence}")
    hits = len(output & truth)
    unlabelled = len(output - labelled - truth)
    ci = binomtest(round(valid_recall * valid_positives), valid_positives).proportion_ci(
        confidence_level=confidence, method="wilson")

    def at(recall: float) -> dict[str, float]:
        found = min(max(recall, 0.0), 1.0) * withheld_positives
        return prf(hits + min(found, unlabelled), float(len(output)), float(len(truth) + withheld_positives))

    est = at(valid_recall)
    return {**est, "withheld_positives": float(withheld_positives),
            "withheld_found": min(valid_recall * withheld_positives, float(unlabelled)),
            "capped": float(valid_recall * withheld_positives > unlabelled),
            "f1_low": at(float(ci.low))["f1"], "f1_high": at(float(ci.high))["f1"]}


def pr_curve(prob: np.ndarray, y: np.ndarray, points: int = 101) -> pl.DataFrame:
    """Precision–recall curve (``threshold, precision, recall``) thinned to about ``points`` rows."""
    p, r, t = precision_recall_curve(np.asarray(y).astype(int), prob)
    p, r, t = p[:-1], r[:-1], t
    keep = np.unique(np.linspace(0, len(t) - 1, min(points, len(t))).round().astype(int)) if len(t) else np.zeros(0, int)
    return pl.DataFrame({"threshold": t[keep], "precision": p[keep], "recall": r[keep]})
