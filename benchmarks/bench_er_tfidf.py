"""The ER blocking's character n-gram TF-IDF: scikit-learn's vectoriser against the per-word computation
(``crossmatch.er.ngrams.char_wb_tfidf``), same matrix.

For each benchmark folder (default: the three real ones) and each ``--words`` (0: the records as they are; N: a
``description`` of the title and N random title words appended, as ``benchmarks.bench_er_long_text`` builds it,
~6.5 characters a word), it vectorises the record texts of both tables as ``er_block`` does (character 3–5-grams,
one fit over both) both ways and prints, as JSON lines: texts, mean characters, seconds each way, the ratio, and
whether the two matrices are identical (values, indices, dtype).

    python -m benchmarks.bench_er_tfidf [--data ../shared/data/walmart_amazon ...] [--words 0 300]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from benchmarks.er_layouts import with_description
from crossmatch.er.ngrams import char_wb_tfidf
from stages._common import run
from stages._er import read_benchmark

DEFAULT = [Path("../shared/data") / n for n in ("walmart_amazon", "amazon_google", "dblp_acm")]


def _identical(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


def measure(folder: Path, ngram: tuple[int, int] = (3, 5)) -> dict[str, object]:
    bench = read_benchmark(folder, labels=False)
    texts = bench.text("left") + bench.text("right")
    t0 = time.perf_counter()
    old = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram, sublinear_tf=True,
                          dtype=np.float32).fit_transform(texts).tocsr()
    old.sort_indices()
    t1 = time.perf_counter()
    new = char_wb_tfidf(texts, ngram)
    t2 = time.perf_counter()
    return {"texts": len(texts), "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
            "vectoriser_s": round(t1 - t0, 2), "per_word_s": round(t2 - t1, 2),
            "ratio": round((t1 - t0) / max(t2 - t1, 1e-9), 1), "identical": _identical(old, new)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, nargs="+", default=DEFAULT)
    ap.add_argument("--words", type=int, nargs="+", default=[0, 300])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for folder in args.data:
            for words in args.words:
                src = folder
                if words:
                    src = Path(tmp) / f"{folder.name}_{words}"
                    with_description(folder, src, words)
                print(json.dumps({"data": folder.name, "words": words, **measure(src)}), flush=True)


if __name__ == "__main__":
    run("bench_er_tfidf", main)  # bad input or params: one short line and exit 2, no traceback
