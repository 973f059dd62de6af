"""Throughput of WeaveNet (batched forward + Hungarian binarisation) against PowerBalance (issue 13, part 5).

For N in ``--sizes`` (default 20, 30, 100): ``--instances`` fresh UU instances; WeaveNet runs in batches of
``--batch`` on one device (CPU by default; ``--device cuda`` when lent a GPU); PowerBalance (ALGORITHMS.md
§3.8.5, target SEq) runs one instance after another in this process. Prints instances per second of each
and their ratio. The model is the UU model of the shipped set ``crossmatch/twosided/pretrained/weavenet_wn16.pt``
unless ``--model``.

Usage: OMP_NUM_THREADS=1 python -m benchmarks.bench_weavenet_speed [--sizes 20 30 100] [--instances 200]
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
from crossmatch.twosided.weavenet.train import predict_logits, resolve_device

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "crossmatch/twosided/pretrained/weavenet_wn16.pt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 30, 100])
    ap.add_argument("--instances", type=int, default=200)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    device = resolve_device(args.device)
    model = model_for(load_models(load_checkpoint(Path(args.model)), device), "UU")
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.instances} UU instances per size")
    print(f"{'N':>5} {'WeaveNet inst/s':>16} {'(forward only)':>15} {'PowerBalance inst/s':>20} {'WN / PB':>8}")
    for n in args.sizes:
        sa, sb = generate("UU", n, args.instances, np.random.default_rng(args.seed))
        predict_logits(model, sa[:2], sb[:2], device)  # warm-up (allocations, CUDA context)
        t0 = time.perf_counter()
        # The activations grow as batch × N² × D per layer: smaller batches at large N keep memory flat.
        logits = predict_logits(model, sa, sb, device, batch_size=min(args.batch, max(1, 200_000 // (n * n))))
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
        print(f"{n:>5} {wn:>16.1f} {fwd:>15.1f} {pb:>20.1f} {wn / pb:>8.3f}")


if __name__ == "__main__":
    main()
