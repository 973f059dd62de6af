"""Benchmark: the robust BiPoly ILP on HiGHS, 100 x 200 dense instances, to a proven optimum.

Target (issue 3): <= 10 s. Two dense instances (all 20,000 pairs are columns, zeros included):
* ``uniform``: similarities drawn U(0, 1) — an adversarial case with a weak LP relaxation;
* ``tfidf``: TF-IDF similarities of 100 x 200 fine categories sampled from a synthetic world
  (crossmatch.synth, 60 concepts per category), min–max rescaled — the structure real category
  similarities have (most pairs near zero).
Prints build and solve seconds, status, gap, objective, model size, and the objective of
BiPoly.S / BiPoly.C on the same instance (the ILP must be at least as high).

Usage: python -m benchmarks.bench_bipoly_ilp [--kind uniform|tfidf|both] [--omega 0.1] [--eta 0.2] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from crossmatch.bipoly import IlpConfig, Instance, Rewards, bipoly_c, bipoly_s, solve_ilp
from crossmatch.bipoly.ilp import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=100)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--omega", type=float, default=0.1)
    ap.add_argument("--eta", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=300.0)
    ap.add_argument("--kind", choices=["uniform", "tfidf", "both"], default="both")
    args = ap.parse_args()
    for kind in (["uniform", "tfidf"] if args.kind == "both" else [args.kind]):
        run(kind, args)


def tfidf_matrix(m: int, n: int, seed: int) -> np.ndarray:
    """Dense m x n TF-IDF category similarities sampled from a synthetic world, rescaled to [0, 1]."""
    from crossmatch.bipoly.similarity import category_documents, similarity
    from crossmatch.synth import generate_world, make_config

    world = generate_world(make_config("default", seed=seed, overrides={"concepts_per_category": 60}))
    left, right = category_documents(world.items["alpha"]), category_documents(world.items["beta"])
    inst = similarity(left, right, "tfidf", top_k=None).instance
    dense = np.zeros((inst.n_left, inst.n_right))
    dense[inst.left, inst.right] = inst.weight
    rng = np.random.default_rng(seed)
    sub = dense[np.ix_(np.sort(rng.choice(inst.n_left, m, replace=False)), np.sort(rng.choice(inst.n_right, n, replace=False)))]
    return (sub - sub.min()) / (sub.max() - sub.min())


def run(kind: str, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    dense = rng.random((args.m, args.n)) if kind == "uniform" else tfidf_matrix(args.m, args.n, args.seed)
    inst = Instance.from_dense(dense, keep_zeros=True)
    rw = Rewards.tied(args.omega, args.eta)
    bipoly_s(Instance.from_dense(np.ones((2, 2))), rw)  # load compiled kernels before timing
    t0 = time.perf_counter()
    model = build_model(inst, rw, IlpConfig())
    t_build = time.perf_counter() - t0
    res = solve_ilp(inst, rw, IlpConfig(mip_gap=0.0, time_limit=args.time_limit))
    s, c = bipoly_s(inst, rw), bipoly_c(inst, rw)
    print(f"instance: {args.m} x {args.n} dense {kind}, omega={args.omega} eta={args.eta} seed={args.seed}")
    print(f"model: {model.cost.size:,} binaries, {model.rows.shape[0]:,} rows, {model.rows.nnz:,} nonzeros; build {t_build:.3f} s")
    print(f"ILP: {res.seconds:.2f} s (target <= 10 s), status {res.status}, gap {res.gap:.2e}, objective {res.objective:.4f}, "
          f"dual bound {res.info.get('dual_bound', float('nan')):.4f}")
    print(f"BiPoly.S objective {s.objective:.4f} ({s.seconds:.3f} s); BiPoly.C objective {c.objective:.4f} ({c.seconds:.3f} s)")
    print(f"ratios: ILP/BiPoly.S {res.objective / s.objective:.4f}, ILP/BiPoly.C {res.objective / c.objective:.4f}")


if __name__ == "__main__":
    main()
