"""Stage ``train_align``: ICPA phase 1 — Pareto-front optimisation with gated sliced alignment.

ALGORITHMS.md §2.6 phase 1: every step weighs the per-source losses with a random convex
combination λ and adds β · (gated SWD + SGWD + gate loss). Also trains the phase 1 of the
*w/o Align* ablation (β = 0) that ``pareto_finetune`` fine-tunes. Outputs:

    --out/icpa_phase1.pt, --out/wo_align_phase1.pt   models (``model_payload``: meta + state_dict) of the
                                                     first seed; ``<name>.seed<k>.pt`` for the other seeds
    --out/losses.csv                                 per-step losses L_j, weights λ_j, alignment
    --out/beta_sweep.csv                             with icpa.align.beta_sweep: phase 1 at every β of
                                                     the grid (NDCG@10 per source, hit@k)
    --embeddings/<source>.parquet                    item_idx, item_id, embedding (32 × float32,
                                                     unit norm; cross-source dot = learned similarity)
    --metrics                                        final losses, alignment hit@k, timings
    --front (csv + png)                              per-step losses for the Pareto-front plot

Size (over the 150-line aim): the Pareto-front plot and the optional β sweep live beside the training call.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402

from crossmatch.checkpoint import save_checkpoint  # noqa: E402
from crossmatch.icpa import Schedule, build_model, model_payload, resolve_device  # noqa: E402
from crossmatch.icpa import distributed as ddp  # noqa: E402
from crossmatch.icpa.methods import phase1_config  # noqa: E402
from stages._common import atomic_dir, console, run, write_atomic, write_json  # noqa: E402
from stages._icpa import (  # noqa: E402
    Checkpoints,
    Data,
    ICPAParams,
    alignment_accuracy,
    code_hash,
    embeddings_frame,
    evaluate_source,
    fingerprint,
    flatten,
    load_data,
    load_params,
    params_snapshot,
    read_concepts,
    seed_file,
    source_embeddings,
    train_run,
)


def front_frame(log: list[dict[str, Any]]) -> pl.DataFrame:
    """Per-step rows: step, epoch, loss_<source>, weight_<source>, align, gate, total."""
    return pl.DataFrame(log) if log else pl.DataFrame({"step": [], "epoch": []})


def plot_front(frame: pl.DataFrame, sources: list[str], path: Path) -> None:
    """Left: per-source loss per epoch. Right: epoch-mean losses of the first two sources (the front)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    if frame.height:
        per_epoch = frame.group_by("epoch").agg([pl.col(f"loss_{s}").fill_nan(None).mean() for s in sources]).sort("epoch")
        for s in sources:
            axes[0].plot(per_epoch["epoch"] + 1, per_epoch[f"loss_{s}"], marker="o", label=s)
        axes[0].set_xlabel("epoch")
        axes[0].set_ylabel("mean source loss L_j")
        axes[0].legend()
        if len(sources) >= 2:
            a, b = sources[0], sources[1]
            sc = axes[1].scatter(per_epoch[f"loss_{a}"], per_epoch[f"loss_{b}"], c=per_epoch["epoch"], cmap="viridis")
            fig.colorbar(sc, ax=axes[1], label="epoch")
            axes[1].set_xlabel(f"L_{a}")
            axes[1].set_ylabel(f"L_{b}")
    axes[0].set_title("phase 1: per-source losses")
    axes[1].set_title("loss trajectory (Pareto front view)")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def beta_sweep(data: Data, params: ICPAParams, schedule: Schedule, ckpt: Checkpoints, tag_base: list[Any],
               concepts: pl.DataFrame | None, dist: ddp.DistContext | None = None,
               device: torch.device | None = None) -> list[dict[str, Any]]:
    """Phase 1 at every β of ``icpa.align.beta_grid`` (paper Fig. 4): NDCG@10 per source and hit@10."""
    rows = []
    for beta in params.align_config.beta_grid:
        model = build_model(data.graph.schemas, len(data.graph.categories), params.model_config, params.seed)
        phase = phase1_config(dataclasses.replace(schedule, beta=beta), align=beta > 0)
        trainer = train_run(f"beta={beta:g}", model, data, phase, params, ckpt,
                            tag=fingerprint(*tag_base, "beta", beta), dist=dist, device=device)
        row: dict[str, Any] = {"beta": beta}
        for s in params.sources:
            # validation only: β is a setting, chosen on validation (issue 10)
            row[f"{s}.ndcg@10"] = evaluate_source(trainer.model, data, s, params.eval_config)["valid"]["10"]["ndcg"]
        hits = alignment_accuracy(source_embeddings(trainer.model, data), data, concepts, params.eval_config.hit_ks)
        row.update({k: v for k, v in hits.items() if k.startswith("hit@")})
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.train_align", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--ingested", default="data/ingested")
    ap.add_argument("--edges", default="data/edges")
    ap.add_argument("--truth", default="data/truth/concepts.parquet", help="hidden correspondences (optional)")
    ap.add_argument("--out", default="data/icpa/align")
    ap.add_argument("--embeddings", default="data/icpa/embeddings")
    ap.add_argument("--checkpoints", default="data/icpa/checkpoints/align")
    ap.add_argument("--metrics", default="metrics/train_align.json")
    ap.add_argument("--front", default="plots/icpa_front.csv")
    args = ap.parse_args()

    params = load_params(args.params)
    dist: ddp.DistContext | None = None
    device = None
    if params.world_size > 1 or ddp.under_torchrun():
        if not ddp.under_torchrun():
            # icpa.world_size > 1: this stage starts itself that many times through torchrun
            console.print(f"train_align: launching {params.world_size} processes (torchrun)")
            sys.exit(ddp.launch(params.world_size, "stages.train_align", sys.argv[1:]))
        dist, device = ddp.init_from_env(resolve_device(params.device))
    data = load_data(args.ingested, args.edges, params.sources)
    schedule = params.schedule_config
    concepts = read_concepts(args.truth)
    ckpt = Checkpoints(args.checkpoints, params.checkpoint_every)
    tag_base = [params_snapshot(params), data.signature, code_hash()]
    if len(params.sources) == 1:
        console.print("[yellow]train_align: a single source — nothing to align; phase 1 reduces to SOO[/]")

    runs = {"icpa_phase1": True}
    if "wo_align" in params.methods:
        runs["wo_align_phase1"] = False
    models: dict[str, Any] = {}
    metrics: dict[str, Any] = {"sources": params.sources, "device": str(params.device), "seeds": params.seed_list}
    logs: dict[str, Any] = {}
    first = params.seed_list[0]
    t0 = time.perf_counter()
    for seed in params.seed_list:
        sp = dataclasses.replace(params, seed=seed)
        for name, align in runs.items():
            model = build_model(data.graph.schemas, len(data.graph.categories), params.model_config, seed)
            phase = phase1_config(schedule, align=align)
            trainer = train_run(f"{name}#{seed}", model, data, phase, sp, ckpt, tag=fingerprint(*tag_base, name, seed),
                                dist=dist, device=device)
            models[seed_file(name, seed, first)] = trainer.model
            if seed != first or (dist is not None and not dist.is_main):
                continue
            logs[name] = trainer.log
            last_epoch = [r for r in trainer.log if r["epoch"] == trainer.epoch - 1]
            metrics[name] = {f"final_{k}": sum(r[k] for r in last_epoch if r[k] == r[k]) /
                             max(1, sum(1 for r in last_epoch if r[k] == r[k]))
                             for k in (last_epoch[0] if last_epoch else {}) if k.startswith(("loss_", "align", "gate"))}
            metrics[name]["steps"] = trainer.step
            hits = alignment_accuracy(source_embeddings(trainer.model, data), data, concepts, params.eval_config.hit_ks)
            metrics[name].update({k: v for k, v in hits.items() if k != "pairs"})
    sweep_rows = (beta_sweep(data, params, schedule, ckpt, tag_base, concepts, dist, device)
                  if params.align_config.beta_sweep else [])
    if dist is not None:
        metrics["world_size"] = dist.world_size
        ddp.shutdown()
        if not dist.is_main:
            return  # rank 0 writes every output
    for row in sweep_rows:
        metrics.setdefault("beta_sweep", {})[f"{row['beta']:g}"] = {k: v for k, v in row.items() if k != "beta"}
    metrics["seconds"] = time.perf_counter() - t0

    icpa = models["icpa_phase1.pt"]
    emb = source_embeddings(icpa, data, "anchor")
    front = front_frame(logs["icpa_phase1"])
    with atomic_dir(args.out) as out, atomic_dir(args.embeddings) as emb_dir:
        for name, model in models.items():
            save_checkpoint(model_payload(model, {"run": name, "sources": params.sources}), out / name)
        front.write_csv(out / "losses.csv")
        if sweep_rows:
            pl.DataFrame(sweep_rows).write_csv(out / "beta_sweep.csv")
        for s in params.sources:
            embeddings_frame(emb[s], data.item_ids[s]).write_parquet(emb_dir / f"{s}.parquet")
    front_path = Path(args.front)
    write_atomic(front_path, lambda tmp: front.write_csv(tmp))
    plot_front(front, params.sources, front_path.with_suffix(".png"))
    write_json(args.metrics, flatten(metrics))
    ckpt.clear()
    hit = metrics["icpa_phase1"].get("hit@10")
    console.print(f"train_align: {len(models)} phase-1 model(s) in {metrics['seconds']:.1f}s -> {args.out}; "
                  f"embeddings -> {args.embeddings}" + (f"; alignment hit@10 {hit:.3f}" if hit is not None else ""))


if __name__ == "__main__":
    run("train_align", main)
