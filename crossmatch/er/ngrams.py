"""Character n-gram TF-IDF of long records, computed once per distinct word (the ER blocking's and scorer's
representation; scikit-learn's ``TfidfVectorizer(analyzer="char_wb", sublinear_tf=True)``, the same matrix).

scikit-learn's ``char_wb`` analyzer pads every whitespace-separated word with one space and slices its n-grams
in a Python loop, then counts them in another: seconds per megabyte of text. On records of thousands of
characters (DeepMatcher's Company shape: 3,000 × 3,000 records of ~3,700 characters) the vectoriser took 94 s
for the two tables, against ~50 s for one neighbour search. But a document's ``char_wb`` n-grams are its words'
n-grams put together, each word padded on its own, and words repeat: so each *distinct* word is analysed once
(by scikit-learn's own analyzer), the document × word counts (one Python step per word, no slicing) are
multiplied with the word × n-gram counts in one sparse product, and scikit-learn's ``TfidfTransformer`` turns the
counts into TF-IDF exactly as the vectoriser does. Columns are the n-grams in sorted order, as the vectoriser's vocabulary; the test checks the
matrices are equal, values and indices, with the vectoriser's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer

__all__ = ["char_wb_tfidf"]


def char_wb_tfidf(texts: Sequence[str], ngram_range: tuple[int, int]) -> sp.csr_matrix:
    """``TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, sublinear_tf=True,
    dtype=np.float32).fit_transform(texts)`` with sorted indices, computed per distinct word (module docstring).
    Raises scikit-learn's ValueError ("empty vocabulary") when no text holds an n-gram, as the vectoriser does."""
    lo, hi = ngram_range
    if not 1 <= lo <= hi:
        raise ValueError(f"ngram_range must be (min, max) with 1 <= min <= max, got {ngram_range}")
    word_id: dict[str, int] = {}
    cols: list[int] = []
    indptr = [0]
    for text in texts:
        # lower-casing (the analyzer's, per word below) never creates or removes whitespace, so splitting the raw
        # text gives the words the vectoriser splits after lower-casing and collapsing whitespace
        for w in text.split():
            cols.append(word_id.setdefault(w, len(word_id)))
        indptr.append(len(cols))
    analyse = CountVectorizer(analyzer="char_wb", ngram_range=ngram_range).build_analyzer()
    grams = [analyse(w) for w in word_id]  # dict order: word ids ascending
    vocab = sorted({g for gs in grams for g in gs})
    if not vocab:
        return _vectoriser(ngram_range).fit_transform(texts).tocsr()  # its own error, or its own empty result
    gram_id = {g: j for j, g in enumerate(vocab)}
    w_rows = np.repeat(np.arange(len(grams)), [len(gs) for gs in grams])
    w_cols = np.fromiter((gram_id[g] for gs in grams for g in gs), dtype=np.int64, count=len(w_rows))
    W = sp.csr_matrix((np.ones(len(w_rows), dtype=np.int64), (w_rows, w_cols)), shape=(len(grams), len(vocab)))
    D = sp.csr_matrix((np.ones(len(cols), dtype=np.int64), np.asarray(cols, dtype=np.int64),
                       np.asarray(indptr, dtype=np.int64)), shape=(len(texts), len(word_id)))
    D.sum_duplicates()
    counts = sp.csr_matrix(D @ W, dtype=np.float32)  # exact: counts stay far below 2**24
    counts.sort_indices()
    out = TfidfTransformer(sublinear_tf=True).fit(counts).transform(counts, copy=False)
    out = sp.csr_matrix(out)
    out.sort_indices()
    return out


def _vectoriser(ngram_range: tuple[int, int]) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, sublinear_tf=True, dtype=np.float32)
