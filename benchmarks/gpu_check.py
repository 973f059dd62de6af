"""ICPA on CUDA next to the CPU (issue 11 part 5): epoch seconds and validation NDCG@10 per preset.

For the ``tiny`` and ``default`` synthetic presets (generated, ingested and edged once under
``benchmarks/.cache/icpa-scale-<preset>``), trains ICPA phase 1 and a ParetoMTL phase 2 (target:
the first source) with the ``icpa`` params of ``--params`` on the CPU and, when CUDA is
available, on the GPU; prints seconds per epoch of each phase and the mean validation NDCG@10 of
the phase-2 model. The CUDA run uses the sync-free path: ``pairs.negative_pool`` (default 512
here; ``--set pairs.negative_pool=0 --set pairs.objective=bce`` for the unique-node path: the softmax objective needs a pool), device-side loss records and the
torch ParetoMTL solver. Without CUDA it says so and runs the CPU only.

    python -m benchmarks.gpu_check [--presets tiny,default] [--set key=value ...] [--nondeterministic]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.bench_icpa_scaling import apply_sets, prepare


def run(preset: str, device: str, params_file: Path, sets: list[str], deterministic: bool) -> dict[str, Any]:
    from crossmatch.icpa import Trainer, build_model
    from crossmatch.icpa.methods import phase1_config, phase2_config
    from stages._common import load_section, params_as
    from stages._icpa import ICPAParams, evaluate_source, load_data

    base = prepare(1.0, params_file, preset=preset)
    params = params_as(ICPAParams, apply_sets(load_section("icpa", params_file), sets), "icpa")
    params.check()
    data = load_data(base / "ingested", base / "edges", params.sources)
    g, sched = data.graph, params.schedule_config
    out: dict[str, Any] = {}
    model = build_model(g.schemas, len(g.categories), params.model_config, params.seed)
    frozen = None
    for phase_name, phase in (("phase1", phase1_config(sched, align=True)), ("phase2", phase2_config("icpa", 0, sched))):
        tr = Trainer(model, g, phase, pairs=params.pair_config, align=params.align_config, seed=params.seed,
                     device=device, frozen=frozen, deterministic=deterministic)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        tr.fit()
        tr.flush_log()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out[f"{phase_name}_s_per_epoch"] = (time.perf_counter() - t0) / max(1, phase.epochs)
        out[f"{phase_name}_steps"] = tr.step
        model = tr.model.cpu()
        frozen = model
    out["valid_ndcg@10"] = float(np.mean([evaluate_source(model, data, s, params.eval_config)["valid"]["10"]["ndcg"]
                                          for s in params.sources]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--presets", default="tiny,default")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="icpa key=value (repeatable)")
    ap.add_argument("--nondeterministic", action="store_true", help="CUDA: icpa.deterministic false")
    args = ap.parse_args()
    sets = ["pairs.negative_pool=512", *args.sets]
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
        print(f"CUDA: {torch.cuda.get_device_name(0)}")
    else:
        print("CUDA not available: CPU only")
    print(f"sets {sets}; torch threads {torch.get_num_threads()}")
    print(f"{'preset':>8} {'device':>6} {'p1 s/epoch':>10} {'p1 steps':>8} {'p2 s/epoch':>10} {'p2 steps':>8} "
          f"{'valid NDCG@10':>13}")
    for preset in args.presets.split(","):
        for dev in devices:
            r = run(preset, dev, Path(args.params), sets, deterministic=not args.nondeterministic)
            print(f"{preset:>8} {dev:>6} {r['phase1_s_per_epoch']:>10.3f} {r['phase1_steps']:>8} "
                  f"{r['phase2_s_per_epoch']:>10.3f} {r['phase2_steps']:>8} {r['valid_ndcg@10']:>13.4f}", flush=True)


if __name__ == "__main__":
    main()
