"""The floor every pair scorer is reported against: a reference classifier with nothing tuned (issue 12, "Why").

The simple matcher a catalogue team writes in an afternoon, as the issue states it: per attribute — and for the
whole record, its values joined — the cosine of character 2–4-gram TF-IDF vectors and rapidfuzz's four ratios;
scikit-learn's gradient boosting at its defaults; match when the probability is at least 0.5. No feature search,
no calibration, no threshold choice, no neighbourhood or token features: what :mod:`crossmatch.er.scorer` and
:mod:`crossmatch.er.features` add is measured against it under the same protocol (labelled pairs of the same
splits, trained on train.csv only).

Its one open point, which features "per column" means, was settled on train only (out-of-fold F1 of the booster,
5 folds, threshold 0.5; DBLP–ACM / Amazon–Google / Walmart–Amazon, valid's labels unused; ``python -m
benchmarks.er_reference_choice``), the best mean kept: ratio + token-set ratio per attribute at character
3–5-grams 0.983 / 0.506 / 0.760; the four ratios 0.985 / 0.511 / 0.774, at 2–4-grams 0.983 / 0.519 / 0.774;
with the record as one more column: ratio + token-set at 3–5-grams 0.983 / 0.540 / 0.785, the four ratios at
3–5-grams 0.984 / 0.544 / 0.789, **at 2–4-grams (the scorer's own range) 0.984 / 0.540 / 0.808**, kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process
from sklearn.ensemble import HistGradientBoostingClassifier

from crossmatch.er.evaluate import labelled_metrics
from crossmatch.er.ngrams import char_wb_tfidf
from crossmatch.er.scorer import empty_columns, fill_empty
from crossmatch.er.tables import Benchmark

THRESHOLD = 0.5
RATIOS = {"ratio": fuzz.ratio, "partial": fuzz.partial_ratio, "token_sort": fuzz.token_sort_ratio,
          "token_set": fuzz.token_set_ratio}
RECORD = "<record>"  # the pseudo-attribute of every value of a record joined by spaces
# the pair scorer's per-attribute character n-grams (crossmatch.er.features), on the same TF-IDF (crossmatch.er.ngrams)
NGRAMS = (2, 4)


def reference_features(bench: Benchmark, l: np.ndarray, r: np.ndarray, *, record: bool = True,
                       fuzzy_max_chars: int = 256, ratios: Mapping[str, Any] = RATIOS,
                       ngrams: tuple[int, int] = NGRAMS) -> tuple[np.ndarray, list[str]]:
    """The reference's features (issue 12, "Why": the floor's TF-IDF cosine and rapidfuzz ratios per column):
    ``[len(l), 5 · columns]`` features of the pairs (row positions ``l`` into the left table, ``r`` into the
    right) and their names; the columns are the attributes and, with ``record``, the whole record: per column the
    cosine of character n-gram TF-IDF vectors (fitted on both tables' values, sublinear term frequency, as the
    scorer's own) and the four ratios in [0, 1]; NaN where either value is empty (gradient boosting routes missing
    values itself). The ratios read a value's first ``fuzzy_max_chars`` characters, the scorer's cost bound
    (``er.match.fuzzy_max_chars``): partial ratio costs 81 ms a pair at 1,000 characters, and a whole record of a
    textual benchmark is longer. Each table is vectorised once per column, whatever the number of pairs.
    ``ratios`` (name → rapidfuzz scorer) and ``ngrams`` exist for the comparison that settled them
    (``benchmarks/er_reference_choice.py``); the reference itself uses the defaults."""
    l, r = np.asarray(l, dtype=np.int64), np.asarray(r, dtype=np.int64)
    if l.shape != r.shape or l.ndim != 1:
        raise ValueError(f"l and r must be 1-d of one length, got shapes {l.shape} and {r.shape}")
    if fuzzy_max_chars < 1:
        raise ValueError(f"fuzzy_max_chars must be >= 1, got {fuzzy_max_chars}")
    cols: list[np.ndarray] = []
    names: list[str] = []
    texts = {a: (bench.left.get_column(a).to_list(), bench.right.get_column(a).to_list()) for a in bench.attributes}
    if record:
        texts[RECORD] = (bench.text("left"), bench.text("right"))
    for a, (left, right) in texts.items():
        va, vb = [left[i] for i in l], [right[j] for j in r]
        missing = np.array([not x or not y for x, y in zip(va, vb, strict=True)], dtype=bool)
        try:
            M = char_wb_tfidf(left + right, ngrams)
        except ValueError:  # the attribute is empty (or has no n-gram) in both tables: nothing to compare
            cos = np.full(len(l), np.nan)
        else:
            A, B = M[:len(left)].tocsr(), M[len(left):].tocsr()  # rows are L2-normalised: the dot is the cosine
            cos = np.asarray(A[l].multiply(B[r]).sum(axis=1), dtype=np.float64).ravel()
        cols.append(cos)
        names.append(f"{a}:tfidf_cosine")
        fa, fb = [x[:fuzzy_max_chars] for x in va], [y[:fuzzy_max_chars] for y in vb]
        for name, scorer in ratios.items():
            v = process.cpdist(fa, fb, scorer=scorer, workers=1) / 100.0 if len(l) else np.zeros(0)
            cols.append(np.asarray(v, dtype=np.float64))
            names.append(f"{a}:{name}")
        for c in cols[-1 - len(ratios):]:
            c[missing] = np.nan
    X = np.column_stack(cols) if cols else np.zeros((len(l), 0))
    return X, names


def _pairs(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (frame.get_column("l").to_numpy(), frame.get_column("r").to_numpy(),
            frame.get_column("label").to_numpy().astype(np.int64))


def reference_classifier(bench: Benchmark, splits: dict[str, pl.DataFrame], *, seed: int = 0,
                         fuzzy_max_chars: int = 256) -> dict[str, Any]:
    """Fit the reference on ``bench.train`` and score each of ``splits`` (labelled pairs, e.g. valid / test): issue
    12's floor, "threshold 0.5, nothing tuned".

    Returns ``{"features": n, "train_pairs": n, "threshold": 0.5, <split>: {precision, recall, f1}}``: the
    labelled-pair protocol of the pipeline's scorer (a pair is predicted a match when its probability is ≥ 0.5). Only ``seed`` (the booster's random state; it matters only when its early stopping samples a
    validation share of its training rows) is set; every other setting is scikit-learn's default."""
    if bench.train is None or not bench.train.height:
        raise ValueError("the reference classifier needs labelled training pairs (train.csv)")
    frames = {"train": bench.train, **{f"split:{k}": v for k, v in splits.items()}}
    parts = {k: _pairs(f) for k, f in frames.items()}
    yt = parts["train"][2]
    if yt.min() == yt.max():
        raise ValueError("the reference classifier needs positive and negative training pairs")
    # one feature pass over every pair: each table is vectorised once, not once per split
    X, names = reference_features(bench, np.concatenate([p[0] for p in parts.values()]),
                                  np.concatenate([p[1] for p in parts.values()]), fuzzy_max_chars=fuzzy_max_chars)
    at = np.cumsum([0, *(len(p[2]) for p in parts.values())])
    rows = {k: X[at[i]:at[i + 1]] for i, k in enumerate(parts)}
    # a column (nearly) empty in train, e.g. an attribute no record fills, is held constant: the booster's binning
    # stops on a column it has seen no value of (the scorer's own rule)
    empty = empty_columns(rows["train"])
    model = HistGradientBoostingClassifier(random_state=seed).fit(fill_empty(rows["train"], empty), yt)
    out: dict[str, Any] = {"features": len(names), "train_pairs": int(len(yt)), "threshold": THRESHOLD}
    for split in splits:
        prob = model.predict_proba(fill_empty(rows[f"split:{split}"], empty))[:, 1]
        out[split] = {k: round(v, 6) for k, v in labelled_metrics(prob >= THRESHOLD, parts[f"split:{split}"][2]).items()}
    return out
