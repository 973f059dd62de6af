"""Stage ``icpa_eval``: the target-independent baselines and the ICPA results table (§2.9–2.11).

Trains the joint baselines of ``icpa.methods`` (*Base*: all sources, equal weights, no
alignment; *MMoE*: Base with an MMoE tower), evaluates them and the phase-1 models on every
source (once per seed of ``icpa.seeds``), collects the per-target results of ``pareto_finetune``,
and evaluates under the same protocol (issue 10: settings chosen on validation, test reported):

* the non-learned rankers popularity, co-occurrence, item-kNN and EASE (each at its best
  validation setting; ``crossmatch.icpa.rankers``);
* the hybrids ``<method>+<ranker>`` of ``icpa.eval.hybrid_methods`` × ``hybrid_rankers`` (a
  learned correction on top of the ranker, mixing weight chosen on validation);
* paired-bootstrap verdicts on test: every multi-source method vs SOO (negative transfer only
  when the 95 % interval lies below 0), every method vs the best ranker, ``icpa+R`` vs ``soo+R``.

Writes:
    --metrics (metrics/icpa.json)    flat: <source>.<method>.{ndcg@10, f@10} (test, mean over seeds),
                                     *_std, valid_*, steps, seconds; verdicts; settings; alignment hit@k
    --plot (plots/icpa_ndcg_at_k.csv + .png; <stem>_bars.png)  test NDCG@k vs k; NDCG@10 bars ± std
    --out/                           base.pt, mmoe.pt (+ .seed<k>.pt), table.csv (every metric, seed
                                     and split), transfer.csv (the verdicts)

Size (over the 150-line aim): the protocol is in the library (crossmatch.icpa.evaluate / .comparison /
.rankers / .sampled); what stays here is the per-seed orchestration of many methods and the metrics
layout. Moving the latter into the library is open (issue 15).
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
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

from crossmatch.checkpoint import save_checkpoint  # noqa: E402
from crossmatch.errors import InputError  # noqa: E402
from crossmatch.icpa import build_model, model_payload  # noqa: E402
from crossmatch.icpa.comparison import (  # noqa: E402
    paired_verdicts,
    seed_summary,
    tune_hybrid,
    tune_rankers,
)
from crossmatch.icpa.dgi import train_dgi  # noqa: E402
from crossmatch.icpa.inference import learned_scorer  # noqa: E402
from crossmatch.icpa.methods import JOINT, LABELS, single_config  # noqa: E402
from crossmatch.icpa.retrieval import embedding_scorer  # noqa: E402
from crossmatch.icpa.train import epoch_steps, resolve_device  # noqa: E402
from stages._common import atomic_dir, console, run, write_atomic, write_json  # noqa: E402
from stages._icpa import (  # noqa: E402
    Checkpoints,
    alignment_accuracy,
    code_hash,
    evaluate_source,
    fingerprint,
    flatten,
    load_data,
    load_model,
    load_params,
    params_snapshot,
    read_concepts,
    seed_file,
    source_embeddings,
    strip_per_user,
    train_run,
)

RANKER_METHODS = ("popularity", "cooccurrence", "itemknn", "ease")
PHASE1 = ("icpa_phase1", "wo_align_phase1")
LEARNED_ORDER = ("icpa", "soo", "base", "mmoe", "wo_align", "wo_pareto", "wo_front", "gsage", "m2grl", "dgi")


def plot_ndcg(frame: pl.DataFrame, sources: list[str], methods: list[str], path: Path) -> None:
    fig, axes = plt.subplots(1, len(sources) + 1, figsize=(4 * (len(sources) + 1), 3.6), sharey=False)
    panels = [("macro mean over sources", None)] + [(s, s) for s in sources]
    colours = plt.get_cmap("tab20").colors  # type: ignore[attr-defined]  # more series than the default cycle
    for ax, (title, s) in zip(axes, panels, strict=True):
        for i, m in enumerate(methods):
            col = m if s is None else f"{m}.{s}"
            if col in frame.columns:
                style = "--" if m in RANKER_METHODS else "-"
                ax.plot(frame["k"], frame[col], style, marker="o", ms=3, color=colours[(2 * i) % 20 + (i >= 10)],
                        label=LABELS.get(m, m))
        ax.set_title(title)
        ax.set_xlabel("k")
        ax.set_xscale("log")
    axes[0].set_ylabel("NDCG@k (test)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def plot_bars(summary: dict[str, dict[str, dict[str, float]]], sources: list[str], methods: list[str],
              path: Path) -> None:
    """Test NDCG@10 per source, mean ± std over seeds (error bars)."""
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(sources) * len(methods) / 4), 4))
    width = 0.8 / max(len(methods), 1)
    colours = plt.get_cmap("tab20").colors  # type: ignore[attr-defined]
    for i, m in enumerate(methods):
        xs = [si + i * width for si in range(len(sources))]
        ys = [summary[s].get(m, {}).get("ndcg@10", float("nan")) for s in sources]
        es = [summary[s].get(m, {}).get("ndcg@10_std", 0.0) for s in sources]
        ax.bar(xs, ys, width, yerr=es, capsize=2, color=colours[i % 20], label=LABELS.get(m, m),
               hatch="//" if m in RANKER_METHODS else None)
    ax.set_xticks([si + 0.4 - width / 2 for si in range(len(sources))], sources)
    ax.set_ylabel("NDCG@10 (test, mean ± std over seeds)")
    ax.legend(fontsize=7, ncol=4)
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
    seeds, first = params.seed_list, params.seed_list[0]
    t0 = time.perf_counter()

    # runs[source][method] = [per-seed result]; arrays[source][method] = [seeds, users] test NDCG@10
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in params.sources}
    arrays: dict[str, dict[str, list[np.ndarray]]] = {s: {} for s in params.sources}
    models: dict[tuple[str, int], Any] = {}  # (method, seed) -> target-independent model
    saved: dict[str, Any] = {}

    def record(s: str, m: str, res: dict[str, Any], extra: dict[str, Any]) -> None:
        runs[s].setdefault(m, []).append({**strip_per_user(res), **extra})
        arrays[s].setdefault(m, []).append(res["test"]["per_user"]["10"]["ndcg"])

    for seed in seeds:
        sp_ = dataclasses.replace(params, seed=seed)
        for method in (m for m in JOINT if m in params.methods):
            mcfg = params.model_config
            if method == "mmoe":
                mcfg = dataclasses.replace(mcfg, tower="mmoe")
            if method == "gsage":
                mcfg = dataclasses.replace(mcfg, shared_tower=True)
            t1 = time.perf_counter()
            model = build_model(data.graph.schemas, len(data.graph.categories), mcfg, seed)
            trainer = train_run(f"{method}#{seed}", model, data, single_config(method, None, schedule), sp_, ckpt,
                                tag=fingerprint(*tag_base, method, seed))
            models[(method, seed)] = saved[seed_file(method, seed, first)] = trainer.model
            secs = time.perf_counter() - t1
            for s in params.sources:
                record(s, method, evaluate_source(trainer.model, data, s, cfg), {"steps": trainer.step, "seconds": secs})
        if "dgi" in params.methods:  # per source, with the joint models' step budget
            budget = schedule.total_epochs * epoch_steps(data.graph, list(range(len(params.sources))),
                                                         params.pair_config)
            for s in params.sources:
                t1 = time.perf_counter()
                ii = data.item_item[s]
                z, _ = train_dgi(ii.get_column("src").to_numpy(), ii.get_column("dst").to_numpy(),
                                 data.graph.sources[data.graph.index(s)].schema.n_items, steps=budget, seed=seed,
                                 device=resolve_device(params.device))
                zt = torch.as_tensor(z)
                scorer = embedding_scorer(zt, zt, retrieval=cfg.retrieval, score=cfg.score,
                                          gamma=params.model_config.gamma, knn_k=cfg.knn_k)
                record(s, "dgi", data.evaluator(s, cfg).all(scorer),
                       {"steps": budget, "seconds": time.perf_counter() - t1})
        for name in PHASE1:
            path = Path(args.align) / seed_file(name, seed, first)
            if path.exists():
                models[(name, seed)] = load_model(path)
                for s in params.sources:
                    record(s, name, evaluate_source(models[(name, seed)], data, s, cfg), {})
            elif name == "icpa_phase1":
                raise InputError("phase-1 model not found; run train_align first", file=str(path))

    settings: dict[str, Any] = {}
    for s in params.sources:
        ft = Path(args.finetune) / s
        if not (ft / "metrics.json").exists() or not (ft / "per_user.npz").exists():
            raise InputError(f"per-target results of source {s!r} not found; run pareto_finetune@{s} first",
                             file=str(ft / "metrics.json"))
        blob = json.loads((ft / "metrics.json").read_text())
        if blob.get("seeds") != seeds:
            raise InputError(f"pareto_finetune@{s} ran seeds {blob.get('seeds')}, icpa.seeds gives {seeds}; "
                             "re-run it", file=str(ft / "metrics.json"))
        with np.load(ft / "per_user.npz") as npz:
            for method, per_seed in blob["methods"].items():
                for seed in seeds:
                    runs[s].setdefault(method, []).append(per_seed[str(seed)])
                    arrays[s].setdefault(method, []).append(npz[f"{method}/{seed}/test/ndcg@10"])
        # Non-learned rankers, each at its best validation setting (deterministic: one run).
        evaluator = data.evaluator(s, cfg)
        j = data.graph.index(s)
        n = data.graph.sources[j].schema.n_items
        ii = data.item_item[s]
        C = sp.csr_matrix((ii.get_column("weight").to_numpy().astype(np.float64),
                           (ii.get_column("src").to_numpy(), ii.get_column("dst").to_numpy())), shape=(n, n))
        t1 = time.perf_counter()
        rankers = tune_rankers(evaluator, train=evaluator.splits["valid"].history, cooccurrence=C,
                               ease_lambdas=cfg.ease_lambdas, knn_ks=cfg.knn_ks, kinds=cfg.rankers)
        for kind, r in rankers.items():
            record(s, kind, r["result"], {"steps": 0, "seconds": (time.perf_counter() - t1) / len(rankers)})
            settings[f"{s}.{kind}.setting"] = r["setting"] if r["setting"] is not None else "none"
        # Hybrids "<method>+<ranker>": a learned correction on top of the ranker, w chosen on validation.
        for method in (m for m in cfg.hybrid_methods if m in params.methods):
            for kind in cfg.hybrid_rankers:
                name = f"{method}+{kind}"
                for seed in seeds:
                    learned = models.get((method, seed))
                    if learned is None:
                        learned = load_model(ft / seed_file(method, seed, first))
                    hyb = tune_hybrid(evaluator, learned_scorer(learned, data.graph.sources[j], j, score=cfg.score,
                                                                retrieval=cfg.retrieval, knn_k=cfg.knn_k),
                                      rankers[kind]["scorer"],
                                      cfg.hybrid_weights)
                    record(s, name, hyb["result"], {"weight": hyb["weight"]})
                    settings[f"{s}.{name}.weight.{seed}"] = hyb["weight"]

    # Summaries: mean ± std over seeds; paired bootstrap verdicts on test.
    order = [m for m in LEARNED_ORDER if m in params.methods] + [m for m in PHASE1 if m in runs[params.sources[0]]]
    order += [f"{m}+{k}" for m in cfg.hybrid_methods if m in params.methods for k in cfg.hybrid_rankers]
    order += list(RANKER_METHODS)
    summary = {s: {m: seed_summary(runs[s][m]) for m in order if m in runs[s]} for s in params.sources}
    compared = [m for m in LEARNED_ORDER if m != "soo" and m in params.methods]
    verdicts: dict[str, Any] = {}
    for s in params.sources:
        best_ranker = max((k for k in RANKER_METHODS[1:] if k in summary[s]),
                          key=lambda k: summary[s][k]["valid_ndcg@10"])
        settings[f"{s}.best_ranker"] = best_ranker
        pairs = [(m, "soo") for m in compared if "soo" in params.methods]
        pairs += [(m, best_ranker) for m in order if m not in RANKER_METHODS]
        pairs += [(f"{m}+{k}", f"soo+{k}") for m in cfg.hybrid_methods if m != "soo" for k in cfg.hybrid_rankers]
        stacked = {m: np.stack(v) for m, v in arrays[s].items()}
        for key, v in paired_verdicts(stacked, pairs, n_boot=cfg.bootstrap, seed=params.seed).items():
            if key.endswith(f"_vs_{best_ranker}"):
                key = key[:-len(best_ranker)] + "best_ranker"
            verdicts[f"{s}.{key}"] = v

    metrics: dict[str, Any] = {"sources": params.sources, "seeds": seeds, "seconds": time.perf_counter() - t0}
    for s in params.sources:
        metrics[s] = {m: dict(v) for m, v in summary[s].items()}
        metrics[s]["users"] = runs[s][order[0]][0]["test"]["users"]
        metrics[s]["valid_users"] = runs[s][order[0]][0]["valid"]["users"]
        for m in compared:
            cmp = verdicts.get(f"{s}.{m}_vs_soo")
            if cmp:
                metrics[s][m].update({"negative_transfer": cmp["verdict"] == "negative", "delta_vs_soo": cmp["delta"],
                                      "vs_soo_lo": cmp["lo"], "vs_soo_hi": cmp["hi"], "vs_soo": cmp["verdict"]})
    metrics["verdicts"] = {k: {"delta": v["delta"], "lo": v["lo"], "hi": v["hi"], "verdict": v["verdict"]}
                           for k, v in verdicts.items()}
    for m in compared:
        neg = [s for s in params.sources if metrics[s][m].get("negative_transfer")]
        n_cmp = sum(1 for s in params.sources if "vs_soo" in metrics[s][m])
        if n_cmp:
            text = (f"{m}: significant negative transfer on {len(neg)}/{n_cmp} source(s): {', '.join(neg)}" if neg
                    else f"{m}: no significant negative transfer vs SOO on {n_cmp} sources (paired bootstrap, 95 %)")
            metrics.setdefault("negative_transfer", {})[m] = {"sources": ",".join(neg) or "none",
                                                             "n_negative": len(neg), "verdict": text}
    hits = {}
    for name in ("icpa_phase1", "wo_align_phase1", "base", "mmoe", "gsage", "m2grl"):
        if (name, first) in models:
            acc = alignment_accuracy(source_embeddings(models[(name, first)], data), data, concepts, cfg.hit_ks)
            hits[name] = {k: v for k, v in acc.items() if k != "pairs"}
    metrics["alignment"] = hits
    for m in order:
        per = [summary[s][m] for s in params.sources if m in summary[s]]
        if per:
            metrics.setdefault("mean", {})[m] = {key: float(np.mean([p[key] for p in per]))
                                                 for key in ("ndcg@10", "f@10", "valid_ndcg@10", "valid_f@10")}
    metrics["settings"] = settings

    rows = [{"source": s, "method": m, "seed": seed_i, "split": split, "k": int(k), **v}
            for s in params.sources for m in order if m in runs[s]
            for seed_i, r in enumerate(runs[s][m]) for split in ("valid", "test")
            for k, v in r[split].items() if k != "users"]
    table = pl.DataFrame(rows)
    curve: dict[str, list[float]] = {"k": list(cfg.ks)}
    for m in order:
        by_source = [[float(np.mean([r["test"][str(k)]["ndcg"] for r in runs[s][m]])) for k in cfg.ks]
                     for s in params.sources if m in runs[s]]
        if by_source:
            curve[m] = [float(np.mean(col)) for col in zip(*by_source, strict=True)]
            for s in params.sources:
                if m in runs[s]:
                    curve[f"{m}.{s}"] = [float(np.mean([r["test"][str(k)]["ndcg"] for r in runs[s][m]]))
                                         for k in cfg.ks]
    curve_frame = pl.DataFrame(curve)

    with atomic_dir(args.out) as out:
        for name, model in saved.items():
            save_checkpoint(model_payload(model, {"run": name, "sources": params.sources}), out / name)
        table.write_csv(out / "table.csv")
        pl.DataFrame([{"key": k, **v} for k, v in verdicts.items()] or {"key": []}).write_csv(out / "transfer.csv")
    plot_path = Path(args.plot)
    write_atomic(plot_path, lambda tmp: curve_frame.write_csv(tmp))
    plot_ndcg(curve_frame, params.sources, order, plot_path.with_suffix(".png"))
    plot_bars(summary, params.sources, [m for m in order if m not in PHASE1],
              plot_path.with_name(plot_path.stem + "_bars.png"))
    write_json(args.metrics, flatten(metrics))
    ckpt.clear()

    console.print(f"icpa_eval: test NDCG@10 (mean ± std over {len(seeds)} seed(s)) per source")
    for s in params.sources:
        console.print(f"  {s:>8}: " + "  ".join(f"{LABELS.get(m, m)} {summary[s][m]['ndcg@10']:.4f}"
                                               f"±{summary[s][m]['ndcg@10_std']:.4f}"
                                               for m in order if m in summary[s]), highlight=False)
    for v in metrics.get("negative_transfer", {}).values():
        console.print(f"  {v['verdict']}", highlight=False)
    console.print(f"icpa_eval: done in {metrics['seconds']:.1f}s -> {args.metrics}")


if __name__ == "__main__":
    run("icpa_eval", main)
