"""Compare finished WeaveNet checkpoints on a fresh selection set, never the test instances (issue 13).

    python -m benchmarks.weavenet_compare --dist UU --n 30 --instances 1000 --seed 11 \
        --model shipped crossmatch/twosided/pretrained/weavenet_wn16_sizes.pt UU@30 --model new /tmp/run.pt UU

A training run validates on 200 instances, and its best checkpoint is the best of ~6–8 noisy looks at them, so
two runs' own validation figures are not a fair comparison. This draws ``--instances`` new ones from the
``"val"`` stream of ``--seed`` (``generators.split_rng``; the test split is ``"test"`` with seed 2456, training
``"train"``), Hungarian-binarises every model's output and prints, per model, the raw stable rate, the mean SEq
over its stable outputs next to PowerBalance's (GS for UD: the algorithm the tables compare against) on the same
instances, and the §3.6 penalised SEq, each with its standard error. ``--best-of-set FILE [FILE ...]`` adds a row for
the best-of-set portfolio (``crossmatch.twosided.weavenet.portfolio``): the first ``--model`` and every model of those
files solve each instance, the stable output with the lowest SEq is kept — how ``weavenet_eval.portfolio`` was chosen:

    python -m benchmarks.weavenet_compare --dist UD --n 30 \
        --model own crossmatch/twosided/pretrained/weavenet_wn16_sizes.pt UD@30 \
        --best-of-set crossmatch/twosided/pretrained/weavenet_wn16.pt crossmatch/twosided/pretrained/weavenet_wn16_sizes.pt
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping

import numpy as np
import torch

from crossmatch.checkpoint import load_checkpoint
from crossmatch.twosided.generators import DISTRIBUTIONS, generate, split_rng
from crossmatch.twosided.instance import ranks_from_satisfaction
from crossmatch.twosided.solvers import solve_batch
from crossmatch.twosided.weavenet.binarize import binarize
from crossmatch.twosided.weavenet.checkpoints import load_models
from crossmatch.twosided.weavenet.portfolio import keep_best
from crossmatch.twosided.weavenet.train import outcome, predict_logits


def compare(models: Mapping[str, torch.nn.Module], dist: str, n: int, instances: int, seed: int,
            portfolio: Mapping[str, torch.nn.Module] | None = None) -> list[dict[str, float | str]]:
    """Per model: stable rate, SEq over stable outputs, the reference algorithm's SEq on those instances, the
    ratio of the two, and penalised SEq (SEq + N per unstable output), each mean with its standard error.
    With ``portfolio``: one more row, the best of the first model and every portfolio model per instance."""
    sa, sb = generate(dist, n, instances, split_rng(seed, "val", dist, n))
    ref_name = "GS" if dist == "UD" else "PowerBalance"
    ref = solve_batch(ranks_from_satisfaction(sa) - 1, ranks_from_satisfaction(sb) - 1, [ref_name], ["seq"])[f"{ref_name}/seq/seq"]
    rows: list[dict[str, float | str]] = []
    cpu = torch.device("cpu")
    outputs = {name: binarize(predict_logits(m, sa, sb, cpu), "hungarian") for name, m in models.items()}  # type: ignore[arg-type]
    if portfolio:
        first = next(iter(outputs.values()))
        others = [binarize(predict_logits(m, sa, sb, cpu), "hungarian") for m in portfolio.values()]  # type: ignore[arg-type]
        outputs[f"best of 1+{len(others)}"] = keep_best(sa, sb, [first, *others])[0]  # the first model + the set
    for name, match in outputs.items():
        o = outcome(sa, sb, match)
        st = o["stable"]
        pen = o["seq"] + n * ~st
        se = lambda x: float(np.std(x, ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan  # noqa: E731
        rows.append({
            "model": name, "stable": float(st.mean()), "stable_se": se(st.astype(float)),
            "seq_stable": float(o["seq"][st].mean()) if st.any() else math.nan,
            "ref_seq_same": float(ref[st].mean()) if st.any() else math.nan,
            "seq_ratio": float(o["seq"][st].mean() / ref[st].mean()) if st.any() else math.nan,
            "penalised_seq": float(pen.mean()), "penalised_se": se(pen.astype(float)), "reference": ref_name,
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dist", required=True, choices=sorted(DISTRIBUTIONS))
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--model", nargs=3, action="append", required=True, metavar=("NAME", "PATH", "KEY"),
                    help="a checkpoint file and the model's key in it (e.g. UU, or UU@30 for a size specialist)")
    ap.add_argument("--best-of-set", nargs="+", metavar="FILE", default=[],
                    help="model-set files whose every model joins the first --model in a best-of-set row")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    if args.seed == 2456:
        ap.error("seed 2456 is the test split's; pick another")
    models = {}
    for name, path, key in args.model:
        found = load_models(load_checkpoint(path))
        if key not in found:
            ap.error(f"{path}: no model {key!r}; it has {sorted(found)}")
        models[name] = found[key]
    portfolio = {}
    for path in args.best_of_set:
        portfolio.update({f"{path}:{k}": m for k, m in load_models(load_checkpoint(path)).items()})
    torch.set_num_threads(1)
    rows = compare(models, args.dist, args.n, args.instances, args.seed, portfolio or None)
    print(f"{args.dist} N = {args.n}, {args.instances} selection instances (seed {args.seed}, 'val' stream), Hungarian")
    for r in rows:
        print(f"  {r['model']:<14} stable {r['stable']:.3f} ± {r['stable_se']:.3f}   SEq over stable {r['seq_stable']:.2f} "
              f"vs {r['reference']} {r['ref_seq_same']:.2f} (ratio {r['seq_ratio']:.3f})   penalised SEq "
              f"{r['penalised_seq']:.2f} ± {r['penalised_se']:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
