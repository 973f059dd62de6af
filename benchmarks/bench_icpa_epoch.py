"""ICPA training speed: one epoch over all five XMarket markets (issue 4 target: ≤ 60 s on CPU).

Needs the real pipeline's edges (``dvc repro pipelines/real/dvc.yaml:edges_xmarket``); says so and
exits otherwise. Times one epoch of each kind of run the stages do: ICPA phase 1 (random λ + gated
SWD/SGWD), Base (equal weights, no alignment), ICPA phase 2 (ParetoMTL with per-source tower
gradients and the frozen phase-1 plan). Prints figures only; timings taken while other jobs load the
machine are preliminary.

    python -m benchmarks.bench_icpa_epoch [--params pipelines/real/params.yaml] [--root data/real/xmarket]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

from crossmatch.icpa import ICPAModel, Trainer, build_model
from crossmatch.icpa.config import PhaseConfig
from crossmatch.icpa.methods import phase1_config, phase2_config, single_config
from stages._common import run
from stages._icpa import load_data, load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="pipelines/real/params.yaml")
    ap.add_argument("--root", default="data/real/xmarket")
    args = ap.parse_args()
    root = Path(args.root)
    if not (root / "edges").is_dir():
        print(f"{root}/edges not found: run `dvc repro pipelines/real/dvc.yaml:edges_xmarket` first")
        sys.exit(0)
    params = load_params(args.params)
    t0 = time.perf_counter()
    data = load_data(root / "ingested", root / "edges", params.sources)
    print(f"load + graph build: {time.perf_counter() - t0:.2f} s; sources {params.sources}; "
          f"load avg {os.getloadavg()[0]:.2f}; torch threads {torch.get_num_threads()}")
    sched = params.schedule_config
    g = data.graph
    anchors = sum(int(s.anchors.numel()) for s in g.sources)

    def train_one(name: str, phase: PhaseConfig, frozen: ICPAModel | None = None, tower: str = "mlp") -> ICPAModel:
        cfg = dataclasses.replace(params.model_config, tower=tower)
        model = build_model(g.schemas, len(g.categories), cfg, 0)
        if frozen is not None:
            model.load_state_dict(frozen.state_dict())
        tr = Trainer(model, g, phase, pairs=params.pair_config, align=params.align_config, seed=0, frozen=frozen)
        start = time.perf_counter()
        stats = tr.train_epoch()
        sec = time.perf_counter() - start
        print(f"{name:>22}: one epoch = {stats['steps']:3d} steps, {anchors:,} anchors: {sec:6.1f} s  "
              f"(target <= 60 s: {'met' if sec <= 60 else 'NOT met'})")
        return tr.model

    p1 = train_one("ICPA phase 1", phase1_config(sched, align=True))
    train_one("Base", single_config("base", None, sched))
    train_one("ICPA phase 2 (ca)", phase2_config("icpa", 0, sched), frozen=p1)
    train_one("MMoE", single_config("mmoe", None, sched), tower="mmoe")


if __name__ == "__main__":
    run("bench_icpa_epoch", main)  # bad input or params: one short line and exit 2, no traceback
