"""Pair features for the entity-resolution scorer (issue 12 §3).

Per attribute: TF-IDF cosines (character n-grams and words), rapidfuzz edit / token
similarities, exact agreement, containment, and for numeric attributes (price, year) the
ratio and absolute difference. Across attributes: each value found in the other record's
text (a model number inside a title), agreement of the tokens that contain digits (model
codes, versions, years), and the IDF mass of the tokens only one side has. With ``context_k``: where the
pair ranks among each record's nearest neighbours (record text, per attribute, code tokens only). With ``token_vocab``:
for each of the most frequent word tokens, whether neither, only one or both records hold it, so the classifier
learns which disagreements matter ("upgrade", "mac", "black") where IDF mass weighs every token alike. With
``code_prefix``: how much of each value, and of each model code (a word with a digit), the other record holds as a
prefix, so "dcb-309black" meets "dcb-309" by its stem. Optionally
the cosine of learned record embeddings (MiniLM or ICPA). Missing values are NaN, which the
gradient-boosting scorer handles natively, so "unknown" is never confused with "different".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler
from sklearn.feature_extraction.text import TfidfVectorizer

from crossmatch.er.blocking import BlockingConfig, tfidf_matrices, topk
from crossmatch.er.ngrams import char_wb_tfidf
from crossmatch.er.tables import Benchmark, numeric_attributes, parse_numbers

_TOKEN = re.compile(r"[a-z0-9]+")
_FUZZ: dict[str, Any] = {"ratio": fuzz.ratio, "token_set": fuzz.token_set_ratio, "token_sort": fuzz.token_sort_ratio,
         "partial": fuzz.partial_ratio, "jaro_winkler": JaroWinkler.normalized_similarity}


def _tokens(text: str) -> set[str]:
    return set(_TOKEN.findall(text))


def _code_tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text) if any(ch.isdigit() for ch in t)]


def _compact(text: str) -> str:
    return "".join(_TOKEN.findall(text))


def _prefix_found(code: str, text: str) -> int:
    """Length of the longest prefix of ``code`` that occurs in ``text`` (containment is monotone in the prefix
    length, so a binary search): "dcb309black" in "...dcb309slrcamera..." finds 6."""
    lo, hi = 0, len(code)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if code[:mid] in text:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _codes(text: str) -> list[str]:
    """Model-code candidates: the blank-separated words holding a digit, alphanumerics only, at least 3 long
    ("rc-534-kkn2-gp" stays one code, where the word tokens split it in four)."""
    return [c for c in (_compact(w) for w in text.split()) if len(c) >= 3 and any(ch.isdigit() for ch in c)]


def _top_values(X: sp.csr_matrix, Y: sp.csr_matrix, x_text: list[str], y_text: list[str], k: int) -> np.ndarray:
    """``[rows of X, k]``: each row's ``k`` largest cosines with the rows of ``Y``, best first (-1 where ``Y`` has
    fewer rows; -1 never ranks). Searched once per distinct text on each side — a category or a brand repeats in
    thousands of records, and identical texts have identical rows — then each distinct ``Y`` text counts as many
    times as it occurs (at most ``k``), so the values equal a search over every row."""
    _, first_x, inv = np.unique(np.asarray(x_text, dtype=object), return_index=True, return_inverse=True)
    _, first_y, count = np.unique(np.asarray(y_text, dtype=object), return_index=True, return_counts=True)
    rows, cols, sims, _ = topk(X[first_x], Y[first_y], k, BlockingConfig())
    reps = np.minimum(count[cols], k)
    r, v = np.repeat(rows, reps), np.repeat(sims, reps)  # rows ascending, best first within a row
    pos = np.arange(len(r)) - np.searchsorted(r, r)
    keep = pos < k
    top = np.full((len(first_x), k), -1.0)
    top[r[keep], pos[keep]] = v[keep]
    return top[inv.ravel()]


@dataclass
class PairFeaturizer:
    """Fitted on both tables once (no labels); :meth:`transform` maps row-position pairs to features."""

    bench: Benchmark
    embeddings: tuple[np.ndarray, np.ndarray] | None = None  # unit rows, [n_left, d] and [n_right, d]
    context_k: int = 0  # 0: no neighbourhood features; else the depth of each record's neighbour list
    context_attributes: bool = False  # also per text attribute (its own character TF-IDF)
    context_codes: bool = False  # also on the record's code tokens only (tokens with a digit; word TF-IDF)
    token_vocab: int = 0  # 0: off; else one presence feature for each of the token_vocab most frequent tokens
    # tokens of the text attributes only: a numeric attribute's digits ("99" of a price) are not words
    token_text_only: bool = False
    # the rapidfuzz similarities read at most this many leading characters of a value: partial ratio's cost grows
    # about as the cube of the length (0.8 ms a pair at 256 characters, 81 ms at 1,000, 0.66 s at 2,000; one core),
    # so a description column would keep one featurisation busy for hours. TF-IDF and containment read it all.
    fuzzy_max_chars: int = 256
    # the longest prefix of each value / model code found in the other record's text: a code with a colour or
    # pack suffix ("dcb-309black" against "dcb-309") matches by its stem, where containment needs all of it
    code_prefix: bool = False
    names: list[str] = field(default_factory=list, init=False)
    context_names: set[str] = field(default_factory=set, init=False)  # the neighbourhood columns of ``names``
    token_names: set[str] = field(default_factory=set, init=False)  # the token-presence columns of ``names``
    code_names: set[str] = field(default_factory=set, init=False)  # the code-prefix columns of ``names``

    def __post_init__(self) -> None:
        b = self.bench
        self.numeric = numeric_attributes(b)
        self.values = {c: (b.left.get_column(c).to_list(), b.right.get_column(c).to_list()) for c in b.attributes}
        self.tfidf: dict[tuple[str, str], tuple[sp.csr_matrix, sp.csr_matrix]] = {}
        for c in b.attributes:
            if c in self.numeric:
                continue
            left, right = self.values[c]
            try:  # the vectoriser's matrices (fitted on both sides), the character one per distinct word
                M = char_wb_tfidf(left + right, (2, 4))
                self.tfidf[(c, "char_wb")] = (M[:len(left)].tocsr(), M[len(left):].tocsr())
                vec = TfidfVectorizer(analyzer="word", sublinear_tf=True, dtype=np.float32, token_pattern=r"[a-z0-9]+")
                vec.fit(left + right)
                self.tfidf[(c, "word")] = (vec.transform(left).tocsr(), vec.transform(right).tocsr())
            except ValueError:  # an attribute that is empty everywhere has no vocabulary
                continue
        self.text = (b.text("left"), b.text("right"))
        # alphanumerics only: "ELP-LP12" and "elplp12" are one model number
        self.compact = ([_compact(t) for t in self.text[0]], [_compact(t) for t in self.text[1]])
        self.tok = ([_tokens(t) for t in self.text[0]], [_tokens(t) for t in self.text[1]])
        self.codes = ([_codes(t) for t in self.text[0]], [_codes(t) for t in self.text[1]]) if self.code_prefix \
            else ([], [])
        df = Counter(t for side in self.tok for toks in side for t in toks)
        n = len(self.tok[0]) + len(self.tok[1])
        self.idf = {t: float(np.log(n / c)) for t, c in df.items()}
        if self.context_k < 0:
            raise ValueError(f"context_k must be >= 0, got {self.context_k}")
        if self.token_vocab < 0:
            raise ValueError(f"token_vocab must be >= 0, got {self.token_vocab}")
        if self.fuzzy_max_chars < 1:
            raise ValueError(f"fuzzy_max_chars must be >= 1, got {self.fuzzy_max_chars}")
        vocab_tok: tuple[list[set[str]], ...] = self.tok
        text_attrs = tuple(c for c in b.attributes if c not in self.numeric)
        if self.token_text_only and self.token_vocab and text_attrs != b.attributes:
            # no text attribute at all: no token is a word, so the vocabulary is empty (text() would join all)
            vocab_tok = tuple([_tokens(t) for t in b.text(s, text_attrs)] if text_attrs else [set()] * len(frame)
                              for s, frame in (("left", b.left), ("right", b.right)))
        vdf = Counter(t for side in vocab_tok for toks in side for t in toks)
        # document frequency over both tables, no labels; ties by the token, so the vocabulary is reproducible
        self.vocab = sorted(vdf, key=lambda t: (-vdf[t], t))[:self.token_vocab]
        index = {t: m for m, t in enumerate(self.vocab)}
        self.presence = tuple(self._presence(side, index) for side in vocab_tok)
        if self.context_k:
            self._fit_context()
        if self.embeddings is not None:
            ea, eb = self.embeddings
            if ea.shape[0] != b.left.height or eb.shape[0] != b.right.height or ea.shape[1] != eb.shape[1]:
                raise ValueError(f"embeddings must be [{b.left.height}, d] and [{b.right.height}, d], "
                                 f"got {ea.shape} and {eb.shape}")

    @staticmethod
    def _presence(side: list[set[str]], index: dict[str, int]) -> np.ndarray:
        out = np.zeros((len(side), len(index)), dtype=np.uint8)
        for i, toks in enumerate(side):
            out[i, [index[t] for t in toks if t in index]] = 1
        return out

    def _fit_context(self) -> None:
        # the default blocking's representation (character 3-5-gram TF-IDF of the whole record), so "rank" is
        # the rank a candidate generator sees
        # each view with the texts its rows were built from: identical texts have identical rows
        views = {"context": (*tfidf_matrices(self.bench, BlockingConfig()), self.text)}
        if self.context_attributes:
            views.update({f"context_{c}": (*self.tfidf[(c, "char_wb")], self.values[c]) for c in self.bench.attributes
                          if (c, "char_wb") in self.tfidf})
        if self.context_codes:
            # model numbers, versions, capacities: where the pair ranks on those alone separates a product
            # from its siblings that share every word (train OOF F1 0.8858 -> 0.8887 over three benchmarks)
            vec = TfidfVectorizer(analyzer=_code_tokens, sublinear_tf=True, dtype=np.float32)
            try:
                vec.fit(self.text[0] + self.text[1])
                views["context_codes"] = (vec.transform(self.text[0]).tocsr(), vec.transform(self.text[1]).tocsr(),
                                          self.text)
            except ValueError:  # no record has a code token: no such view
                pass
        k = self.context_k
        self.views: dict[str, tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, np.ndarray]] = {}
        for name, (A, B, (ta, tb)) in views.items():
            self.views[name] = (A, B, _top_values(A, B, ta, tb, k), _top_values(B, A, tb, ta, k))

    def _context_features(self, l: np.ndarray, r: np.ndarray, add: Callable[[str, np.ndarray], None]) -> None:
        for name, (A, B, best_l, best_r) in self.views.items():
            cos = np.asarray(A[l].multiply(B[r]).sum(axis=1)).ravel().astype(np.float64)
            # an empty value stays 0 / last rank rather than NaN: equal train OOF F1 (0.8858 vs 0.8854)
            add(f"{name}:cosine", cos)
            for side, rows, best in (("left", l, best_l), ("right", r, best_r)):
                top = best[rows]
                above = top > cos[:, None] + 1e-6  # float32 products: equal pairs must not outrank themselves
                rank = above.sum(axis=1)
                add(f"{name}:rank_{side}", rank + 1.0)
                add(f"{name}:gap_{side}", top[:, 0] - cos)
                # the best record other than this one: top[0] unless this pair is the top, then top[1]
                second = top[:, 1] if top.shape[1] > 1 else np.full(len(rows), -1.0)
                other = np.where(rank > 0, top[:, 0], second)
                add(f"{name}:margin_{side}", cos - other)

    def transform(self, l: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``[n_pairs, n_features]`` float64 for left rows ``l`` and right rows ``r``; names in ``self.names``."""
        l, r = np.asarray(l, dtype=np.int64), np.asarray(r, dtype=np.int64)
        if l.shape != r.shape or l.ndim != 1:
            raise ValueError(f"l and r must be 1-d of equal length, got {l.shape} and {r.shape}")
        cols: list[np.ndarray] = []
        names: list[str] = []
        code: set[str] = set()

        def add(name: str, v: np.ndarray | list[float]) -> None:
            names.append(name)
            cols.append(np.asarray(v, dtype=np.float64))

        for c in self.bench.attributes:
            a = [self.values[c][0][i] for i in l]
            b = [self.values[c][1][j] for j in r]
            empty = np.array([not x or not y for x, y in zip(a, b, strict=True)])
            if c in self.numeric:
                na = parse_numbers(pl.Series(a, dtype=pl.Utf8)).to_numpy()
                nb = parse_numbers(pl.Series(b, dtype=pl.Utf8)).to_numpy()
                with np.errstate(invalid="ignore", divide="ignore"):
                    add(f"{c}:ratio", np.minimum(na, nb) / np.maximum(na, nb))
                    add(f"{c}:absdiff", np.abs(na - nb))
            for analyzer in ("char_wb", "word"):
                if (c, analyzer) in self.tfidf:
                    XA, XB = self.tfidf[(c, analyzer)]
                    cos = np.asarray(XA[l].multiply(XB[r]).sum(axis=1)).ravel()
                    add(f"{c}:tfidf_{analyzer}", np.where(empty, np.nan, cos))
            if c not in self.numeric:
                n = self.fuzzy_max_chars
                fa, fb = [x[:n] for x in a], [y[:n] for y in b]
                for fname, scorer in _FUZZ.items():
                    v = process.cpdist(fa, fb, scorer=scorer, workers=1) if len(a) else np.zeros(0)
                    add(f"{c}:{fname}", np.where(empty, np.nan, v))
            add(f"{c}:exact", np.where(empty, np.nan, [float(x == y) for x, y in zip(a, b, strict=True)]))
            if c not in self.numeric:
                ta, tb = [self.text[0][i] for i in l], [self.text[1][j] for j in r]
                add(f"{c}:left_in_right_text", [float(x in t) if x else np.nan for x, t in zip(a, tb, strict=True)])
                add(f"{c}:right_in_left_text", [float(y in t) if y else np.nan for y, t in zip(b, ta, strict=True)])
                ca, cb = [_compact(x) for x in a], [_compact(y) for y in b]
                ka, kb = [self.compact[0][i] for i in l], [self.compact[1][j] for j in r]
                add(f"{c}:left_in_right_compact", [float(x in t) if x else np.nan for x, t in zip(ca, kb, strict=True)])
                add(f"{c}:right_in_left_compact", [float(y in t) if y else np.nan for y, t in zip(cb, ka, strict=True)])
                if self.code_prefix:
                    add(f"{c}:left_prefix_in_right_compact",
                        [_prefix_found(x, t) / len(x) if x else np.nan for x, t in zip(ca, kb, strict=True)])
                    add(f"{c}:right_prefix_in_left_compact",
                        [_prefix_found(y, t) / len(y) if y else np.nan for y, t in zip(cb, ka, strict=True)])
                    code.update(names[-2:])
        self._record_features(l, r, add)
        if self.code_prefix:
            first = len(names)
            self._code_features(l, r, add)
            code.update(names[first:])
        self.code_names = code
        if self.context_k:
            first = len(names)
            self._context_features(l, r, add)
            self.context_names = set(names[first:])
        if self.vocab:
            # 0 neither, 1 left only, 2 right only, 3 both: the two tables word things differently, so a token
            # missing on the left need not mean what it means missing on the right
            state = self.presence[0][l] + 2 * self.presence[1][r]
            first = len(names)
            for m, t in enumerate(self.vocab):
                add(f"token:{t}", state[:, m])
            self.token_names = set(names[first:])
        if self.embeddings is not None:
            ea, eb = self.embeddings
            add("embedding:cosine", np.einsum("ij,ij->i", ea[l], eb[r]))
        self.names = names
        return np.column_stack(cols) if cols else np.zeros((len(l), 0))

    def _code_features(self, l: np.ndarray, r: np.ndarray, add: Callable[[str, np.ndarray], None]) -> None:
        for side, (mine, theirs, rows, others) in {"left": (self.codes[0], self.compact[1], l, r),
                                                   "right": (self.codes[1], self.compact[0], r, l)}.items():
            best, chars = np.full(len(l), np.nan), np.zeros(len(l))
            for n, (i, j) in enumerate(zip(rows.tolist(), others.tolist(), strict=True)):
                if mine[i]:
                    found = [(_prefix_found(c, theirs[j]), len(c)) for c in mine[i]]
                    best[n] = max(f / k for f, k in found)
                    chars[n] = max(f for f, _ in found)
            add(f"record:code_prefix_{side}", best)
            add(f"record:code_prefix_chars_{side}", chars)

    def _record_features(self, l: np.ndarray, r: np.ndarray, add: object) -> None:
        idf, top = self.idf, float(np.log(len(self.tok[0]) + len(self.tok[1])))
        digits = lambda s: {t for t in s if any(ch.isdigit() for ch in t)}  # noqa: E731
        jac, only_l, only_r, mass_l, mass_r, mass_both, in_r, in_l = [], [], [], [], [], [], [], []
        for i, j in zip(l.tolist(), r.tolist(), strict=True):
            ta, tb = self.tok[0][i], self.tok[1][j]
            da, db = digits(ta), digits(tb)
            jac.append(len(da & db) / len(da | db) if da | db else np.nan)
            only_l.append(len(da - db))
            ka, kb = self.compact[0][i], self.compact[1][j]
            in_r.append(sum(t in kb for t in da) / len(da) if da else np.nan)
            in_l.append(sum(t in ka for t in db) / len(db) if db else np.nan)
            only_r.append(len(db - da))
            mass_l.append(math.fsum(idf.get(t, top) for t in ta - tb))
            mass_r.append(math.fsum(idf.get(t, top) for t in tb - ta))
            mass_both.append(math.fsum(idf.get(t, top) for t in ta & tb))
        for name, v in (("record:digit_jaccard", jac), ("record:digits_only_left", only_l),
                        ("record:digits_only_right", only_r), ("record:idf_only_left", mass_l),
                        ("record:idf_only_right", mass_r), ("record:idf_shared", mass_both),
                        ("record:digits_left_in_right_compact", in_r), ("record:digits_right_in_left_compact", in_l)):
            add(name, np.asarray(v, dtype=np.float64))  # type: ignore[operator]
