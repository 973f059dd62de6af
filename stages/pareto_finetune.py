"""Stage ``pareto_finetune``: ICPA phase 2 for one target source, plus its per-target baselines.

ALGORITHMS.md §2.6 phase 2 / §2.7: start from the phase-1 model, freeze its gates and its
alignment plans, and fine-tune with ParetoMTL weights for the preference ``(1, ε, …)`` of the
target. DVC runs it once per source (``foreach``). For the same target it also trains the
per-target comparisons of §2.10–2.11 that are in ``icpa.methods``
(:func:`crossmatch.icpa.phases.finetune_target`):

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
(per-step ParetoMTL weights of ICPA), a flat ``--metrics`` file and, with ``--curves``, the per-epoch
training curves of every method (first seed; ``<method>.csv`` and ``curves.png``, crossmatch.icpa.curves).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from crossmatch.checkpoint import load_checkpoint, save_checkpoint
from crossmatch.errors import ConfigError, InputError
from crossmatch.icpa import ICPAModel, model_from_payload, model_payload
from crossmatch.icpa.curves import curve_csv, curves_figure
from crossmatch.icpa.figures import png_bytes
from crossmatch.icpa.phases import finetune_target
from crossmatch.icpa.report import flatten
from stages._common import atomic_dir, console, run, split_timings, write_json
from stages._icpa import Checkpoints, load_data, load_params, seed_file


def load_phase1(align_dir: Path, name: str, sources: list[str]) -> ICPAModel:
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
    ap.add_argument("--curves", default=None, help="folder for the per-epoch training curves (DVC plots)")
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
    ckpt = Checkpoints(ckpt_dir, params.checkpoint_every)
    first = params.seed_list[0]

    def phase1(name: str, seed: int) -> ICPAModel:
        return load_phase1(Path(args.align), seed_file(name, seed, first), params.sources)

    res = finetune_target(data, params, target, phase1, ckpt, console=console)

    with atomic_dir(out_dir) as out:
        for name, model in res.models.items():
            save_checkpoint(model_payload(model, {"run": name, "target": target, "sources": params.sources}), out / name)
        # Wall-clock seconds differ on every run: kept out of this DVC-cached file (its hash would change)
        # and written with the stage metrics, whose timings go to the git-ignored timings/ folder.
        results, run_seconds = split_timings(res.results)
        (out / "metrics.json").write_text(json.dumps({"target": target, "seeds": params.seed_list,
                                                     "methods": results}, indent=2, sort_keys=True) + "\n")
        arrays: dict[str, Any] = res.per_user  # numpy's stub types **kwds as its own keywords
        np.savez_compressed(out / "per_user.npz", **arrays)
        if res.weights:
            pl.DataFrame(res.weights).write_csv(out / "weights.csv")
    write_json(metrics_path, {**flatten(res.metrics), "runs_seconds": run_seconds})
    if args.curves:
        with atomic_dir(args.curves) as curves_dir:
            for method, rows in res.curves.items():
                (curves_dir / f"{method}.csv").write_text(curve_csv(rows))
            fig = curves_figure(res.curves, title=f"ICPA fine-tune for {target}: per-epoch training losses")
            (curves_dir / "curves.png").write_bytes(png_bytes(fig))
    ckpt.clear()
    console.print(f"pareto_finetune@{target}: {len(res.models)} model(s) in {res.metrics['seconds']:.1f}s -> {out_dir}")


if __name__ == "__main__":
    run("pareto_finetune", main)
