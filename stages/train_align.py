"""Stage ``train_align``: ICPA phase 1 — Pareto-front optimisation with gated sliced alignment.

ALGORITHMS.md §2.6 phase 1: every step weighs the per-source losses with a random convex
combination λ and adds β · (gated SWD + SGWD + gate loss). Also trains the phase 1 of the
*w/o Align* ablation (β = 0) that ``pareto_finetune`` fine-tunes (:func:`crossmatch.icpa.phases.align_phase1`).
Outputs:

    --out/icpa_phase1.pt, --out/wo_align_phase1.pt   models (``model_payload``: meta + state_dict) of the
                                                     first seed; ``<name>.seed<k>.pt`` for the other seeds
    --out/losses.csv                                 per-step losses L_j, weights λ_j, alignment
    --out/beta_sweep.csv                             with icpa.align.beta_sweep: phase 1 at every β of
                                                     the grid (NDCG@10 per source, hit@k)
    --embeddings/<source>.parquet                    item_idx, item_id, embedding (32 × float32,
                                                     unit norm; cross-source dot = learned similarity)
    --metrics                                        final losses, alignment hit@k, timings
    --front (csv + png)                              per-step losses for the Pareto-front plot
    --curves/<run>.csv, --curves/curves.png          per-epoch training curves of each phase-1 run (first
                                                     seed; crossmatch.icpa.curves); not written without --curves
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from crossmatch.checkpoint import save_checkpoint
from crossmatch.icpa import distributed as ddp
from crossmatch.icpa import model_payload, resolve_device
from crossmatch.icpa.curves import curve_csv, curves_figure
from crossmatch.icpa.figures import front_figure, png_bytes
from crossmatch.icpa.phases import align_phase1
from crossmatch.icpa.report import embeddings_frame, flatten
from stages._common import atomic_dir, console, run, write_atomic, write_json
from stages._icpa import Checkpoints, load_data, load_params, no_truth_metrics, read_concepts


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.train_align", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--ingested", default="data/ingested")
    ap.add_argument("--edges", default="data/edges")
    ap.add_argument("--truth", default="data/truth/concepts.parquet",
                    help='hidden correspondences (optional: absent or "none" -> alignment hit@k null)')
    ap.add_argument("--out", default="data/icpa/align")
    ap.add_argument("--embeddings", default="data/icpa/embeddings")
    ap.add_argument("--checkpoints", default="data/icpa/checkpoints/align")
    ap.add_argument("--metrics", default="metrics/train_align.json")
    ap.add_argument("--front", default="plots/icpa_front.csv")
    ap.add_argument("--curves", default=None, help="folder for the per-epoch training curves (DVC plots)")
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
    ckpt = Checkpoints(args.checkpoints, params.checkpoint_every)
    if len(params.sources) == 1:
        console.print("[yellow]train_align: a single source — nothing to align; phase 1 reduces to SOO[/]")

    concepts = read_concepts(args.truth)
    if concepts is None:
        console.print(f"[yellow]train_align: no concepts truth ({args.truth}); alignment hit@k not computed[/]")
    res = align_phase1(data, params, ckpt, concepts=concepts, dist=dist, device=device, console=console)
    if dist is not None:
        ddp.shutdown()
        if not dist.is_main:
            return  # rank 0 writes every output

    front = pl.DataFrame(res.log) if res.log else pl.DataFrame({"step": [], "epoch": []})
    with atomic_dir(args.out) as out, atomic_dir(args.embeddings) as emb_dir:
        for name, model in res.models.items():
            save_checkpoint(model_payload(model, {"run": name, "sources": params.sources}), out / name)
        front.write_csv(out / "losses.csv")
        if res.sweep:
            pl.DataFrame(res.sweep).write_csv(out / "beta_sweep.csv")
        for s in params.sources:
            embeddings_frame(res.embeddings[s], data.item_ids[s]).write_parquet(emb_dir / f"{s}.parquet")
    front_path = Path(args.front)
    write_atomic(front_path, lambda tmp: front.write_csv(tmp))
    png = png_bytes(front_figure(front, params.sources))
    write_atomic(front_path.with_suffix(".png"), lambda tmp: tmp.write_bytes(png))
    if args.curves:
        with atomic_dir(args.curves) as curves_dir:
            for name, rows in res.curves.items():
                (curves_dir / f"{name}.csv").write_text(curve_csv(rows))
            fig = curves_figure(res.curves, title="ICPA phase 1: per-epoch training losses (first seed)")
            (curves_dir / "curves.png").write_bytes(png_bytes(fig))
    metrics = flatten(res.metrics)
    if concepts is None:
        metrics.update(no_truth_metrics(args.truth, params.eval_config.hit_ks, "icpa_phase1."))
    write_json(args.metrics, metrics)
    ckpt.clear()
    hit = res.metrics["icpa_phase1"].get("hit@10")
    console.print(f"train_align: {len(res.models)} phase-1 model(s) in {res.metrics['seconds']:.1f}s -> {args.out}; "
                  f"embeddings -> {args.embeddings}" + (f"; alignment hit@10 {hit:.3f}" if hit is not None else ""))


if __name__ == "__main__":
    run("train_align", main)
