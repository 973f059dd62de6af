"""Candidates inside one big block: each item's top-k partners vs the block's full expansion (issue 14 item 5).

Two random item sets (unit embeddings, d = 32) in one block, as two markets that share one category and have
no titles. Prints, per size, the seconds and peak memory (max RSS of a fresh process, so faiss's buffers count)
of :func:`crossmatch.twosided.candidates.top_k_pairs`, its pair count against the ``k * (nL + nR)`` bound, and
the pair count the expansion would have built
(MiB before: the process with its inputs, before the search) (``nL * nR``; the match stage refuses above ``match.max_pairs``).

    python benchmarks/bench_match_candidates.py                 # 5k x 5k and 50k x 50k, k = 20
    python benchmarks/bench_match_candidates.py --sizes 5000 --k 10 --tfidf   # + the chunked TF-IDF search
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(n: int, d: int, k: int, tfidf: bool) -> dict[str, float]:
    import numpy as np
    from scipy import sparse

    from crossmatch.twosided.candidates import Ranking, top_k_pairs
    from crossmatch.twosided.preferences import tfidf_vectors

    rng = np.random.default_rng(0)
    if tfidf:  # titles of 6 words out of 5,000: the exact sparse search, chunk by chunk
        words = np.array([f"w{i}" for i in range(5000)])
        titles = [" ".join(rng.choice(words, 6)) for _ in range(2 * n)]
        tl, tr = tfidf_vectors(titles[:n], titles[n:])
        rk = Ranking(tl, tr)
    else:
        el, er = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(2))
        el /= np.linalg.norm(el, axis=1, keepdims=True)
        er /= np.linalg.norm(er, axis=1, keepdims=True)
        empty = sparse.csr_matrix((n, 1), dtype=np.float32)
        rk = Ranking(empty, empty, el, er)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    left, _ = top_k_pairs(rk, np.arange(n), np.arange(n), k=k)
    sec = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"n": n, "seconds": sec, "peak_mib": peak / 1024, "inputs_mib": base / 1024, "pairs": int(left.size),
            "bound": k * 2 * n, "expansion_pairs": n * n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--tfidf", action="store_true", help="also time the TF-IDF (sparse, chunked) search")
    ap.add_argument("--one", type=str, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None:  # child: one measurement in a fresh process
        n, tf = args.one.split(",")
        print(json.dumps(one(int(n), args.d, args.k, tf == "1")))
        return
    print(f"{'similarity':<10} {'nL x nR':>15} {'seconds':>8} {'MiB before':>10} {'peak MiB':>9} {'pairs':>11} {'k(nL+nR)':>11} "
          f"{'expansion':>15}")
    for tf in ([False, True] if args.tfidf else [False]):
        for n in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--one", f"{n},{int(tf)}", "--d", str(args.d), "--k",
                                  str(args.k)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{'tfidf' if tf else 'icpa d=' + str(args.d):<10} {f'{n:,} x {n:,}':>15} {r['seconds']:>8.2f} "
                  f"{r['inputs_mib']:>10.0f} {r['peak_mib']:>9.0f} {r['pairs']:>11,} {r['bound']:>11,} {r['expansion_pairs']:>15,}")


if __name__ == "__main__":
    main()
