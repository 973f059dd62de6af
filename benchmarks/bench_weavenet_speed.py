"""Throughput of WeaveNet (batched forward + Hungarian binarisation) against PowerBalance (issue 13, part 5).

For N in ``--sizes`` (default 20, 30, 100): ``--instances`` fresh UU instances; WeaveNet runs in batches of
``--batch`` on one device (CPU by default; ``--device cuda`` when lent a GPU); PowerBalance (ALGORITHMS.md
§3.8.5, target SEq) runs one instance after another in this process. Prints instances per second of each
and their ratio. The model is the UU model of the shipped set ``crossmatch/twosided/pretrained/weavenet_wn16.pt``
unless ``--model``. ``--best-of-set`` adds the throughput of the best-of-set portfolio (every model of both shipped
files, ``crossmatch.twosided.weavenet.portfolio.best_of``: one forward pass, binarisation and stability check each).

Usage: OMP_NUM_THREADS=1 python -m benchmarks.bench_weavenet_speed [--sizes 20 30 100] [--instances 200] [--best-of-set]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from crossmatch.checkpoint import load_checkpoint
from crossmatch.twosided.generators import generate
from crossmatch.twosided.instance import Instance, ranks_from_satisfaction
from crossmatch.twosided.power_balance import power_balance_many
from crossmatch.twosided.weavenet.binarize import binarize
from crossmatch.twosided.weavenet.checkpoints import load_models, model_for
from crossmatch.twosided.weavenet.portfolio import best_of
from crossmatch.twosided.weavenet.train import predict_logits, resolve_device

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "crossmatch/twosided/pretrained/weavenet_wn16.pt"
SIZES_MODEL = ROOT / "crossmatch/twosided/pretrained/weavenet_wn16_sizes.pt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 30, 100])
    ap.add_argument("--instances", type=int, default=200)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--best-of-set", action="store_true", help="also the ten-model best-of-set portfolio")
    args = ap.parse_args()
    device = resolve_device(args.device)
    model = model_for(load_models(load_checkpoint(Path(args.model)), device), "UU")
    portfolio = {}
    if args.best_of_set:
        found = {**load_models(load_checkpoint(DEFAULT_MODEL), device), **load_models(load_checkpoint(SIZES_MODEL), device)}
        portfolio = {"UU": found["UU"], **{k: m for k, m in found.items() if k != "UU"}}
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.instances} UU instances per size")
    print(f"{'N':>5} {'WeaveNet inst/s':>16} {'(forward only)':>15} {'PowerBalance inst/s':>20} {'WN / PB':>8}"
          + (f" {f'best of {len(portfolio)} inst/s':>20} {'set / PB':>9}" if portfolio else ""))
    for n in args.sizes:
        sa, sb = generate("UU", n, args.instances, np.random.default_rng(args.seed))
        predict_logits(model, sa[:2], sb[:2], device)  # warm-up (allocations, CUDA context)
        t0 = time.perf_counter()
        # The activations grow as batch × N² × D per layer: smaller batches at large N keep memory flat.
        batch = min(args.batch, max(1, 200_000 // (n * n)))
        logits = predict_logits(model, sa, sb, device, batch_size=batch)
        t1 = time.perf_counter()
        binarize(logits, "hungarian")
        t2 = time.perf_counter()
        ra = (ranks_from_satisfaction(sa) - 1).astype(np.int32)
        rb = (ranks_from_satisfaction(sb) - 1).astype(np.int32)
        t3 = time.perf_counter()
        for k in range(args.instances):
            power_balance_many(Instance(ra[k], rb[k]), ("seq",))
        t4 = time.perf_counter()
        wn, fwd, pb = args.instances / (t2 - t0), args.instances / (t1 - t0), args.instances / (t4 - t3)
        extra = ""
        if portfolio:
            t5 = time.perf_counter()
            best_of(portfolio, sa, sb, device, batch_size=batch)
            st = args.instances / (time.perf_counter() - t5)
            extra = f" {st:>20.1f} {st / pb:>9.4f}"
        print(f"{n:>5} {wn:>16.1f} {fwd:>15.1f} {pb:>20.1f} {wn / pb:>8.3f}{extra}")


if __name__ == "__main__":
    main()
