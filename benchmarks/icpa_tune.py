"""Tune ICPA settings on the validation split only (issue 10): never on a figure that is reported.

Trains one joint model (Base by default, or ICPA phase 1) per variant of the ``icpa`` params
and prints validation NDCG@10 per source next to the best non-learned ranker's validation
figure. Test figures are never computed here.

    python -m benchmarks.icpa_tune --params pipelines/real/params.yaml \\
        --ingested data/real/xmarket/ingested --edges data/real/xmarket/edges \\
        --variant 'd8:' --variant 'd64:model.embedding_dim=64;model.hidden=[256,256,128]'
    # EASE with and without its negative weights (validation): --ease-clip (no --variant: nothing is trained)

A variant is ``name:key=value;key=value`` with dotted keys under ``icpa`` and YAML values.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from typing import Any

import numpy as np
import yaml

from crossmatch.icpa import build_model
from crossmatch.icpa.comparison import Evaluator, tune_rankers
from crossmatch.icpa.methods import phase1_config, single_config
from stages._common import load_section, params_as, run
from stages._icpa import Checkpoints, ICPAParams, evaluate_source, load_data, train_run


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, body = text.partition(":")
    sets = {}
    for part in filter(None, (p.strip() for p in body.split(";"))):
        key, _, value = part.partition("=")
        sets[key.strip()] = yaml.safe_load(value)
    return name, sets


def apply(section: dict[str, Any], sets: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(section)
    for key, value in sets.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.icpa_tune", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--ingested", default="data/ingested")
    ap.add_argument("--edges", default="data/edges")
    ap.add_argument("--method", default="base", choices=["base", "icpa_phase1"])
    ap.add_argument("--variant", action="append", default=[], help="name:key=value;key=value (repeatable)")
    ap.add_argument("--rankers", action="store_true", help="also print the tuned rankers' validation NDCG@10")
    ap.add_argument("--ease-clip", action="store_true",
                    help="also EASE with its negative weights set to 0, per lambda of icpa.eval.ease_lambdas (validation)")
    args = ap.parse_args()

    section = load_section("icpa", args.params)
    base_params = params_as(ICPAParams, section, "icpa")
    data = load_data(args.ingested, args.edges, base_params.sources)
    cfg = base_params.eval_config
    if args.rankers:
        import scipy.sparse as sp
        for s in base_params.sources:
            n = data.graph.sources[data.graph.index(s)].schema.n_items
            ii = data.item_item[s]
            C = sp.csr_matrix((ii["weight"].to_numpy().astype(float), (ii["src"].to_numpy(), ii["dst"].to_numpy())),
                              shape=(n, n))
            valid_only = Evaluator({"valid": data.evaluator(s, cfg).splits["valid"]}, cfg.ks)
            out = tune_rankers(valid_only, train=valid_only.splits["valid"].history, cooccurrence=C,
                               ease_lambdas=cfg.ease_lambdas, knn_ks=cfg.knn_ks)
            print(f"rankers {s}: " + "  ".join(f"{k} {v['result']['valid']['10']['ndcg']:.4f} ({v['setting']})"
                                               for k, v in out.items()), flush=True)
    if args.ease_clip:
        from crossmatch.icpa.evaluate import matrix_scorer
        from crossmatch.icpa.rankers import ease_matrix, popularity_vector
        rows: dict[str, list[float]] = {}
        for s in base_params.sources:
            valid_only = Evaluator({"valid": data.evaluator(s, cfg).splits["valid"]}, cfg.ks)
            H = valid_only.splits["valid"].history
            pop = popularity_vector(H).astype(float)
            for lam in cfg.ease_lambdas:
                B = ease_matrix(H, float(lam))
                for tag, M in ((f"ease {lam:g}", B), (f"ease+ {lam:g}", np.maximum(B, 0.0))):
                    rows.setdefault(tag, []).append(valid_only.validation(matrix_scorer(M, tie_break=pop)))
        for tag, vals in rows.items():
            print(f"{tag}: valid NDCG@10 mean {np.mean(vals):.4f} | " + "  ".join(
                f"{s} {v:.4f}" for s, v in zip(base_params.sources, vals, strict=True)), flush=True)
        if not args.variant:
            return
    for text in args.variant or [":"]:
        name, sets = parse_variant(text)
        params = params_as(ICPAParams, apply(section, sets), "icpa")
        params.check()
        schedule = params.schedule_config
        t0 = time.perf_counter()
        model = build_model(data.graph.schemas, len(data.graph.categories), params.model_config, params.seed)
        phase = (single_config("base", None, schedule) if args.method == "base"
                 else phase1_config(schedule, align=True))
        trainer = train_run(f"{name or 'default'}", model, data, phase, params, Checkpoints(None), tag="")
        per_source = {s: evaluate_source(trainer.model, data, s, dataclasses.replace(params.eval_config))["valid"]["10"]["ndcg"]
                      for s in params.sources}
        print(f"variant {name or 'default'} {sets}: valid NDCG@10 mean {np.mean(list(per_source.values())):.4f} | "
              + "  ".join(f"{s} {v:.4f}" for s, v in per_source.items())
              + f" | {trainer.step} steps, {time.perf_counter() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    run("icpa_tune", main)  # bad input or params: one short line and exit 2, no traceback
