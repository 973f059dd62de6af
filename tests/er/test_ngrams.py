"""The per-word character n-gram TF-IDF is scikit-learn's vectoriser matrix, bit for bit (crossmatch.er.ngrams)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from crossmatch.er.ngrams import char_wb_tfidf

TEXTS = ["", "   ", "Ab  cD\tE\nf", "aaaa aaaa aaaa", "İstanbul ÇAĞ naïve", "x", "a-b/c 12.5", "Straße ǅ ß",
         "\u00a0nbsp\u2003em\u3000ideographic", "emoji 😀😀 ok", "Sony BRAVIA KDL-40 40in LCD tv", "sony bravia"]


def _vectoriser(texts: list[str], ngram: tuple[int, int]) -> sp.csr_matrix:
    M = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram, sublinear_tf=True,
                        dtype=np.float32).fit_transform(texts).tocsr()
    M.sort_indices()
    return M


@pytest.mark.parametrize("ngram", [(3, 5), (2, 4), (1, 1), (1, 3), (4, 4)])
def test_equals_the_vectoriser_values_indices_and_dtype(ngram: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    words = ["usb", "cable", "2m", "Cable", "HDMI-hdmi", "ab", "a", "xbox360", "über", "ÜBER"]
    texts = TEXTS + [" ".join(rng.choice(words, rng.integers(0, 30))) for _ in range(200)]
    got, want = char_wb_tfidf(texts, ngram), _vectoriser(texts, ngram)
    assert got.shape == want.shape and got.dtype == want.dtype == np.float32
    assert np.array_equal(got.indptr, want.indptr) and np.array_equal(got.indices, want.indices)
    assert np.array_equal(got.data, want.data)  # exactly, not approximately: the searches' ties depend on it


def test_no_ngram_anywhere_raises_the_vectorisers_error() -> None:
    with pytest.raises(ValueError, match="empty vocabulary"):
        char_wb_tfidf(["", "  "], (3, 5))
    with pytest.raises(ValueError, match="ngram_range"):
        char_wb_tfidf(["a"], (3, 2))
