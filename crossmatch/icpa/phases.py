"""The training protocols of ``train_align`` (phase 1) and ``pareto_finetune`` (phase 2, per target).

* :func:`align_phase1` — ICPA phase 1 (ALGORITHMS.md §2.6: random convex λ + β · gated alignment) and the
  phase 1 of *w/o Align* (β = 0), once per seed; optionally phase 1 at every β of ``icpa.align.beta_grid``
  (paper Fig. 4, scored on validation). Returns the models, the per-step log, item embeddings and metrics.
* :func:`finetune_target` — for one target, the per-target methods of §2.10–2.11 in ``icpa.methods``
  (ICPA, *w/o Pareto*, *w/o Align* from their phase-1 models; *w/o Front*, SOO from scratch), each with the
  joint models' step budget, once per seed, evaluated on the target's validation and test events.

Both take the models they start from through a callable, so that the caller decides where they are read.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch
from rich.console import Console

from crossmatch.icpa.curves import epoch_curve
from crossmatch.icpa.data import Data
from crossmatch.icpa.distributed import DistContext
from crossmatch.icpa.methods import PER_TARGET, Schedule, phase1_config, phase2_config, single_config
from crossmatch.icpa.model import ICPAModel
from crossmatch.icpa.params import ICPAParams, seed_file
from crossmatch.icpa.report import (
    alignment_accuracy,
    evaluate_source,
    per_user_arrays,
    source_embeddings,
    strip_per_user,
)
from crossmatch.icpa.runs import CONSOLE, CheckpointStore, code_hash, fingerprint, train_run
from crossmatch.icpa.train import build_model, epoch_steps, model_from_payload, model_payload

# Which phase-1 model each fine-tuned method starts from (the others start from scratch).
START_FROM = {"icpa": "icpa_phase1", "wo_pareto": "icpa_phase1", "wo_align": "wo_align_phase1"}


def run_tag(params: ICPAParams, data: Data) -> list[Any]:
    """What every run's checkpoint tag starts with: the params, the data's signature and the code."""
    return [dataclasses.asdict(params), data.signature, code_hash()]


@dataclass
class Phase1Result:
    models: dict[str, ICPAModel]  # file name (``seed_file``) -> phase-1 model
    metrics: dict[str, Any]  # final losses, steps, alignment hit@k per run; beta_sweep; seconds
    log: list[dict[str, Any]]  # ICPA phase 1's per-step losses and weights (first seed)
    sweep: list[dict[str, Any]]  # one row per β of the sweep (empty without ``beta_sweep``)
    embeddings: dict[str, np.ndarray]  # ICPA phase 1's anchor embeddings per source (main process only)
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # run -> per-epoch losses (first seed)


def beta_sweep(data: Data, params: ICPAParams, schedule: Schedule, checkpoints: CheckpointStore | None,
               concepts: pl.DataFrame | None, dist: DistContext | None = None, device: torch.device | None = None,
               console: Console | None = None) -> list[dict[str, Any]]:
    """Phase 1 at every β of ``icpa.align.beta_grid`` (paper Fig. 4): NDCG@10 per source and hit@10."""
    rows = []
    for beta in params.align_config.beta_grid:
        model = build_model(data.graph.schemas, len(data.graph.categories), params.model_config, params.seed)
        phase = phase1_config(dataclasses.replace(schedule, beta=beta), align=beta > 0)
        trainer = train_run(f"beta={beta:g}", model, data, phase, params, checkpoints,
                            tag=fingerprint(*run_tag(params, data), "beta", beta), dist=dist, device=device,
                            console=console)
        row: dict[str, Any] = {"beta": beta}
        for s in params.sources:
            # validation only: β is a setting, chosen on validation (issue 10)
            row[f"{s}.ndcg@10"] = evaluate_source(trainer.model, data, s, params.eval_config)["valid"]["10"]["ndcg"]
        hits = alignment_accuracy(source_embeddings(trainer.model, data), data, concepts, params.eval_config.hit_ks)
        row.update({k: v for k, v in hits.items() if k.startswith("hit@")})
        rows.append(row)
    return rows


def _final_losses(log: list[dict[str, Any]], epoch: int) -> dict[str, float]:
    """Mean of each loss over the last epoch's steps (NaN entries, absent sources, left out)."""
    last = [r for r in log if r["epoch"] == epoch - 1]
    return {f"final_{k}": sum(r[k] for r in last if r[k] == r[k]) / max(1, sum(1 for r in last if r[k] == r[k]))
            for k in (last[0] if last else {}) if k.startswith(("loss_", "align", "gate"))}


def align_phase1(data: Data, params: ICPAParams, checkpoints: CheckpointStore | None = None, *,
                 concepts: pl.DataFrame | None = None, dist: DistContext | None = None,
                 device: torch.device | None = None, console: Console | None = None) -> Phase1Result:
    """Phase 1 of ICPA (and of *w/o Align* when in ``icpa.methods``) for every seed; see the module doc."""
    console = console if console is not None else CONSOLE
    schedule = params.schedule_config
    runs = {"icpa_phase1": True}
    if "wo_align" in params.methods:
        runs["wo_align_phase1"] = False
    models: dict[str, ICPAModel] = {}
    metrics: dict[str, Any] = {"sources": params.sources, "device": str(params.device), "seeds": params.seed_list}
    logs: dict[str, Any] = {}
    curves: dict[str, list[dict[str, Any]]] = {}
    first = params.seed_list[0]
    t0 = time.perf_counter()
    for seed in params.seed_list:
        sp = dataclasses.replace(params, seed=seed)
        for name, align in runs.items():
            model = build_model(data.graph.schemas, len(data.graph.categories), params.model_config, seed)
            trainer = train_run(f"{name}#{seed}", model, data, phase1_config(schedule, align=align), sp, checkpoints,
                                tag=fingerprint(*run_tag(params, data), name, seed), dist=dist, device=device,
                                console=console)
            models[seed_file(name, seed, first)] = trainer.model
            if seed != first or (dist is not None and not dist.is_main):
                continue
            logs[name] = trainer.log
            curves[name] = epoch_curve(trainer.log)
            metrics[name] = _final_losses(trainer.log, trainer.epoch)
            metrics[name]["steps"] = trainer.step
            hits = alignment_accuracy(source_embeddings(trainer.model, data), data, concepts, params.eval_config.hit_ks)
            metrics[name].update({k: v for k, v in hits.items() if k != "pairs"})
    sweep = (beta_sweep(data, params, schedule, checkpoints, concepts, dist, device, console)
             if params.align_config.beta_sweep else [])
    if dist is not None:
        metrics["world_size"] = dist.world_size
    if dist is not None and not dist.is_main:
        return Phase1Result(models, metrics, [], sweep, {})  # rank 0 reports
    for row in sweep:
        metrics.setdefault("beta_sweep", {})[f"{row['beta']:g}"] = {k: v for k, v in row.items() if k != "beta"}
    metrics["seconds"] = time.perf_counter() - t0
    emb = source_embeddings(models["icpa_phase1.pt"], data, "anchor")
    return Phase1Result(models, metrics, logs["icpa_phase1"], sweep, emb, curves)


@dataclass
class FinetuneResult:
    models: dict[str, ICPAModel]  # file name (``seed_file``) -> fine-tuned model
    results: dict[str, dict[str, Any]]  # {method: {seed: {valid|test: {k: metrics}, steps, seconds}}}
    per_user: dict[str, np.ndarray]  # "<method>/<seed>/<split>/<metric>@10" -> per-user values
    weights: list[dict[str, Any]]  # ICPA's per-step ParetoMTL weights and losses (first seed)
    metrics: dict[str, Any] = field(default_factory=dict)  # per method: mean valid/test NDCG@10, steps; seconds
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # method -> per-epoch losses (first seed)


def finetune_target(data: Data, params: ICPAParams, target: str, phase1: Callable[[str, int], ICPAModel],
                    checkpoints: CheckpointStore | None = None, *, console: Console | None = None) -> FinetuneResult:
    """Phase 2 and the per-target baselines for ``target``; see the module doc.

    ``phase1(name, seed)``: the phase-1 model ``name`` (``icpa_phase1`` / ``wo_align_phase1``) of ``seed``.
    """
    console = console if console is not None else CONSOLE
    j = data.graph.index(target)
    schedule = params.schedule_config
    tag_base = [*run_tag(params, data), target]
    methods = [m for m in PER_TARGET if m in params.methods]
    # Equal budgets: every method takes the joint models' number of optimisation steps.
    budget = schedule.total_epochs * epoch_steps(data.graph, list(range(len(params.sources))), params.pair_config)
    soo_epoch = epoch_steps(data.graph, [j], params.pair_config)
    out = FinetuneResult({}, {m: {} for m in methods}, {}, [])
    t0 = time.perf_counter()
    first = params.seed_list[0]
    for seed in params.seed_list:
        sp = dataclasses.replace(params, seed=seed)
        loaded: dict[str, ICPAModel] = {}
        for method in methods:
            t1 = time.perf_counter()
            frozen: ICPAModel | None = None
            if method in START_FROM:
                start = START_FROM[method]
                if start not in loaded:
                    loaded[start] = phase1(start, seed)
                frozen = loaded[start]
                model = model_from_payload(model_payload(frozen))  # θ_n := θ_n^0 (a copy; f^0 stays frozen)
                phase = phase2_config(method, j, schedule)
            else:
                model = build_model(data.graph.schemas, len(data.graph.categories), params.model_config, seed)
                phase = single_config(method, j, schedule, budget_steps=budget, epoch_steps=soo_epoch)
            trainer = train_run(f"{method}@{target}#{seed}", model, data, phase, sp, checkpoints,
                                frozen=frozen if phase.alignment == "frozen" else None,
                                tag=fingerprint(*tag_base, method, seed), console=console)
            out.models[seed_file(method, seed, first)] = trainer.model
            res = evaluate_source(trainer.model, data, target, params.eval_config)
            out.per_user.update(per_user_arrays(res, f"{method}/{seed}"))
            # phase-2 methods also spent their phase-1 model's steps
            steps = trainer.step + (schedule.phase1_epochs * budget // max(schedule.total_epochs, 1)
                                    if method in START_FROM else 0)
            out.results[method][str(seed)] = {**strip_per_user(res), "steps": steps,
                                              "seconds": time.perf_counter() - t1}
            if seed == first:
                out.curves[method] = epoch_curve(trainer.log)
            if method == "icpa" and seed == first:
                out.weights = [{k: v for k, v in r.items() if k.startswith(("step", "epoch", "weight_", "loss_"))}
                               for r in trainer.log]
            console.print(f"  {method}@{target} seed {seed}: NDCG@10 valid {res['valid']['10']['ndcg']:.4f} "
                          f"test {res['test']['10']['ndcg']:.4f} ({steps} steps)")
    out.metrics = {"target": target, "seconds": time.perf_counter() - t0}
    for method, per_seed in out.results.items():
        for split in ("valid", "test"):
            vals = [r[split]["10"]["ndcg"] for r in per_seed.values()]
            out.metrics[method] = out.metrics.get(method, {}) | {f"{split}.ndcg@10": float(np.mean(vals))}
        out.metrics[method]["steps"] = int(np.mean([r["steps"] for r in per_seed.values()]))
    return out
