"""Unsupervised candidate generation for entity resolution: TF-IDF nearest neighbours (issue 12 §1).

Every record of one table proposes its ``k`` most similar records of the other (cosine of
sublinear character n-gram TF-IDF over all attributes; here the left table, the other one with ``k_right``;
:mod:`crossmatch.er.candidates` decides which table is "left"). No label is needed; labels, when present, only choose ``k`` (on train) and
measure recall (on valid). The neighbour search is :func:`crossmatch.er.knn.topk`: exact while its
multiply-adds stay below ``exact_max_work`` (the three benchmarks), else pruned to the features held by at
most ``max_df`` records and re-ranked exactly — linear in the data where the exact search grows as
n_left × n_right. Memory is bounded per chunk, never the full n_left × n_right matrix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from crossmatch.er.knn import SEARCHES, resolve_search
from crossmatch.er.knn import topk as knn_topk
from crossmatch.er.ngrams import char_wb_tfidf
from crossmatch.er.tables import Benchmark
from crossmatch.errors import ConfigError


@dataclass(frozen=True)
class BlockingConfig:
    """Candidate generation settings (the ``k`` grid is searched on train positives when labels exist)."""

    analyzer: str = "char_wb"  # char_wb | word
    ngram_min: int = 3
    ngram_max: int = 5
    k_left: int = 20  # candidates each record of the proposing table proposes, without labels (then the smaller proposes)
    k_right: int = 0  # candidates each record of the other table proposes too (0: one direction only)
    # which table proposes (crossmatch.er.candidates): auto = with train labels the one reaching target_recall with
    # fewer pairs, else the smaller; left | right: that one
    proposer: str = "auto"
    k_grid: tuple[int, ...] = (5, 10, 20, 40, 60)
    target_recall: float = 0.99  # the smallest k of the grid reaching it on train is chosen
    chunk: int = 1024
    # all: the whole record's text. auto: the same, unless it misses target_recall on train at every k of the grid
    # (a long description drowns the name); then each text attribute alone is tried too (candidates.block)
    views: str = "all"
    # the neighbour search (crossmatch.er.knn): exact up to exact_max_work multiply-adds (Walmart–Amazon's record
    # view: 0.39e9), above that pruned to the features of at most max_df records, shortlist·k re-ranked exactly.
    # A cost bound, not tuned: on Walmart–Amazon grown 2x / 4x by copies, max_df 3000 keeps 99.3 / 97.8 % of the
    # exact top-20 and the same recall (benchmarks/bench_er_scaling.py)
    search: str = "auto"
    max_df: int = 3000
    shortlist: int = 4
    exact_max_work: float = 1e9

    def __post_init__(self) -> None:
        if self.analyzer not in ("char_wb", "word"):
            raise ConfigError(f"er blocking.analyzer must be char_wb | word, got {self.analyzer!r}")
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ConfigError("er blocking: need 1 <= ngram_min <= ngram_max")
        if self.k_left < 1 or self.k_right < 0 or not self.k_grid or min(self.k_grid) < 1:
            raise ConfigError("er blocking: k_left and every k_grid value must be >= 1, k_right >= 0")
        if not 0.0 < self.target_recall <= 1.0:
            raise ConfigError("er blocking.target_recall must be in (0, 1]")
        if self.proposer not in ("auto", "left", "right"):
            raise ConfigError(f"er blocking.proposer must be auto | left | right, got {self.proposer!r}")
        if self.views not in ("all", "auto"):
            raise ConfigError(f"er blocking.views must be all | auto, got {self.views!r}")
        if self.search not in SEARCHES:
            raise ConfigError(f"er blocking.search must be {' | '.join(SEARCHES)}, got {self.search!r}")
        if self.max_df < 1 or self.shortlist < 1 or self.exact_max_work < 0:
            raise ConfigError("er blocking: max_df and shortlist must be >= 1, exact_max_work >= 0")


TfidfCache = dict[tuple[object, ...], tuple[sp.csr_matrix, sp.csr_matrix]]


def tfidf_matrices(bench: Benchmark, config: BlockingConfig, attributes: tuple[str, ...] | None = None, *,
                   cache: TfidfCache | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Row-normalised TF-IDF of each side's concatenated ``attributes`` (default: all), one vocabulary for both.

    One vectoriser pass over both tables (``fit_transform``, then split): character n-grams of long values are the
    slow part of blocking (a Python loop over every n-gram). ``cache`` (a dict the caller owns, keyed by the texts
    themselves) returns the matrices of texts seen before — also with the tables swapped, as ``block`` asks when
    each table proposes in turn — and of a one-attribute view whose text is the whole record's. The vocabulary is
    sorted and the IDF counts both tables, so the swapped pair is the same matrices in the other order."""
    ngram = (config.ngram_min, config.ngram_max) if config.analyzer == "char_wb" else (1, 1)
    left, right = bench.text("left", attributes), bench.text("right", attributes)
    key = (config.analyzer, ngram, _digest(left), _digest(right))
    if cache is not None:
        if key in cache:
            return cache[key]
        if (flipped := (*key[:2], key[3], key[2])) in cache:
            B, A = cache[flipped]
            return A, B
    if config.analyzer == "char_wb":  # the vectoriser's matrix, computed once per distinct word (many times faster)
        M = char_wb_tfidf(left + right, ngram)
    else:
        M = TfidfVectorizer(analyzer=config.analyzer, ngram_range=ngram, sublinear_tf=True,
                            dtype=np.float32).fit_transform(left + right).tocsr()
        M.sort_indices()  # as vec.transform leaves them: the sparse products then sum in the same order
    out = (M[:len(left)].tocsr(), M[len(left):].tocsr())
    if cache is not None:
        cache[key] = out
    return out


def _digest(texts: list[str]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def topk(X: sp.csr_matrix, Y: sp.csr_matrix, k: int,
         config: BlockingConfig | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of X → their ``k`` best rows of Y: (row, col, cosine, 1-based rank), searched as ``config`` says."""
    c = config or BlockingConfig()
    return knn_topk(X, Y, k, c.chunk, search=c.search, max_df=c.max_df, shortlist=c.shortlist,
                    exact_max_work=c.exact_max_work)


def candidates(bench: Benchmark, config: BlockingConfig, *, k_left: int | None = None,
               k_right: int | None = None, attributes: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Candidate pairs ``l, r, similarity, rank_left, rank_right`` (rank 0: not proposed by that side), on the text
    of ``attributes`` (default: all)."""
    return searched_candidates(bench, config, k_left=k_left, k_right=k_right, attributes=attributes)[0]


def searched_candidates(bench: Benchmark, config: BlockingConfig, *, k_left: int | None = None,
                        k_right: int | None = None, attributes: tuple[str, ...] | None = None,
                        cache: TfidfCache | None = None) -> tuple[pl.DataFrame, str]:
    """:func:`candidates` and the neighbour search that produced them (``exact`` or ``pruned``); ``cache``: see
    :func:`tfidf_matrices`."""
    A, B = tfidf_matrices(bench, config, attributes, cache=cache)
    kl = config.k_left if k_left is None else k_left
    kr = config.k_right if k_right is None else k_right
    l1, r1, s1, rk1 = topk(A, B, kl, config)
    frames = [pl.DataFrame({"l": l1, "r": r1, "similarity": s1, "rank_left": rk1, "rank_right": np.zeros_like(rk1)})]
    if kr > 0:
        r2, l2, s2, rk2 = topk(B, A, kr, config)
        frames.append(pl.DataFrame({"l": l2, "r": r2, "similarity": s2, "rank_left": np.zeros_like(rk2), "rank_right": rk2}))
    out = pl.concat(frames).group_by("l", "r").agg(
        pl.col("similarity").max(), pl.col("rank_left").max(), pl.col("rank_right").max())
    # X @ Y.T and Y @ X.T cost the same, so one resolution holds for both directions
    return out.sort("l", "r"), resolve_search(A, B, config.search, config.exact_max_work)


def recall(cands: pl.DataFrame, truth: set[tuple[int, int]]) -> float:
    """Share of the true pairs that are candidates (pair completeness)."""
    if not truth:
        return float("nan")
    have = set(zip(cands.get_column("l").to_list(), cands.get_column("r").to_list(), strict=True))
    return len(truth & have) / len(truth)


def recall_curve(cands: pl.DataFrame, truths: dict[str, set[tuple[int, int]]], ks: Sequence[int]) -> pl.DataFrame:
    """Candidate-set size vs recall when each left record keeps its top ``k`` (``rank_left ≤ k``; the left table
    is the proposing one, :mod:`crossmatch.er.candidates`)."""
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
