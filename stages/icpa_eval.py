"""Stage ``icpa_eval``: the target-independent baselines and the ICPA results table (§2.9–2.11).

Trains the joint baselines of ``icpa.methods``, evaluates them and the phase-1 models on every
source (once per seed of ``icpa.seeds``), collects the per-target results of ``pareto_finetune``,
and adds the non-learned rankers, the hybrids and the paired-bootstrap verdicts under the same
protocol (issue 10; :func:`crossmatch.icpa.table.icpa_table`). Writes:

    --metrics (metrics/icpa.json)    flat: <source>.<method>.{ndcg@10, f@10} (test, mean over seeds),
                                     *_std, valid_*, steps, seconds; verdicts; settings; alignment hit@k
    --plot (plots/icpa_ndcg_at_k.csv + .png; <stem>_bars.png)  test NDCG@k vs k; NDCG@10 bars ± std
    --out/                           base.pt, mmoe.pt (+ .seed<k>.pt), table.csv (every metric, seed
                                     and split), transfer.csv (the verdicts)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from crossmatch.checkpoint import save_checkpoint
from crossmatch.errors import InputError
from crossmatch.icpa import ICPAModel, model_payload
from crossmatch.icpa.figures import bars_figure, ndcg_figure, png_bytes
from crossmatch.icpa.report import flatten
from crossmatch.icpa.table import PHASE1, FinetunedRuns, icpa_table
from stages._common import atomic_dir, console, run, write_atomic, write_json
from stages._icpa import (
    Checkpoints,
    ICPAParams,
    load_data,
    load_model,
    load_params,
    no_truth_metrics,
    read_concepts,
    seed_file,
)


def read_finetuned(folder: Path, params: ICPAParams) -> FinetunedRuns:
    """pareto_finetune's ``metrics.json`` and ``per_user.npz`` of one target, per method and seed."""
    if not (folder / "metrics.json").exists() or not (folder / "per_user.npz").exists():
        raise InputError(f"per-target results of source {folder.name!r} not found; run "
                         f"pareto_finetune@{folder.name} first", file=str(folder / "metrics.json"))
    blob = json.loads((folder / "metrics.json").read_text())
    seeds = params.seed_list
    if blob.get("seeds") != seeds:
        raise InputError(f"pareto_finetune@{folder.name} ran seeds {blob.get('seeds')}, icpa.seeds gives {seeds}; "
                         "re-run it", file=str(folder / "metrics.json"))
    with np.load(folder / "per_user.npz") as npz:
        return {method: [(per_seed[str(seed)], npz[f"{method}/{seed}/test/ndcg@10"]) for seed in seeds]
                for method, per_seed in blob["methods"].items()}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.icpa_eval", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--ingested", default="data/ingested")
    ap.add_argument("--edges", default="data/edges")
    ap.add_argument("--truth", default="data/truth/concepts.parquet",
                    help='hidden correspondences (optional: absent or "none" -> alignment hit@k null)')
    ap.add_argument("--align", default="data/icpa/align")
    ap.add_argument("--finetune", default="data/icpa/finetune")
    ap.add_argument("--out", default="data/icpa/eval")
    ap.add_argument("--checkpoints", default="data/icpa/checkpoints/eval")
    ap.add_argument("--metrics", default="metrics/icpa.json")
    ap.add_argument("--plot", default="plots/icpa_ndcg_at_k.csv")
    args = ap.parse_args()

    params = load_params(args.params)
    data = load_data(args.ingested, args.edges, params.sources)
    ckpt = Checkpoints(args.checkpoints, params.checkpoint_every)
    first = params.seed_list[0]
    align, ft = Path(args.align), Path(args.finetune)

    def phase1(name: str, seed: int) -> ICPAModel | None:
        path = align / seed_file(name, seed, first)
        if path.exists():
            return load_model(path)
        if name == "icpa_phase1":
            raise InputError("phase-1 model not found; run train_align first", file=str(path))
        return None

    def finetuned_model(source: str, method: str, seed: int) -> ICPAModel:
        return load_model(ft / source / seed_file(method, seed, first))

    finetuned = {s: read_finetuned(ft / s, params) for s in params.sources}
    concepts = read_concepts(args.truth)
    if concepts is None:
        console.print(f"[yellow]icpa_eval: no concepts truth ({args.truth}); alignment hit@k not computed[/]")
    res = icpa_table(data, params, ckpt, phase1=phase1, finetuned=finetuned, finetuned_model=finetuned_model,
                     concepts=concepts, console=console)

    with atomic_dir(args.out) as out:
        for name, model in res.models.items():
            save_checkpoint(model_payload(model, {"run": name, "sources": params.sources}), out / name)
        res.table.write_csv(out / "table.csv")
        res.transfer.write_csv(out / "transfer.csv")
    plot_path = Path(args.plot)
    write_atomic(plot_path, lambda tmp: res.curve.write_csv(tmp))
    curve_png = png_bytes(ndcg_figure(res.curve, params.sources, res.order))
    write_atomic(plot_path.with_suffix(".png"), lambda tmp: tmp.write_bytes(curve_png))
    bars_png = png_bytes(bars_figure(res.summary, params.sources, [m for m in res.order if m not in PHASE1]))
    write_atomic(plot_path.with_name(plot_path.stem + "_bars.png"), lambda tmp: tmp.write_bytes(bars_png))
    metrics = flatten(res.metrics)
    if concepts is None:
        metrics.update(no_truth_metrics(args.truth, params.eval_config.hit_ks, "alignment.icpa_phase1."))
    write_json(args.metrics, metrics)
    ckpt.clear()

    console.print(f"icpa_eval: test NDCG@10 (mean ± std over {len(params.seed_list)} seed(s)) per source")
    for line in res.lines():
        console.print(line, highlight=False)
    console.print(f"icpa_eval: done in {res.metrics['seconds']:.1f}s -> {args.metrics}")


if __name__ == "__main__":
    run("icpa_eval", main)
