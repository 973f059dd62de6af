"""The ICPA results table (§2.9–2.11, issue 10): every method on every source under one protocol.

:func:`icpa_table` trains the target-independent baselines of ``icpa.methods`` (*Base*, *MMoE*, *GraphSAGE*,
*M2GRL*: all sources, one model; *DGI*: per source, with the joint models' step budget) once per seed,
evaluates them and the phase-1 models on every source, adds the per-target results of ``pareto_finetune``, and
evaluates under the same protocol (settings chosen on validation, test reported):

* the non-learned rankers popularity, co-occurrence, item-kNN and EASE, each at its best validation setting;
* the hybrids ``<method>+<ranker>`` of ``icpa.eval.hybrid_methods`` × ``hybrid_rankers`` (mixing weight
  chosen on validation per source and seed);
* paired-bootstrap verdicts on test: every multi-source method vs SOO (negative transfer only when the 95 %
  interval lies below 0), every method vs the best ranker, ``icpa+R`` vs ``soo+R``.

The result holds the nested metrics (mean ± std over seeds, verdicts, settings, alignment hit@k), the long
table of every metric, seed and split, the verdicts, and the test NDCG@k curve per method.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch
from rich.console import Console

from crossmatch.icpa.comparison import paired_verdicts, seed_summary, tune_hybrid, tune_rankers
from crossmatch.icpa.data import Data
from crossmatch.icpa.dgi import train_dgi
from crossmatch.icpa.inference import learned_scorer
from crossmatch.icpa.methods import JOINT, LABELS, single_config
from crossmatch.icpa.model import ICPAModel
from crossmatch.icpa.params import EvalParams, ICPAParams, seed_file
from crossmatch.icpa.phases import run_tag
from crossmatch.icpa.report import alignment_accuracy, evaluate_source, source_embeddings, strip_per_user
from crossmatch.icpa.retrieval import embedding_scorer
from crossmatch.icpa.runs import CONSOLE, CheckpointStore, fingerprint, train_run
from crossmatch.icpa.train import build_model, epoch_steps, resolve_device

RANKER_METHODS = ("popularity", "cooccurrence", "itemknn", "ease")
PHASE1 = ("icpa_phase1", "wo_align_phase1")
LEARNED_ORDER = ("icpa", "soo", "base", "mmoe", "wo_align", "wo_pareto", "wo_front", "gsage", "m2grl", "dgi")

# Per-target runs of one source as pareto_finetune wrote them: method -> per seed (the JSON result
# without per-user arrays, the per-user test NDCG@10).
FinetunedRuns = Mapping[str, Sequence[tuple[dict[str, Any], np.ndarray]]]


@dataclass
class TableResult:
    metrics: dict[str, Any]  # nested: per source and method, verdicts, negative transfer, alignment, mean, settings
    table: pl.DataFrame  # source, method, seed, split, k, ndcg, f, precision, recall
    transfer: pl.DataFrame  # key, delta, lo, hi, verdict, ... (one row per paired comparison)
    curve: pl.DataFrame  # k, <method>, <method>.<source>: test NDCG@k, mean over seeds (and sources)
    summary: dict[str, dict[str, dict[str, float]]]  # source -> method -> seed_summary
    order: list[str]  # methods in report order
    models: dict[str, ICPAModel]  # file name -> target-independent model (Base, MMoE, ...)

    def lines(self) -> list[str]:
        """Test NDCG@10 per source (mean ± std over seeds) and the negative-transfer verdicts."""
        out = []
        for s in self.metrics["sources"]:
            out.append(f"  {s:>8}: " + "  ".join(f"{LABELS.get(m, m)} {self.summary[s][m]['ndcg@10']:.4f}"
                                                 f"±{self.summary[s][m]['ndcg@10_std']:.4f}"
                                                 for m in self.order if m in self.summary[s]))
        return out + [f"  {v['verdict']}" for v in self.metrics.get("negative_transfer", {}).values()]


class _Runs:
    """Per source and method: every seed's result (for JSON) and its per-user test NDCG@10."""

    def __init__(self, sources: Sequence[str]) -> None:
        self.runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in sources}
        self.arrays: dict[str, dict[str, list[np.ndarray]]] = {s: {} for s in sources}

    def record(self, s: str, m: str, res: dict[str, Any], extra: dict[str, Any]) -> None:
        self.add(s, m, {**strip_per_user(res), **extra}, res["test"]["per_user"]["10"]["ndcg"])

    def add(self, s: str, m: str, stripped: dict[str, Any], per_user: np.ndarray) -> None:
        self.runs[s].setdefault(m, []).append(stripped)
        self.arrays[s].setdefault(m, []).append(per_user)


def _joint(data: Data, params: ICPAParams, checkpoints: CheckpointStore | None, rec: _Runs,
           phase1: Callable[[str, int], ICPAModel | None], console: Console) -> tuple[dict[tuple[str, int], ICPAModel],
                                                                                     dict[str, ICPAModel]]:
    """Per seed: the joint baselines trained and evaluated, DGI per source, the phase-1 models evaluated."""
    cfg, schedule = params.eval_config, params.schedule_config
    first = params.seed_list[0]
    models: dict[tuple[str, int], ICPAModel] = {}  # (method, seed) -> target-independent model
    saved: dict[str, ICPAModel] = {}
    for seed in params.seed_list:
        sp_ = dataclasses.replace(params, seed=seed)
        for method in (m for m in JOINT if m in params.methods):
            mcfg = params.model_config
            if method == "mmoe":
                mcfg = dataclasses.replace(mcfg, tower="mmoe")
            if method == "gsage":
                mcfg = dataclasses.replace(mcfg, shared_tower=True)
            t1 = time.perf_counter()
            model = build_model(data.graph.schemas, len(data.graph.categories), mcfg, seed)
            trainer = train_run(f"{method}#{seed}", model, data, single_config(method, None, schedule), sp_,
                                checkpoints, tag=fingerprint(*run_tag(params, data), method, seed), console=console)
            models[(method, seed)] = saved[seed_file(method, seed, first)] = trainer.model
            secs = time.perf_counter() - t1
            for s in params.sources:
                rec.record(s, method, evaluate_source(trainer.model, data, s, cfg),
                           {"steps": trainer.step, "seconds": secs})
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
                rec.record(s, "dgi", data.evaluator(s, cfg).all(scorer),
                           {"steps": budget, "seconds": time.perf_counter() - t1})
        for name in PHASE1:
            loaded = phase1(name, seed)
            if loaded is not None:
                models[(name, seed)] = loaded
                for s in params.sources:
                    rec.record(s, name, evaluate_source(loaded, data, s, cfg), {})
    return models, saved


def _per_target(data: Data, params: ICPAParams, s: str, finetuned: FinetunedRuns, rec: _Runs,
                learned: Callable[[str, int], ICPAModel], settings: dict[str, Any]) -> None:
    """One source: pareto_finetune's runs, the rankers at their best validation setting, the hybrids."""
    cfg = params.eval_config
    for method, per_seed in finetuned.items():
        for stripped, per_user in per_seed:
            rec.add(s, method, stripped, per_user)
    evaluator = data.evaluator(s, cfg)
    j = data.graph.index(s)
    n = data.graph.sources[j].schema.n_items
    ii = data.item_item[s]
    C = sp.csr_matrix((ii.get_column("weight").to_numpy().astype(np.float64),
                       (ii.get_column("src").to_numpy(), ii.get_column("dst").to_numpy())), shape=(n, n))
    t1 = time.perf_counter()
    rankers = tune_rankers(evaluator, train=evaluator.splits["valid"].history, cooccurrence=C,
                           ease_lambdas=cfg.ease_lambdas, knn_ks=cfg.knn_ks, kinds=cfg.rankers)
    for kind, r in rankers.items():  # non-learned: deterministic, one run
        rec.record(s, kind, r["result"], {"steps": 0, "seconds": (time.perf_counter() - t1) / len(rankers)})
        settings[f"{s}.{kind}.setting"] = r["setting"] if r["setting"] is not None else "none"
    for method in (m for m in cfg.hybrid_methods if m in params.methods):
        for kind in cfg.hybrid_rankers:
            name = f"{method}+{kind}"
            for seed in params.seed_list:
                scorer = learned_scorer(learned(method, seed), data.graph.sources[j], j, score=cfg.score,
                                        retrieval=cfg.retrieval, knn_k=cfg.knn_k)
                hyb = tune_hybrid(evaluator, scorer, rankers[kind]["scorer"], cfg.hybrid_weights)
                rec.record(s, name, hyb["result"], {"weight": hyb["weight"]})
                settings[f"{s}.{name}.weight.{seed}"] = hyb["weight"]


def _verdicts(params: ICPAParams, rec: _Runs, summary: dict[str, dict[str, Any]], order: list[str],
              compared: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """Paired bootstrap on test per source: vs SOO, vs the best ranker (on validation), icpa+R vs soo+R."""
    cfg = params.eval_config
    verdicts: dict[str, Any] = {}
    for s in params.sources:
        best_ranker = max((k for k in RANKER_METHODS[1:] if k in summary[s]),
                          key=lambda k: summary[s][k]["valid_ndcg@10"])
        settings[f"{s}.best_ranker"] = best_ranker
        pairs = [(m, "soo") for m in compared if "soo" in params.methods]
        pairs += [(m, best_ranker) for m in order if m not in RANKER_METHODS]
        pairs += [(f"{m}+{k}", f"soo+{k}") for m in cfg.hybrid_methods if m != "soo" for k in cfg.hybrid_rankers]
        stacked = {m: np.stack(v) for m, v in rec.arrays[s].items()}
        for key, v in paired_verdicts(stacked, pairs, n_boot=cfg.bootstrap, seed=params.seed).items():
            if key.endswith(f"_vs_{best_ranker}"):
                key = key[:-len(best_ranker)] + "best_ranker"
            verdicts[f"{s}.{key}"] = v
    return verdicts


def _metrics(params: ICPAParams, rec: _Runs, summary: dict[str, dict[str, Any]], order: list[str],
             compared: list[str], verdicts: dict[str, Any]) -> dict[str, Any]:
    metrics: dict[str, Any] = {"sources": params.sources, "seeds": params.seed_list}
    for s in params.sources:
        metrics[s] = {m: dict(v) for m, v in summary[s].items()}
        metrics[s]["users"] = rec.runs[s][order[0]][0]["test"]["users"]
        metrics[s]["valid_users"] = rec.runs[s][order[0]][0]["valid"]["users"]
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
    for m in order:
        per = [summary[s][m] for s in params.sources if m in summary[s]]
        if per:
            metrics.setdefault("mean", {})[m] = {key: float(np.mean([p[key] for p in per]))
                                                 for key in ("ndcg@10", "f@10", "valid_ndcg@10", "valid_f@10")}
    return metrics


def _curve(sources: Sequence[str], runs: dict[str, dict[str, list[dict[str, Any]]]], order: list[str],
           ks: Sequence[int]) -> pl.DataFrame:
    """Test NDCG@k per method: mean over seeds and sources (``<method>``) and per source (``<method>.<source>``)."""
    curve: dict[str, list[float]] = {"k": list(ks)}
    for m in order:
        by_source = [[float(np.mean([r["test"][str(k)]["ndcg"] for r in runs[s][m]])) for k in ks]
                     for s in sources if m in runs[s]]
        if by_source:
            curve[m] = [float(np.mean(col)) for col in zip(*by_source, strict=True)]
            for s in sources:
                if m in runs[s]:
                    curve[f"{m}.{s}"] = [float(np.mean([r["test"][str(k)]["ndcg"] for r in runs[s][m]])) for k in ks]
    return pl.DataFrame(curve)


def _order(params: ICPAParams, cfg: EvalParams, rec: _Runs) -> list[str]:
    order = [m for m in LEARNED_ORDER if m in params.methods]
    order += [m for m in PHASE1 if m in rec.runs[params.sources[0]]]
    order += [f"{m}+{k}" for m in cfg.hybrid_methods if m in params.methods for k in cfg.hybrid_rankers]
    return order + list(RANKER_METHODS)


def icpa_table(data: Data, params: ICPAParams, checkpoints: CheckpointStore | None = None, *,
               phase1: Callable[[str, int], ICPAModel | None], finetuned: Mapping[str, FinetunedRuns],
               finetuned_model: Callable[[str, str, int], ICPAModel], concepts: pl.DataFrame | None = None,
               console: Console | None = None) -> TableResult:
    """The whole table; see the module doc.

    Args:
        phase1: ``(name, seed)`` → the phase-1 model (``icpa_phase1`` / ``wo_align_phase1``), ``None`` if absent.
        finetuned: per source, pareto_finetune's runs (:data:`FinetunedRuns`).
        finetuned_model: ``(source, method, seed)`` → pareto_finetune's model (hybrids of per-target methods).
        concepts: hidden correspondences ``source, item_id, concept`` for the alignment hit@k (optional).
    """
    console = console if console is not None else CONSOLE
    cfg = params.eval_config
    first = params.seed_list[0]
    t0 = time.perf_counter()
    rec = _Runs(params.sources)
    models, saved = _joint(data, params, checkpoints, rec, phase1, console)
    settings: dict[str, Any] = {}
    for s in params.sources:
        def learned(method: str, seed: int, s: str = s) -> ICPAModel:
            model = models.get((method, seed))
            return model if model is not None else finetuned_model(s, method, seed)

        _per_target(data, params, s, finetuned[s], rec, learned, settings)

    order = _order(params, cfg, rec)
    summary = {s: {m: seed_summary(rec.runs[s][m]) for m in order if m in rec.runs[s]} for s in params.sources}
    compared = [m for m in LEARNED_ORDER if m != "soo" and m in params.methods]
    verdicts = _verdicts(params, rec, summary, order, compared, settings)
    metrics = _metrics(params, rec, summary, order, compared, verdicts)
    metrics["seconds"] = time.perf_counter() - t0
    hits = {}
    for name in ("icpa_phase1", "wo_align_phase1", "base", "mmoe", "gsage", "m2grl"):
        if (name, first) in models:
            acc = alignment_accuracy(source_embeddings(models[(name, first)], data), data, concepts, cfg.hit_ks)
            hits[name] = {k: v for k, v in acc.items() if k != "pairs"}
    metrics["alignment"] = hits
    metrics["settings"] = settings
    rows = [{"source": s, "method": m, "seed": seed_i, "split": split, "k": int(k), **v}
            for s in params.sources for m in order if m in rec.runs[s]
            for seed_i, r in enumerate(rec.runs[s][m]) for split in ("valid", "test")
            for k, v in r[split].items() if k != "users"]
    transfer = pl.DataFrame([{"key": k, **v} for k, v in verdicts.items()] or {"key": []})
    return TableResult(metrics, pl.DataFrame(rows), transfer, _curve(params.sources, rec.runs, order, cfg.ks),
                       summary, order, saved)
