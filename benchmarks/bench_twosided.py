"""Two-sided matching speed: our GS and PowerBalance vs the `matching` package, and WeaveNet throughput.

Prints figures and ratios; asserts nothing (DEVELOPERS.md: no timed assertions). Targets at N = 1000,
given the preference matrices: GS <= 50 ms, PowerBalance <= 500 ms. Timings taken while other jobs load
the machine are preliminary.

    python -m benchmarks.bench_twosided [--sizes 100 300 1000] [--repeats 3] [--skip-matching]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from crossmatch.twosided.gale_shapley import gale_shapley
from crossmatch.twosided.generators import generate
from crossmatch.twosided.instance import Instance
from crossmatch.twosided.power_balance import power_balance

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "crossmatch/twosided/pretrained/weavenet_wn16.pt"  # model set; its UU model is timed


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def matching_package_gs(inst: Instance) -> tuple[float, float, np.ndarray]:
    """`matching` 1.4.3 StableMarriage (suitor-optimal): build and solve times, and A's partners."""
    from matching.games import StableMarriage

    n = inst.n
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * n + 1000))  # it recurses per proposal from N ≈ 90
    suitors = {f"a{i}": [f"b{j}" for j in inst.pref_a[i]] for i in range(n)}
    reviewers = {f"b{j}": [f"a{i}" for i in inst.pref_b[j]] for j in range(n)}
    t = time.perf_counter()
    game = StableMarriage.create_from_dictionaries(suitors, reviewers)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    sol = game.solve(optimal="suitor")
    t_solve = time.perf_counter() - t
    match = np.full(n, -1)
    for s, r in sol.items():
        match[int(s.name[1:])] = int(r.name[1:])
    return t_build, t_solve, match


def bench_algorithms(sizes: list[int], repeats: int, skip_matching: bool) -> None:
    print("== Gale–Shapley and PowerBalance on random UU instances (times: best of repeats) ==")
    print(f"{'N':>6} {'build':>9} {'lists':>9} {'GS':>9} {'PB':>9} {'matching build+solve':>22} "
          f"{'matching/GS':>12} {'matching/PB':>12}")
    for n in sizes:
        sa, sb = generate("UU", n, 1, np.random.default_rng(n))
        t = time.perf_counter()
        inst = Instance.from_scores(sa[0], sb[0])
        _ = inst.pref_a, inst.pref_b
        t_build = time.perf_counter() - t
        t = time.perf_counter()
        _ = inst.lists
        t_lists = time.perf_counter() - t
        t_gs, m_gs = best_of(lambda: gale_shapley(inst, "a"), repeats)  # noqa: B023
        t_pb, _ = best_of(lambda: power_balance(inst, "seq"), repeats)  # noqa: B023
        if skip_matching:
            ref, ratio, ratio_pb = "skipped", "", ""
        else:
            tb, ts, m_ref = matching_package_gs(inst)
            same = "same" if np.array_equal(m_ref, np.asarray(m_gs)) else "DIFFERENT"
            ref = f"{tb + ts:8.3f} s ({same})"
            ratio, ratio_pb = f"{(tb + ts) / t_gs:10.0f}×", f"{(tb + ts) / t_pb:10.1f}×"
        print(f"{n:>6} {1e3 * t_build:7.1f}ms {1e3 * t_lists:7.1f}ms {1e3 * t_gs:7.2f}ms {1e3 * t_pb:7.1f}ms {ref:>22} "
              f"{ratio:>12} {ratio_pb:>12}")
    print("targets at N = 1000 given the preference matrices: GS <= 50 ms, PowerBalance <= 500 ms "
          "(GS/PB columns; 'build' = ranks from scores, 'lists' = the one-off Python-list view PB uses)")


def bench_weavenet(batch: dict[int, int], repeats: int) -> None:
    import torch

    from crossmatch.checkpoint import load_checkpoint
    from crossmatch.twosided.weavenet.checkpoints import load_models, model_for
    from crossmatch.twosided.weavenet.model import WeaveNet, WeaveNetConfig
    from crossmatch.twosided.weavenet.train import predict_logits

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if PRETRAINED.is_file():
        model = model_for(load_models(load_checkpoint(PRETRAINED), device), "UU")
        name = f"{PRETRAINED.name}, UU model"
    else:
        model = WeaveNet(WeaveNetConfig(layers=16, dim=32, hidden=64, residual=True, variant="sym")).to(device).eval()
        name = "untrained WN-16 (pretrained checkpoint absent)"
    print(f"== WeaveNet inference throughput ({name}, {device}, torch threads {torch.get_num_threads()}) ==")
    for n, b in batch.items():
        sa, sb = generate("UU", n, b, np.random.default_rng(0))
        predict_logits(model, sa[:1], sb[:1], device)  # warm-up
        t, _ = best_of(lambda: predict_logits(model, sa, sb, device, batch_size=b), repeats)  # noqa: B023
        print(f"N = {n:>4}: {b / t:9.1f} instances/s (batch {b}, {1e3 * t / b:.2f} ms per instance)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-matching", action="store_true", help="skip the `matching` package (about a minute at N = 1000)")
    args = ap.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; load average {os.getloadavg()[0]:.2f} "
          "(timings under load are preliminary)")
    bench_algorithms(args.sizes, args.repeats, args.skip_matching)
    bench_weavenet({20: 256, 100: 16}, args.repeats)


if __name__ == "__main__":
    main()
