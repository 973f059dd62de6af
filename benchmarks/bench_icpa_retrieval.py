"""Eq. 10 retrieval without an items² matrix (issue 11 part 2): exact blocked vs item-kNN top-10.

``synthetic`` (default): one source of ``--items`` (42 k, the ``large`` preset's items per source)
random unit anchor / context embeddings of ``--dim`` 32 and a random history of ``--users`` ×
``--events``; top-10 over all users with the exact blocked scorer and with the knn graph
(``--knn-k``), each in a fresh subprocess so that its peak RSS (``resource.getrusage``) is its
own. Prints seconds, peak RSS and the dense ``[items × items]`` float32 matrix it avoids. The
issue's target: evaluating one ``large`` source (a validation and a test pass: ``--passes 2``, the default) in
≤ 60 s on 2 cores.

``compare``: the pipeline's trained models on their data (default preset or XMarket); per source
and model, mean NDCG@10 on validation and test of the former dense matrix (``H @ π(A Cᵀ)``),
the exact blocked scorer and knn with each floor, and the number of users whose NDCG@10 differs
from the dense matrix's. Prints figures only; no timed assertions.

    python -m benchmarks.bench_icpa_retrieval [--items 42000 --users 100000 --events 10 --dim 32 --knn-k 200]
    python -m benchmarks.bench_icpa_retrieval compare [--params params.yaml --root data]
    python -m benchmarks.bench_icpa_retrieval compare --params pipelines/real/params.yaml --root data/real/xmarket
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from crossmatch.icpa.evaluate import Scorer, Split, evaluate_scorer, matrix_scorer, normalised_rows
from crossmatch.icpa.inference import item_embeddings
from crossmatch.icpa.retrieval import (
    FLOORS,
    embedding_scorer,
    exact_topk,
    knn_graph,
    pair_scores,
)
from crossmatch.icpa.sparse_topk import default_workers, sparse_topk
from stages._common import run


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def synthetic(items: int, users: int, events: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                                   sp.csr_matrix]:
    g = torch.Generator().manual_seed(seed)
    A = torch.nn.functional.normalize(torch.randn(items, dim, generator=g), dim=1)
    C = torch.nn.functional.normalize(torch.randn(items, dim, generator=g), dim=1)
    rng = np.random.default_rng(seed)
    H = sp.csr_matrix((np.ones(users * events), (np.repeat(np.arange(users), events),
                                                  rng.integers(0, items, users * events))), shape=(users, items))
    H.sum_duplicates()
    return A, C, normalised_rows(H)


def one(mode: str, args: argparse.Namespace) -> dict[str, float]:
    A, C, H = synthetic(args.items, args.users, args.events, args.dim, args.seed)
    base = peak_rss_mb()
    t0 = time.perf_counter()
    # evaluating a source ranks every user twice (validation, test): --passes 2 is that cost
    if mode == "exact":
        for _ in range(args.passes):
            top, _ = exact_topk(A, C, H, 10, score=args.score)
        build = 0.0
    else:
        S = knn_graph(A, C, args.knn_k, score=args.score)
        build = time.perf_counter() - t0
        for _ in range(args.passes):
            top = sparse_topk(H, S, 10)
    secs = time.perf_counter() - t0
    assert top.shape == (args.users, 10)
    return {"seconds": secs, "build_seconds": build, "peak_rss_mb": peak_rss_mb(), "inputs_rss_mb": base}


def run_synthetic(args: argparse.Namespace) -> None:
    n = args.items
    print(f"synthetic source: {n:,} items, d = {args.dim}, {args.users:,} users x {args.events} events, "
          f"score {args.score}, torch threads {torch.get_num_threads()}, knn top-k threads {default_workers()}")
    print(f"dense [items x items] float32 matrix avoided: {n * n * 4 / 2**30:.2f} GiB "
          f"(the former code also held a temporary of the same size)")
    for mode in ("exact", "knn"):
        cmd = [sys.executable, "-m", "benchmarks.bench_icpa_retrieval", "_one", mode, "--items", str(n),
               "--users", str(args.users), "--events", str(args.events), "--dim", str(args.dim),
               "--knn-k", str(args.knn_k), "--score", args.score, "--seed", str(args.seed), "--passes", str(args.passes)]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        extra = f" (graph build {res['build_seconds']:.1f} s)" if mode == "knn" else ""
        label = "exact blocked" if mode == "exact" else f"knn K={args.knn_k}"
        print(f"  {label:>14} top-10, all users x {args.passes} pass(es): {res['seconds']:6.1f} s{extra}; peak RSS {res['peak_rss_mb']:,.0f} MB "
              f"(inputs alone {res['inputs_rss_mb']:,.0f} MB)")


def run_compare(args: argparse.Namespace) -> None:
    from stages._icpa import load_data, load_model, load_params

    params = load_params(args.params)
    cfg = params.eval_config
    score = args.score or cfg.score
    root = Path(args.root)
    data = load_data(root / "ingested", root / "edges", params.sources)
    print(f"{args.params}: score {score}, knn K = {args.knn_k}; mean NDCG@10 (valid / test); "
          "'differ' = users whose NDCG@10 differs from the dense matrix's")
    table: dict[str, list[tuple[float, float, int, float]]] = {}
    for s in params.sources:
        j = data.graph.index(s)
        g = data.graph.sources[j]
        ev = data.evaluator(s, cfg)
        for name in args.models:
            path = root / "icpa" / "finetune" / s / f"{name}.pt"
            path = path if path.exists() else root / "icpa" / "eval" / f"{name}.pt"
            if not path.exists():
                continue
            model = load_model(path)
            A, C = item_embeddings(model, g, j, "anchor"), item_embeddings(model, g, j, "context")
            gamma = model.config.gamma
            rows: dict[str, tuple[dict[str, np.ndarray], float]] = {}
            t0 = time.perf_counter()
            dense = matrix_scorer(pair_scores(A @ C.T, score, gamma).numpy())
            rows["dense"] = ({sp_: _ndcg(dense, ev.splits[sp_], cfg.ks) for sp_ in ("valid", "test")},
                             time.perf_counter() - t0)
            variants = [("exact", "exact", "min")] + [(f"knn/{f}", "knn", f) for f in FLOORS]
            for label, retrieval, floor in variants:
                t0 = time.perf_counter()
                scorer = embedding_scorer(A, C, retrieval=retrieval, score=score, gamma=gamma,
                                          knn_k=args.knn_k, floor=floor)
                rows[label] = ({sp_: _ndcg(scorer, ev.splits[sp_], cfg.ks) for sp_ in ("valid", "test")},
                               time.perf_counter() - t0)
            ref = rows["dense"][0]
            print(f"  {s} / {name} ({g.schema.n_items:,} items, {ev.splits['test'].users.size:,} test users)")
            for label, (per, secs) in rows.items():
                diff = sum(int(np.sum(per[k] != ref[k])) for k in per)
                gap = max(abs(float(per[k].mean() - ref[k].mean())) for k in per)
                table.setdefault(label, []).append((float(per["valid"].mean()), float(per["test"].mean()), diff, gap))
                print(f"    {label:>10}: {per['valid'].mean():.4f} / {per['test'].mean():.4f}   differ {diff:>5}"
                      f"   {secs:5.1f} s")
    _summary(table)


def _summary(table: dict[str, list[tuple[float, float, int, float]]]) -> None:
    n = len(next(iter(table.values()), []))
    print(f"summary over {n} (source, model) pairs: mean NDCG@10 valid / test, users that differ, "
          "largest |mean NDCG@10 - dense| of one pair and split")
    for label, vals in table.items():
        v = np.array(vals)
        print(f"  {label:>10}: {v[:, 0].mean():.4f} / {v[:, 1].mean():.4f}   differ {int(v[:, 2].sum()):>6}"
              f"   max gap {v[:, 3].max():.4f}")


def _ndcg(scorer: Scorer, split: Split, ks: tuple[int, ...]) -> np.ndarray:
    per_user = evaluate_scorer(scorer, split, ks)["per_user"]
    assert isinstance(per_user, dict)
    return np.asarray(per_user["10"]["ndcg"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", default="synthetic", choices=["synthetic", "compare", "_one"])
    ap.add_argument("mode", nargs="?", default="exact", choices=["exact", "knn"])
    ap.add_argument("--items", type=int, default=42_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=10)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--knn-k", type=int, default=200)
    ap.add_argument("--score", default=None, help="eq. 10 term (synthetic: exp_gamma; compare: the params')")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--passes", type=int, default=2, help="synthetic: rankings of all users (2 = validation + test)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--root", default="data")
    ap.add_argument("--models", nargs="+", default=["icpa", "soo", "base"])
    args = ap.parse_args()
    if args.score is None and args.what != "compare":
        args.score = "exp_gamma"
    if args.what == "_one":
        print(json.dumps(one(args.mode, args)))
    elif args.what == "compare":
        run_compare(args)
    else:
        run_synthetic(args)


if __name__ == "__main__":
    run("bench_icpa_retrieval", main)  # bad input or params: one short line and exit 2, no traceback

