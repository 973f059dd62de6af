"""Stage ``pareto_finetune``: ICPA phase 2 for one target source, plus its per-target baselines.

ALGORITHMS.md §2.6 phase 2 / §2.7: start from the phase-1 model, freeze its gates and its
alignment plans, and fine-tune with ParetoMTL weights for the preference ``(1, ε, …)`` of the
target. DVC runs it once per source (``foreach``). For the same target it also trains the
per-target comparisons of §2.10–2.11 that are in ``icpa.methods``:

    icpa       phase-1 ICPA → ParetoMTL, frozen alignment
    wo_pareto  phase-1 ICPA → fixed linear weights z/Σz, frozen alignment
    wo_align   phase-1 w/o Align (β = 0) → ParetoMTL, no alignment
    wo_front   ParetoMTL + live alignment from scratch (no phase 1)
    soo        the target source alone

Every model is evaluated on the target's held-out interactions (NDCG@k, F@k). Outputs:
``--out/<method>.pt``, ``--out/metrics.json`` (``{method: {k: {ndcg, f, precision, recall}}}``),
``--out/weights.csv`` (per-step ParetoMTL weights of ICPA) and a flat ``--metrics`` file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import polars as pl
import torch

from crossmatch.errors import ConfigError, InputError
from crossmatch.icpa import build_model, model_from_payload, model_payload
from crossmatch.icpa.methods import PER_TARGET, phase2_config, single_config
from stages._common import atomic_dir, console, run, write_json
from stages._icpa import (
    Checkpoints,
    code_hash,
    evaluate_source,
    fingerprint,
    flatten,
    load_data,
    load_params,
    params_snapshot,
    train_run,
)

# Which phase-1 model each fine-tuned method starts from (the others start from scratch).
START_FROM = {"icpa": "icpa_phase1", "wo_pareto": "icpa_phase1", "wo_align": "wo_align_phase1"}


def load_phase1(align_dir: Path, name: str, sources: list[str]) -> Any:
    path = align_dir / f"{name}.pt"
    if not path.exists():
        raise InputError(f"phase-1 model {name}.pt not found; run train_align first", file=str(path))
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if payload["meta"].get("sources") != sources:
        raise InputError(f"the phase-1 model was trained on sources {payload['meta'].get('sources')}, "
                         f"but icpa.sources is {sources}; re-run train_align", file=str(path))
    return model_from_payload(payload)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.pareto_finetune", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--target", required=True, help="target source j* (one of icpa.sources)")
    ap.add_argument("--ingested", default="data/ingested")
    ap.add_argument("--edges", default="data/edges")
    ap.add_argument("--align", default="data/icpa/align", help="train_align output folder")
    ap.add_argument("--out", default=None, help="default: data/icpa/finetune/<target>")
    ap.add_argument("--checkpoints", default=None, help="default: data/icpa/checkpoints/finetune/<target>")
    ap.add_argument("--metrics", default=None, help="default: metrics/icpa_finetune_<target>.json")
    args = ap.parse_args()
    target = args.target
    out_dir = args.out or f"data/icpa/finetune/{target}"
    ckpt_dir = args.checkpoints or f"data/icpa/checkpoints/finetune/{target}"
    metrics_path = args.metrics or f"metrics/icpa_finetune_{target}.json"

    params = load_params(args.params)
    if target not in params.sources:
        raise ConfigError(f"--target {target!r} is not in icpa.sources {params.sources}")
    data = load_data(args.ingested, args.edges, params.sources)
    j = data.graph.index(target)
    schedule = params.schedule_config
    ckpt = Checkpoints(ckpt_dir, params.checkpoint_every)
    tag_base = [params_snapshot(params), data.signature, code_hash(), target]
    methods = [m for m in PER_TARGET if m in params.methods]
    phase1: dict[str, Any] = {}

    results: dict[str, Any] = {}
    models: dict[str, Any] = {}
    weights_log: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for method in methods:
        if method in START_FROM:
            start = START_FROM[method]
            if start not in phase1:
                phase1[start] = load_phase1(Path(args.align), start, params.sources)
            frozen = phase1[start]
            model = model_from_payload(model_payload(frozen))  # θ_n := θ_n^0 (a copy; f^0 stays frozen)
            phase = phase2_config(method, j, schedule)
        else:
            frozen = None
            model = build_model(data.graph.schemas, len(data.graph.categories), params.model_config, params.seed)
            phase = single_config(method, j, schedule)
        trainer = train_run(f"{method}@{target}", model, data, phase, params, ckpt,
                            frozen=frozen if phase.alignment == "frozen" else None,
                            tag=fingerprint(*tag_base, method))
        models[method] = trainer.model
        results[method] = evaluate_source(trainer.model, data, target, params.eval_config)
        if method == "icpa":
            weights_log = [{k: v for k, v in r.items() if k.startswith(("step", "epoch", "weight_", "loss_"))}
                           for r in trainer.log]
        console.print(f"  {method}@{target}: NDCG@10 {results[method]['10']['ndcg']:.4f}  "
                      f"F@10 {results[method]['10']['f']:.4f}")
    seconds = time.perf_counter() - t0

    with atomic_dir(out_dir) as out:
        for method, model in models.items():
            torch.save(model_payload(model, {"run": method, "target": target, "sources": params.sources}),
                       out / f"{method}.pt")
        (out / "metrics.json").write_text(json.dumps({"target": target, "methods": results}, indent=2,
                                                     sort_keys=True) + "\n")
        if weights_log:
            pl.DataFrame(weights_log).write_csv(out / "weights.csv")
    flat = {"target": target, "seconds": seconds}
    for method, res in results.items():
        flat[method] = {"ndcg@10": res["10"]["ndcg"], "f@10": res["10"]["f"], "users": res["users"]}
    write_json(metrics_path, flatten(flat))
    ckpt.clear()
    console.print(f"pareto_finetune@{target}: {len(models)} model(s) in {seconds:.1f}s -> {out_dir}")


if __name__ == "__main__":
    run("pareto_finetune", main)
