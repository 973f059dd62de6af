"""Unsupervised candidate generation for entity resolution: TF-IDF nearest neighbours (issue 12 §1).

Every record of one table proposes its ``k`` most similar records of the other (cosine of
sublinear character n-gram TF-IDF over all attributes); the candidate set is the union over
both directions. No label is needed; labels, when present, only choose ``k`` (on train) and
measure recall (on valid). Cost: one sparse product per chunk of rows, memory
O(chunk · n_other + candidates) — never the full n_left × n_right matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from crossmatch.er.tables import Benchmark
from crossmatch.errors import ConfigError


@dataclass(frozen=True)
class BlockingConfig:
    """Candidate generation settings (the ``k`` grid is searched on train positives when labels exist)."""

    analyzer: str = "char_wb"  # char_wb | word
    ngram_min: int = 3
    ngram_max: int = 5
    k_left: int = 20  # candidates each left record proposes
    k_right: int = 0  # candidates each right record proposes (0: one direction only)
    k_grid: tuple[int, ...] = (5, 10, 20, 40, 60)
    target_recall: float = 0.99  # the smallest k of the grid reaching it on train is chosen
    chunk: int = 1024
    # all: the whole record's text. auto: the same, unless it misses target_recall on train at every k of the grid
    # (a long description drowns the name); then each text attribute alone is tried too (pipeline.block)
    views: str = "all"

    def __post_init__(self) -> None:
        if self.analyzer not in ("char_wb", "word"):
            raise ConfigError(f"er blocking.analyzer must be char_wb | word, got {self.analyzer!r}")
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ConfigError("er blocking: need 1 <= ngram_min <= ngram_max")
        if self.k_left < 1 or self.k_right < 0 or not self.k_grid or min(self.k_grid) < 1:
            raise ConfigError("er blocking: k_left and every k_grid value must be >= 1, k_right >= 0")
        if not 0.0 < self.target_recall <= 1.0:
            raise ConfigError("er blocking.target_recall must be in (0, 1]")
        if self.views not in ("all", "auto"):
            raise ConfigError(f"er blocking.views must be all | auto, got {self.views!r}")


def tfidf_matrices(bench: Benchmark, config: BlockingConfig,
                   attributes: tuple[str, ...] | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Row-normalised TF-IDF of each side's concatenated ``attributes`` (default: all), one vocabulary for both."""
    ngram = (config.ngram_min, config.ngram_max) if config.analyzer == "char_wb" else (1, 1)
    left, right = bench.text("left", attributes), bench.text("right", attributes)
    vec = TfidfVectorizer(analyzer=config.analyzer, ngram_range=ngram, sublinear_tf=True, dtype=np.float32)
    vec.fit(left + right)
    return vec.transform(left).tocsr(), vec.transform(right).tocsr()


def topk(X: sp.csr_matrix, Y: sp.csr_matrix, k: int, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of X → their ``k`` best rows of Y: (row, col, cosine, 1-based rank)."""
    k = min(k, Y.shape[0])
    rows, cols, sims, ranks = [], [], [], []
    YT = Y.T.tocsc()
    for s in range(0, X.shape[0], chunk):
        S = (X[s:s + chunk] @ YT).toarray()
        idx = np.argpartition(-S, k - 1, axis=1)[:, :k] if k < S.shape[1] else np.tile(np.arange(S.shape[1]), (S.shape[0], 1))
        val = np.take_along_axis(S, idx, axis=1)
        order = np.argsort(-val, axis=1, kind="stable")
        idx, val = np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)
        rows.append(np.repeat(np.arange(s, s + S.shape[0]), k))
        cols.append(idx.ravel())
        sims.append(val.ravel())
        ranks.append(np.tile(np.arange(1, k + 1), S.shape[0]))
    def cat(xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs) if xs else np.zeros(0)

    return cat(rows).astype(np.int64), cat(cols).astype(np.int64), cat(sims).astype(np.float64), cat(ranks).astype(np.int64)


def candidates(bench: Benchmark, config: BlockingConfig, *, k_left: int | None = None,
               k_right: int | None = None, attributes: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Candidate pairs ``l, r, similarity, rank_left, rank_right`` (rank 0: not proposed by that side), on the text
    of ``attributes`` (default: all)."""
    A, B = tfidf_matrices(bench, config, attributes)
    kl = config.k_left if k_left is None else k_left
    kr = config.k_right if k_right is None else k_right
    l1, r1, s1, rk1 = topk(A, B, kl, config.chunk)
    frames = [pl.DataFrame({"l": l1, "r": r1, "similarity": s1, "rank_left": rk1, "rank_right": np.zeros_like(rk1)})]
    if kr > 0:
        r2, l2, s2, rk2 = topk(B, A, kr, config.chunk)
        frames.append(pl.DataFrame({"l": l2, "r": r2, "similarity": s2, "rank_left": np.zeros_like(rk2), "rank_right": rk2}))
    out = pl.concat(frames).group_by("l", "r").agg(
        pl.col("similarity").max(), pl.col("rank_left").max(), pl.col("rank_right").max())
    return out.sort("l", "r")


def recall(cands: pl.DataFrame, truth: set[tuple[int, int]]) -> float:
    """Share of the true pairs that are candidates (pair completeness)."""
    if not truth:
        return float("nan")
    have = set(zip(cands.get_column("l").to_list(), cands.get_column("r").to_list(), strict=True))
    return len(truth & have) / len(truth)


def recall_curve(cands: pl.DataFrame, truths: dict[str, set[tuple[int, int]]], ks: Sequence[int]) -> pl.DataFrame:
    """Candidate-set size vs recall when each left record keeps its top ``k`` (``rank_left ≤ k``)."""
    rows = []
    for k in sorted(set(int(x) for x in ks)):
        sub = cands.filter((pl.col("rank_left") >= 1) & (pl.col("rank_left") <= k) | (pl.col("rank_right") >= 1))
        rows.append({"k": k, "pairs": sub.height, **{f"recall_{n}": recall(sub, t) for n, t in truths.items()}})
    return pl.DataFrame(rows)


def choose_k(curve: pl.DataFrame, *, target: float, split: str = "train") -> int:
    """The smallest ``k`` whose recall on ``split`` reaches ``target`` (else the largest ``k``)."""
    col = f"recall_{split}"
    ok = curve.filter(pl.col(col) >= target)
    return int((ok if ok.height else curve).get_column("k").min() if ok.height else curve.get_column("k").max())  # type: ignore[arg-type]
