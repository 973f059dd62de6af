"""Stage ``icpa_eval``: the target-independent baselines and the ICPA results table (§2.9–2.11).

Trains the joint baselines of ``icpa.methods`` (*Base*: all sources, equal weights, no
alignment; *MMoE*: Base with an MMoE tower), evaluates them and the phase-1 models on every
source, collects the per-target results of ``pareto_finetune`` and writes:

    --metrics (metrics/icpa.json)    flat: <source>.<method>.ndcg@10 / f@10, per-source
                                     negative-transfer flags vs SOO, the verdict, alignment hit@k
    --plot (plots/icpa_ndcg_at_k.csv + .png)   NDCG@k vs k (macro over sources and per source)
    --out/                           base.pt, mmoe.pt, table.csv (every metric), transfer.csv

Reference rows ``popularity`` and ``cooccurrence`` (non-learned rankers under the same protocol)
put the learned numbers in context; they are not ICPA methods.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402

from crossmatch.errors import InputError  # noqa: E402
from crossmatch.icpa import build_model, heldout_truth, model_from_payload, model_payload  # noqa: E402
from crossmatch.icpa.methods import JOINT, LABELS, single_config  # noqa: E402
from crossmatch.icpa.reference import reference_topk  # noqa: E402
from crossmatch.metrics.ranking import ranking_metrics  # noqa: E402
from crossmatch.metrics.transfer import transfer_table, verdict  # noqa: E402
from stages._common import atomic_dir, console, run, write_atomic, write_json  # noqa: E402
from stages._icpa import (  # noqa: E402
    Checkpoints,
    Data,
    EvalParams,
    alignment_accuracy,
    code_hash,
    evaluate_source,
    fingerprint,
    flatten,
    load_data,
    load_params,
    params_snapshot,
    read_concepts,
    source_embeddings,
    train_run,
)

REFERENCES = ("popularity", "cooccurrence")
PHASE1 = ("icpa_phase1", "wo_align_phase1")


def evaluate_reference(data: Data, source: str, kind: str, cfg: EvalParams) -> dict[str, Any]:
    g = data.graph.sources[data.graph.index(source)]
    truth = heldout_truth(data.heldout[source], g, cfg.exclude_history)
    out: dict[str, Any] = {"users": int(truth["users"].size)}
    if truth["users"].size:
        top = reference_topk(g, truth["users"], max(cfg.ks), kind, exclude_history=cfg.exclude_history)
        weights = truth["events"] if cfg.user_weighting == "frequency" else None
        for k, vals in ranking_metrics(top, truth["indptr"], truth["items"], cfg.ks, weights).items():
            out[str(k)] = vals
    return out


def plot_ndcg(frame: pl.DataFrame, sources: list[str], methods: list[str], path: Path) -> None:
    fig, axes = plt.subplots(1, len(sources) + 1, figsize=(4 * (len(sources) + 1), 3.6), sharey=False)
    panels = [("macro mean over sources", None)] + [(s, s) for s in sources]
    colours = plt.get_cmap("tab20").colors  # more series than the default 10-colour cycle
    for ax, (title, s) in zip(axes, panels, strict=True):
        for i, m in enumerate(methods):
            col = m if s is None else f"{m}.{s}"
            if col in frame.columns:
                style = "--" if m in REFERENCES else "-"
                ax.plot(frame["k"], frame[col], style, marker="o", ms=3, color=colours[(2 * i) % 20 + (i >= 10)],
                        label=LABELS.get(m, m))
        ax.set_title(title)
        ax.set_xlabel("k")
        ax.set_xscale("log")
    axes[0].set_ylabel("NDCG@k")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.icpa_eval", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--ingested", default="data/ingested")
    ap.add_argument("--edges", default="data/edges")
    ap.add_argument("--truth", default="data/truth/concepts.parquet", help="hidden correspondences (optional)")
    ap.add_argument("--align", default="data/icpa/align")
    ap.add_argument("--finetune", default="data/icpa/finetune")
    ap.add_argument("--out", default="data/icpa/eval")
    ap.add_argument("--checkpoints", default="data/icpa/checkpoints/eval")
    ap.add_argument("--metrics", default="metrics/icpa.json")
    ap.add_argument("--plot", default="plots/icpa_ndcg_at_k.csv")
    args = ap.parse_args()

    params = load_params(args.params)
    cfg = params.eval_config
    data = load_data(args.ingested, args.edges, params.sources)
    concepts = read_concepts(args.truth)
    schedule = params.schedule_config
    ckpt = Checkpoints(args.checkpoints, params.checkpoint_every)
    tag_base = [params_snapshot(params), data.signature, code_hash()]
    t0 = time.perf_counter()

    # Target-independent models: the joint baselines (trained here) and the phase-1 models.
    models: dict[str, Any] = {}
    for method in (m for m in JOINT if m in params.methods):
        mcfg = params.model_config
        if method == "mmoe":
            mcfg = dataclasses.replace(mcfg, tower="mmoe")
        model = build_model(data.graph.schemas, len(data.graph.categories), mcfg, params.seed)
        trainer = train_run(method, model, data, single_config(method, None, schedule), params, ckpt,
                            tag=fingerprint(*tag_base, method))
        models[method] = trainer.model
    trained = dict(models)
    for name in PHASE1:
        path = Path(args.align) / f"{name}.pt"
        if path.exists():
            models[name] = model_from_payload(torch.load(path, map_location="cpu", weights_only=False))
        elif name == "icpa_phase1":
            raise InputError("phase-1 model not found; run train_align first", file=str(path))

    # results[source][method] = {"users": n, "<k>": {ndcg, f, precision, recall}}
    results: dict[str, dict[str, Any]] = {s: {} for s in params.sources}
    for s in params.sources:
        for name, model in models.items():
            results[s][name] = evaluate_source(model, data, s, cfg)
        for kind in REFERENCES:
            results[s][kind] = evaluate_reference(data, s, kind, cfg)
        ft = Path(args.finetune) / s / "metrics.json"
        if not ft.exists():
            raise InputError(f"per-target results of source {s!r} not found; run pareto_finetune@{s} first",
                             file=str(ft))
        results[s].update(json.loads(ft.read_text())["methods"])

    order = [m for m in ("icpa", "soo", "base", "mmoe", "wo_align", "wo_pareto", "wo_front") if m in params.methods]
    order += [m for m in PHASE1 if m in models] + list(REFERENCES)
    rows = [{"source": s, "method": m, "k": int(k), **v}
            for s in params.sources for m in order if m in results[s]
            for k, v in results[s][m].items() if k != "users"]
    table = pl.DataFrame(rows)

    ndcg10 = {s: {m: results[s][m]["10"]["ndcg"] for m in order if m in results[s]} for s in params.sources}
    f10 = {s: {m: results[s][m]["10"]["f"] for m in order if m in results[s]} for s in params.sources}
    compared = [m for m in ("icpa", "base", "mmoe", "wo_align", "wo_pareto", "wo_front") if m in params.methods]
    transfer = transfer_table(ndcg10, compared) if "soo" in params.methods else []
    verdicts = {m: verdict(transfer, m) for m in compared} if transfer else {}

    hits = {}
    for name in ("icpa_phase1", "wo_align_phase1", "base", "mmoe"):
        if name in models:
            acc = alignment_accuracy(source_embeddings(models[name], data), data, concepts, cfg.hit_ks)
            hits[name] = {k: v for k, v in acc.items() if k != "pairs"}

    metrics: dict[str, Any] = {"sources": params.sources, "seconds": time.perf_counter() - t0}
    for s in params.sources:
        metrics[s] = {m: {"ndcg@10": ndcg10[s][m], "f@10": f10[s][m]} for m in order if m in ndcg10[s]}
        metrics[s]["users"] = results[s][order[0]]["users"]
        for r in transfer:
            if r["source"] == s:
                metrics[s][r["method"]]["negative_transfer"] = r["negative_transfer"]
                metrics[s][r["method"]]["delta_vs_soo"] = r["delta"]
    for m, v in verdicts.items():
        metrics.setdefault("negative_transfer", {})[m] = {"sources": v["negative_sources"] or "none",
                                                         "n_negative": len(v["negative_sources"]),
                                                         "verdict": v["text"]}
    metrics["alignment"] = hits
    for m in order:
        vals = [ndcg10[s][m] for s in params.sources if m in ndcg10[s]]
        fvals = [f10[s][m] for s in params.sources if m in f10[s]]
        if vals:
            metrics.setdefault("mean", {})[m] = {"ndcg@10": sum(vals) / len(vals), "f@10": sum(fvals) / len(fvals)}

    curve = {"k": list(cfg.ks)}
    for m in order:
        per = [[results[s][m][str(k)]["ndcg"] for k in cfg.ks] for s in params.sources if m in results[s]]
        if not per:
            continue
        curve[m] = [sum(col) / len(col) for col in zip(*per, strict=True)]
        for s in params.sources:
            if m in results[s]:
                curve[f"{m}.{s}"] = [results[s][m][str(k)]["ndcg"] for k in cfg.ks]
    curve_frame = pl.DataFrame(curve)

    with atomic_dir(args.out) as out:
        for name, model in trained.items():
            torch.save(model_payload(model, {"run": name, "sources": params.sources}), out / f"{name}.pt")
        table.write_csv(out / "table.csv")
        pl.DataFrame(transfer or {"source": []}).write_csv(out / "transfer.csv")
    plot_path = Path(args.plot)
    write_atomic(plot_path, lambda tmp: curve_frame.write_csv(tmp))
    plot_ndcg(curve_frame, params.sources, order, plot_path.with_suffix(".png"))
    write_json(args.metrics, flatten(metrics))
    ckpt.clear()

    console.print("icpa_eval: NDCG@10 / F@10 per source")
    for s in params.sources:
        console.print(f"  {s:>8}: " + "  ".join(f"{LABELS.get(m, m)} {ndcg10[s][m]:.4f}/{f10[s][m]:.4f}"
                                               for m in order if m in ndcg10[s]), highlight=False)
    for v in verdicts.values():
        console.print(f"  {v['text']}", highlight=False)
    console.print(f"icpa_eval: done in {metrics['seconds']:.1f}s -> {args.metrics}")


if __name__ == "__main__":
    run("icpa_eval", main)
