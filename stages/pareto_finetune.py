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

Every method trains once per seed of ``icpa.seeds`` with the joint models' step budget (SOO
included) and is evaluated on the target's validation and test events (NDCG@k, F@k). Outputs:
``--out/<method>.pt`` (first seed; ``<method>.seed<k>.pt`` for later seeds), ``--out/metrics.json``
(``{method: {seed: {valid|test: {k: {ndcg, f, precision, recall}}, steps, seconds}}}``),
``--out/per_user.npz`` (per-user NDCG@10 / F@10 for the paired bootstrap), ``--out/weights.csv``
(per-step ParetoMTL weights of ICPA) and a flat ``--metrics`` file.

Size (159 lines, over the 150-line aim): the per-seed, per-method training loop and its outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from crossmatch.checkpoint import load_checkpoint, save_checkpoint
from crossmatch.errors import ConfigError, InputError
from crossmatch.icpa import build_model, model_from_payload, model_payload
from crossmatch.icpa.methods import PER_TARGET, phase2_config, single_config
from crossmatch.icpa.train import epoch_steps
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
    per_user_arrays,
    seed_file,
    strip_per_user,
    train_run,
)

# Which phase-1 model each fine-tuned method starts from (the others start from scratch).
START_FROM = {"icpa": "icpa_phase1", "wo_pareto": "icpa_phase1", "wo_align": "wo_align_phase1"}


def load_phase1(align_dir: Path, name: str, sources: list[str]) -> Any:
    path = align_dir / name
    if not path.exists():
        raise InputError(f"phase-1 model {name} not found; run train_align first", file=str(path))
    payload = load_checkpoint(path)  # tensors and plain types only; a planted object is refused
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
    # The model (and ParetoMTL's per-source losses) covers every source: all training graphs are
    # loaded, but the validation / test events of the target only.
    data = load_data(args.ingested, args.edges, params.sources, eval_sources=[target])
    j = data.graph.index(target)
    schedule = params.schedule_config
    ckpt = Checkpoints(ckpt_dir, params.checkpoint_every)
    tag_base = [params_snapshot(params), data.signature, code_hash(), target]
    methods = [m for m in PER_TARGET if m in params.methods]
    # Equal budgets: every method takes the joint models' number of optimisation steps.
    budget = schedule.total_epochs * epoch_steps(data.graph, list(range(len(params.sources))), params.pair_config)
    soo_epoch = epoch_steps(data.graph, [j], params.pair_config)

    results: dict[str, dict[str, Any]] = {m: {} for m in methods}
    arrays: dict[str, Any] = {}
    models: dict[str, Any] = {}
    weights_log: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    first = params.seed_list[0]
    for seed in params.seed_list:
        sp = dataclasses.replace(params, seed=seed)
        phase1: dict[str, Any] = {}
        for method in methods:
            t1 = time.perf_counter()
            if method in START_FROM:
                start = START_FROM[method]
                if start not in phase1:
                    phase1[start] = load_phase1(Path(args.align), seed_file(start, seed, first), params.sources)
                frozen = phase1[start]
                model = model_from_payload(model_payload(frozen))  # θ_n := θ_n^0 (a copy; f^0 stays frozen)
                phase = phase2_config(method, j, schedule)
            else:
                frozen = None
                model = build_model(data.graph.schemas, len(data.graph.categories), params.model_config, seed)
                phase = single_config(method, j, schedule, budget_steps=budget, epoch_steps=soo_epoch)
            trainer = train_run(f"{method}@{target}#{seed}", model, data, phase, sp, ckpt,
                                frozen=frozen if phase.alignment == "frozen" else None,
                                tag=fingerprint(*tag_base, method, seed))
            models[seed_file(method, seed, first)] = trainer.model
            res = evaluate_source(trainer.model, data, target, params.eval_config)
            arrays.update(per_user_arrays(res, f"{method}/{seed}"))
            # phase-2 methods also spent their phase-1 model's steps
            steps = trainer.step + (schedule.phase1_epochs * budget // max(schedule.total_epochs, 1)
                                    if method in START_FROM else 0)
            results[method][str(seed)] = {**strip_per_user(res), "steps": steps,
                                          "seconds": time.perf_counter() - t1}
            if method == "icpa" and seed == first:
                weights_log = [{k: v for k, v in r.items() if k.startswith(("step", "epoch", "weight_", "loss_"))}
                               for r in trainer.log]
            console.print(f"  {method}@{target} seed {seed}: NDCG@10 valid {res['valid']['10']['ndcg']:.4f} "
                          f"test {res['test']['10']['ndcg']:.4f} ({steps} steps)")
    seconds = time.perf_counter() - t0

    with atomic_dir(out_dir) as out:
        for name, model in models.items():
            save_checkpoint(model_payload(model, {"run": name, "target": target, "sources": params.sources}), out / name)
        (out / "metrics.json").write_text(json.dumps({"target": target, "seeds": params.seed_list,
                                                     "methods": results}, indent=2, sort_keys=True) + "\n")
        np.savez_compressed(out / "per_user.npz", **arrays)
        if weights_log:
            pl.DataFrame(weights_log).write_csv(out / "weights.csv")
    flat: dict[str, Any] = {"target": target, "seconds": seconds}
    for method, per_seed in results.items():
        for split in ("valid", "test"):
            vals = [r[split]["10"]["ndcg"] for r in per_seed.values()]
            flat[method] = flat.get(method, {}) | {f"{split}.ndcg@10": float(np.mean(vals))}
        flat[method]["steps"] = int(np.mean([r["steps"] for r in per_seed.values()]))
    write_json(metrics_path, flatten(flat))
    ckpt.clear()
    console.print(f"pareto_finetune@{target}: {len(models)} model(s) in {seconds:.1f}s -> {out_dir}")


if __name__ == "__main__":
    run("pareto_finetune", main)
