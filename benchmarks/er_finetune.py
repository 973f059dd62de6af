"""Fine-tuned MiniLM pair classifier vs the feature scorer on one two-table benchmark (issue 12 §4).

    python -m benchmarks.er_finetune --data ../shared/data/amazon_google [--epochs 8] [--lr 1e-4] [--head-lr 3e-3] [--form siamese|cross] [--threads 2]
        [--seed 0] [--pilot] [--out reports/er_finetune_amazon_google.json]
    python -m benchmarks.er_finetune --merge run_seed0.json run_seed1.json ... --out reports/er_finetune_<b>.json
    python -m benchmarks.er_finetune --data ../shared/data/walmart_amazon --reblend reports/er_finetune_walmart_amazon.json \
        --out reports/er_finetune_walmart_amazon.json   # after a change to the feature scorer: seconds, no fine-tuning

Trains on train.csv (epoch and threshold chosen on a 10 % dev split of train), scores valid.csv
once, and prints valid P/R/F1 of: the feature scorer — the pipeline's own, built from ``--params``' ``er``
section as ``er_match`` builds it (features, token vocabulary chosen on train out of fold, calibration,
threshold), so its valid F1 is the stage's (its token vocabulary is chosen on all of train, the dev split
included, which favours the feature scorer slightly in the weight choice below) — the fine-tuned encoder, their mean
probability, and their weighted mean (weight and threshold chosen on the same train dev split; the encoder's
epoch was chosen there too, which favours the encoder slightly in that choice).
``--merge`` joins runs of one benchmark that differ only in ``--seed``: the first run's figures stay the
file's own (what ``er_report`` shows per row), and ``repeats`` adds every run's valid P/R/F1 with the mean and
the standard deviation over seeds.
Each run keeps its encoder's probabilities on the dev split and on valid beside its result (``X.encoder.npz`` for
``--out X.json``); ``--reblend`` rebuilds the feature scorer from the current ``--params`` and the blends from them,
so a change to the pair features no longer leaves the fine-tune rows measured against an earlier scorer (the
encoder itself does not read the features). A merged file is not reblended: reblend its single runs, then merge.
``--pilot`` never reads valid.csv: it trains and prints the dev-split history only (for choosing
the recipe on train).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossmatch.er.encoder import serialise
from crossmatch.er.evaluate import labelled_metrics
from crossmatch.er.features import PairFeaturizer
from crossmatch.er.finetune import FinetuneConfig, blend_weight, dev_split, finetune
from crossmatch.er.scorer import PairScorer, best_f1_threshold
from crossmatch.er.tables import Benchmark
from crossmatch.er.token_vocab import choose_token_vocab
from stages._common import run
from stages._er import load_params, read_benchmark

_OUTPUTS = ("feature_scorer", "finetuned_minilm", "ensemble_mean", "ensemble_weighted")


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from runs that differ only in the seed: the first run's figures, plus ``repeats``."""
    if len(runs) < 2:
        raise SystemExit("--merge needs at least two result files")
    if len({r["benchmark"] for r in runs}) != 1:
        raise SystemExit("--merge: the files are of different benchmarks")
    seeds = [r["config"].get("seed", 0) for r in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--merge: two runs share a seed ({seeds})")
    recipe = [({k: v for k, v in r["config"].items() if k not in ("seed", "threads")}, r.get("feature_scorer_setup"))
              for r in runs]
    if any(c != recipe[0] for c in recipe):
        raise SystemExit("--merge: the runs differ in more than the seed")
    if any("repeats" in r for r in runs):
        raise SystemExit("--merge: an input is itself a merged file; merge the single runs")
    rep: dict[str, Any] = {"seeds": seeds, "threads": [r["config"].get("threads") for r in runs],
                           "train_seconds": [r.get("train_seconds") for r in runs],
                           "chosen_epoch": [chosen_epoch(r["epochs"]) for r in runs],
                           "encoder_weight": [r["thresholds"]["encoder_weight"] for r in runs]}
    for k in _OUTPUTS:
        vals = {m: [float(r[k][m]) for r in runs] for m in ("precision", "recall", "f1")}
        rep[k] = {"runs": vals["f1"], **{m: float(np.mean(v)) for m, v in vals.items()},
                  "f1_std": float(np.std(vals["f1"], ddof=1))}
    return runs[0] | {"repeats": rep}


def chosen_epoch(history: list[dict[str, float]]) -> int:
    """The epoch ``finetune`` keeps: the first with the best dev F1."""
    best = max(h["dev_f1"] for h in history)
    return int(next(h["epoch"] for h in history if h["dev_f1"] == best))


def probabilities_file(out: Path) -> Path:
    """Where a run's encoder probabilities lie beside its result file (``X.json`` -> ``X.encoder.npz``): kept so
    ``--reblend`` can pair them with a later feature scorer without fine-tuning again (25-48 CPU-minutes a run)."""
    return out.with_suffix(".encoder.npz")


def blend(b: Benchmark, res: dict[str, Any], e_dev: np.ndarray, p_enc: np.ndarray, params: str) -> dict[str, Any]:
    """``res`` with the feature scorer ``er_match`` builds from ``params``' ``er`` section, fitted on train, and its
    mean and dev-weighted blends with the encoder's probabilities on the train dev split (``e_dev``, in
    ``dev_split`` order) and on valid (``p_enc``), scored on valid."""
    assert b.train is not None and b.valid is not None
    tl, tr, ty = (b.train.get_column(c).to_numpy() for c in ("l", "r", "label"))
    vl, vr, vy = (b.valid.get_column(c).to_numpy() for c in ("l", "r", "label"))
    enc = res["encoder"]
    dev = dev_split(ty, enc["dev_fraction"], np.random.default_rng(res["config"]["seed"]))
    if len(e_dev) != len(dev) or len(p_enc) != len(vy):
        raise SystemExit(f"{res['benchmark']}: the stored encoder probabilities ({len(e_dev)} dev, {len(p_enc)} valid) do not "
                         f"fit this benchmark's split ({len(dev)} dev, {len(vy)} valid pairs)")
    fit = np.setdiff1d(np.arange(len(ty)), dev)
    er = load_params(params, "er")
    shipped = er.match_config()  # the scorer er_match builds
    if shipped.hard_negatives or er.embeddings != "none":
        raise SystemExit(f"{params}: er.match.hard_negatives and er.embeddings are not rebuilt here; set them "
                         "to 0 / none, or the feature scorer would not be er_match's")
    feats = PairFeaturizer(b, context_k=shipped.context_k, context_attributes=shipped.context_attributes,
                           context_codes=shipped.context_codes, token_vocab=max(shipped.token_vocab),
                           token_text_only=shipped.token_text_only, fuzzy_max_chars=shipped.fuzzy_max_chars,
                           code_prefix=shipped.code_prefix)
    Xtr, Xva = feats.transform(tl, tr), feats.transform(vl, vr)
    keep, full, tokens = choose_token_vocab(Xtr, ty, feats, shipped.token_vocab, shipped.scorer,
                                            seeds=shipped.token_choice_seeds, min_gain=shipped.token_min_gain)
    Xtr, Xva = Xtr[:, keep], Xva[:, keep]
    p_feat = full.predict_proba(Xva)
    f_dev = PairScorer(shipped.scorer).fit(Xtr[fit], ty[fit]).predict_proba(Xtr[dev])
    th_ens, _ = best_f1_threshold((f_dev + e_dev) / 2, ty[dev])
    w, th_w, f1_w = blend_weight(f_dev, e_dev, ty[dev])
    return res | {
        "feature_scorer": labelled_metrics(p_feat >= full.threshold, vy),
        "finetuned_minilm": labelled_metrics(p_enc >= enc["threshold"], vy),
        "ensemble_mean": labelled_metrics((p_feat + p_enc) / 2 >= th_ens, vy),
        "ensemble_weighted": labelled_metrics((1 - w) * p_feat + w * p_enc >= th_w, vy),
        "feature_scorer_setup": {"params": params, "token_vocab": tokens["chosen"], "features": int(len(keep)),
                                 "refit": shipped.scorer.refit},
        "thresholds": {"feature": full.threshold, "finetuned": enc["threshold"], "ensemble": th_ens,
                       "weighted": th_w, "encoder_weight": w, "weighted_dev_f1": f1_w}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--merge", nargs="+", type=Path, help="result files of one recipe, one per seed")
    ap.add_argument("--reblend", type=Path,
                    help="a single run's result file (with its encoder probabilities): rebuild the feature scorer "
                         "from --params and its blends, no fine-tuning; with --data, written to --out")
    ap.add_argument("--params", default="pipelines/real/params.yaml", help="the feature scorer's settings (er)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=FinetuneConfig.lr)
    ap.add_argument("--head-lr", type=float, default=FinetuneConfig.head_lr, help="the head's learning rate")
    ap.add_argument("--form", choices=("cross", "siamese"), default=FinetuneConfig.form)
    ap.add_argument("--seed", type=int, default=FinetuneConfig.seed,
                    help="the dev split, the head's initialisation and the batch order")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--pilot", action="store_true", help="train only; valid.csv is not read")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.merge:
        res = merge([json.loads(f.read_text()) for f in args.merge])
        print(json.dumps(res["repeats"], indent=2))
        if args.out:
            args.out.write_text(json.dumps(res, indent=2) + "\n")
        return
    if args.data is None:
        ap.error("--data is required (or --merge)")
    if args.reblend:
        old = json.loads(args.reblend.read_text())
        npz = probabilities_file(args.reblend)
        if "encoder" not in old or "repeats" in old or not npz.exists():
            raise SystemExit(f"{args.reblend}: not a single run with its encoder probabilities beside it ({npz.name}; "
                             "runs before they were kept must fine-tune again; a merged file: reblend its single "
                             "runs, then --merge)")
        with np.load(npz) as z:
            res = blend(read_benchmark(args.data), old, z["dev"], z["valid"], args.params)
        print(json.dumps({k: res[k] for k in _OUTPUTS}, indent=2))
        if args.out:
            args.out.write_text(json.dumps(res, indent=2) + "\n")
            if args.out != args.reblend:
                probabilities_file(args.out).write_bytes(npz.read_bytes())
        return
    torch.set_num_threads(args.threads)
    b = read_benchmark(args.data)
    if args.pilot:
        b = replace(b, valid=None)  # a pilot chooses the recipe: valid's pairs are not its to read
    assert b.train is not None and (args.pilot or b.valid is not None)
    rows = (b.left.select(b.attributes).rows(), b.right.select(b.attributes).rows())
    ser = (serialise(b.attributes, rows[0]), serialise(b.attributes, rows[1]))
    tl, tr, ty = (b.train.get_column(c).to_numpy() for c in ("l", "r", "label"))
    cfg = FinetuneConfig(epochs=args.epochs, max_length=args.max_length, batch_size=args.batch_size, lr=args.lr,
                         form=args.form, head_lr=args.head_lr, seed=args.seed)
    t0 = time.time()
    ft = finetune([ser[0][i] for i in tl], [ser[1][j] for j in tr], ty, config=cfg, progress=print)
    train_s = time.time() - t0
    if args.pilot:
        print(json.dumps({"benchmark": args.data.name, "config": vars(args) | {"data": str(args.data), "out": None},
                          "train_seconds": round(train_s, 1), "epochs": ft.history}, indent=2))
        return
    assert b.valid is not None
    vl, vr = (b.valid.get_column(c).to_numpy() for c in ("l", "r"))
    p_enc = ft.predict_proba([ser[0][i] for i in vl], [ser[1][j] for j in vr])
    # the same inner dev split as the encoder's, for the ensemble threshold
    dev = dev_split(ty, cfg.dev_fraction, np.random.default_rng(cfg.seed))
    e_dev = ft.predict_proba([ser[0][i] for i in tl[dev]], [ser[1][j] for j in tr[dev]])
    res = {"benchmark": args.data.name, "train_seconds": round(train_s, 1), "epochs": ft.history,
           "chosen_epoch": chosen_epoch(ft.history),
           "config": {"form": cfg.form, "lr": cfg.lr, "head_lr": cfg.head_lr, "max_length": cfg.max_length,
                      "batch_size": cfg.batch_size, "threads": args.threads, "epochs": cfg.epochs, "seed": cfg.seed},
           "encoder": {"threshold": ft.threshold, "dev_fraction": cfg.dev_fraction}}
    res = blend(b, res, e_dev, p_enc, args.params)
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(probabilities_file(args.out), dev=e_dev, valid=p_enc)
        args.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    run("er_finetune", main)  # bad input or params: one short line and exit 2, no traceback
