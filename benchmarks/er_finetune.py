"""Fine-tuned MiniLM pair classifier vs the feature scorer on one two-table benchmark (issue 12 §4).

    python -m benchmarks.er_finetune --data ../shared/data/amazon_google [--epochs 4] [--out reports/er_finetune_amazon_google.json]

Trains on train.csv (epoch and threshold chosen on a 10 % dev split of train), scores valid.csv
once, and prints valid P/R/F1 of: the feature scorer, the fine-tuned encoder, and their mean
probability (threshold chosen on the same train dev split).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from crossmatch.er.encoder import serialise
from crossmatch.er.evaluate import labelled_metrics
from crossmatch.er.features import PairFeaturizer
from crossmatch.er.finetune import FinetuneConfig, dev_split, finetune
from crossmatch.er.pipeline import MatchConfig
from crossmatch.er.scorer import PairScorer, ScorerConfig, best_f1_threshold
from stages._er import read_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    b = read_benchmark(args.data)
    assert b.train is not None and b.valid is not None
    rows = (b.left.select(b.attributes).rows(), b.right.select(b.attributes).rows())
    ser = (serialise(b.attributes, rows[0]), serialise(b.attributes, rows[1]))
    tl, tr, ty = (b.train.get_column(c).to_numpy() for c in ("l", "r", "label"))
    vl, vr, vy = (b.valid.get_column(c).to_numpy() for c in ("l", "r", "label"))
    cfg = FinetuneConfig(epochs=args.epochs, max_length=args.max_length, batch_size=args.batch_size)
    t0 = time.time()
    ft = finetune([ser[0][i] for i in tl], [ser[1][j] for j in tr], ty, config=cfg, progress=print)
    train_s = time.time() - t0
    p_enc = ft.predict_proba([ser[0][i] for i in vl], [ser[1][j] for j in vr])
    # the same inner dev split as the encoder's, for the ensemble threshold
    rng = np.random.default_rng(cfg.seed)
    dev = dev_split(ty, cfg.dev_fraction, rng)
    fit = np.setdiff1d(np.arange(len(ty)), dev)
    shipped = MatchConfig()  # the feature set the pipeline ships with
    feats = PairFeaturizer(b, context_k=shipped.context_k, context_attributes=shipped.context_attributes,
                           context_codes=shipped.context_codes)
    Xtr, Xva = feats.transform(tl, tr), feats.transform(vl, vr)
    full = PairScorer(ScorerConfig()).fit(Xtr, ty)
    p_feat = full.predict_proba(Xva)
    part = PairScorer(ScorerConfig()).fit(Xtr[fit], ty[fit])
    p_dev = (part.predict_proba(Xtr[dev]) + ft.predict_proba([ser[0][i] for i in tl[dev]], [ser[1][j] for j in tr[dev]])) / 2
    th_ens, _ = best_f1_threshold(p_dev, ty[dev])
    res = {"benchmark": args.data.name, "train_seconds": round(train_s, 1), "epochs": ft.history,
           "feature_scorer": labelled_metrics(p_feat >= full.threshold, vy),
           "finetuned_minilm": labelled_metrics(p_enc >= ft.threshold, vy),
           "ensemble_mean": labelled_metrics((p_feat + p_enc) / 2 >= th_ens, vy),
           "thresholds": {"feature": full.threshold, "finetuned": ft.threshold, "ensemble": th_ens}}
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
