"""ICPA sliced alignment speed: forward + backward of the gated SWD (+ SGWD) loss vs POT's exact EMD.

ALGORITHMS.md §2.5 / issue 4 target: B = 1024 nodes per source, d = 32, 128 projections, forward +
backward ≤ 20 ms on CPU. The same two 1024-node batches go through POT's exact EMD (network simplex
on the 1024 × 1024 squared-Euclidean cost, forward only) and the ratio is printed. Prints figures
only (no timed assertions); timings taken while other jobs load the machine are preliminary.

    python -m benchmarks.bench_icpa_align [--batch 1024] [--dim 32] [--projections 128] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from crossmatch.icpa.sliced import random_directions, sliced_alignment, sliced_gromov_alignment


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--projections", type=int, default=128)
    ap.add_argument("--sgwd", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--emd-repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"torch threads: {torch.get_num_threads()}  OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}  "
          f"load avg: {os.getloadavg()[0]:.2f}")
    B, d, K = args.batch, args.dim, args.projections
    gen = torch.Generator().manual_seed(0)

    def batch(p: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        xs = [torch.nn.functional.normalize(torch.randn(B, d, generator=gen), dim=1).requires_grad_() for _ in range(p)]
        gates = [torch.rand(B, p, generator=gen).requires_grad_() for _ in range(p)]
        return xs, gates

    results = {}
    for p in (2, 5):
        xs, gates = batch(p)
        pair_index = torch.randint(B, (128, 2), generator=gen)

        def swd_step(xs=xs, gates=gates) -> None:
            dirs = random_directions(d, K, gen)
            loss = sliced_alignment(xs, dirs, length=B, gates=gates).loss
            loss.backward()

        def full_step(xs=xs, gates=gates, pair_index=pair_index) -> None:
            dirs = random_directions(d, K, gen)
            loss = sliced_alignment(xs, dirs, length=B, gates=gates).loss
            loss = loss + sliced_gromov_alignment(xs, dirs[:, : args.sgwd], pair_index, length=B).loss
            loss.backward()

        results[f"swd_{p}"] = timed(swd_step, args.repeats)
        results[f"swd+sgwd_{p}"] = timed(full_step, args.repeats)
        for name in (f"swd_{p}", f"swd+sgwd_{p}"):
            med, best = results[name]
            verdict = f"target <= 20 ms: {'met' if med <= 20 else 'NOT met'}" if p == 2 else \
                f"{p * (p - 1) // 2} source pairs (the target is for one pair)"
            print(f"{name:>12} sources, B={B}, d={d}, K={K}: forward+backward median {med:7.2f} ms (best {best:.2f})"
                  f"  {verdict}")

    import ot

    x = [np.asarray(t.detach().numpy(), dtype=np.float64) for t in batch(2)[0]]
    a = np.full(B, 1.0 / B)

    def emd() -> None:
        M = ot.dist(x[0], x[1])  # squared Euclidean
        ot.emd2(a, a, M, numItermax=10_000_000)

    emd_med, emd_best = timed(emd, args.emd_repeats)
    print(f"{'POT ot.emd2':>12} (exact OT, 1024 x 1024, forward only): median {emd_med:9.2f} ms (best {emd_best:.2f})")
    swd_med = results["swd_2"][0]
    print(f"ratio exact EMD / gated SWD fwd+bwd (2 sources): {emd_med / swd_med:8.1f}x")
    print(f"ratio exact EMD / SWD+SGWD fwd+bwd (2 sources): {emd_med / results['swd+sgwd_2'][0]:8.1f}x")


if __name__ == "__main__":
    main()
