"""Results of trained ICPA models: ranking metrics per source, embeddings, alignment hit@k, flat metrics.

* :func:`evaluate_source` — NDCG@k, F@k, precision@k, recall@k on validation and test (eq. 10 retrieval);
* :func:`strip_per_user` / :func:`per_user_arrays` — a result for JSON / its per-user arrays for npz;
* :func:`source_embeddings` / :func:`embeddings_frame` — item embeddings per source, as a frame;
* :func:`alignment_accuracy` — hit@k of the true cross-source partners (§2.9);
* :func:`flatten` — nested metrics to the flat ``a.b.c`` keys of a DVC metrics file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import torch

from crossmatch.icpa.data import Data
from crossmatch.icpa.inference import item_embeddings, learned_scorer
from crossmatch.icpa.model import ICPAModel
from crossmatch.icpa.params import EvalParams
from crossmatch.metrics.alignment_hits import alignment_hits, partner_pairs


@torch.no_grad()
def evaluate_source(model: ICPAModel, data: Data, source: str, cfg: EvalParams) -> dict[str, Any]:
    """NDCG@k, F@k, precision@k, recall@k on validation and test of one source (eq. 10 retrieval)."""
    scorer = learned_scorer(model, data.graph.sources[data.graph.index(source)], data.graph.index(source),
                            score=cfg.score, retrieval=cfg.retrieval, knn_k=cfg.knn_k)
    return data.evaluator(source, cfg).all(scorer)


def strip_per_user(res: dict[str, Any]) -> dict[str, Any]:
    """A result without its per-user arrays (for JSON)."""
    return {split: {k: v for k, v in r.items() if k != "per_user"} if split != "loo" else r
            for split, r in res.items()}


def per_user_arrays(res: dict[str, Any], prefix: str, k: int = 10) -> dict[str, np.ndarray]:
    """``{"<prefix>/<split>/<metric>@k": per-user array}`` for an npz file."""
    out = {}
    for split, r in res.items():
        if split == "loo":
            continue
        for metric, arr in r.get("per_user", {}).get(str(k), {}).items():
            if metric in ("ndcg", "f"):
                out[f"{prefix}/{split}/{metric}@{k}"] = arr
    return out


@torch.no_grad()
def source_embeddings(model: ICPAModel, data: Data, tower: str = "anchor") -> dict[str, np.ndarray]:
    """Every item's embedding per source (``[n_items, d]``, the ``tower`` side)."""
    model.eval()
    return {s: item_embeddings(model, data.graph.sources[j], j, tower).cpu().numpy()
            for j, s in enumerate(data.graph.names)}


def alignment_accuracy(emb: dict[str, np.ndarray], data: Data, concepts: pl.DataFrame | None,
                       ks: Sequence[int]) -> dict[str, Any]:
    """hit@k of true cross-source partners, per ordered source pair and averaged (§2.9).

    ``concepts``: the hidden correspondences ``source, item_id, concept`` (``None``: no figures).
    """
    if concepts is None:
        return {}
    per_source = {}
    for s in data.graph.names:
        sub = concepts.filter(pl.col("source") == s)
        m = dict(zip(sub.get_column("item_id").to_list(), sub.get_column("concept").to_list(), strict=True))
        per_source[s] = np.array([m.get(i) for i in data.item_ids[s]], dtype=object)
    pairs: dict[str, Any] = {}
    for a in data.graph.names:
        for b in data.graph.names:
            if a == b:
                continue
            P = partner_pairs(per_source[a], per_source[b])
            if P.shape[0]:
                pairs[f"{a}->{b}"] = alignment_hits(emb[a], emb[b], P, ks)
    out: dict[str, Any] = {"pairs": pairs}
    if pairs:
        total = sum(v["queries"] for v in pairs.values())
        for k in ks:
            for key in (f"hit@{k}", f"chance@{k}"):
                out[key] = float(sum(v[key] * v["queries"] for v in pairs.values()) / total)
        out["queries"] = total
    return out


def embeddings_frame(emb: np.ndarray, item_ids: Sequence[str]) -> pl.DataFrame:
    """``item_idx, item_id, embedding`` (fixed-size float32 array, L2-normalised)."""
    d = emb.shape[1]
    return pl.DataFrame({
        "item_idx": pl.Series(np.arange(emb.shape[0], dtype=np.int32)),
        "item_id": pl.Series(list(item_ids), dtype=pl.Utf8),
        "embedding": pl.Series(emb.astype(np.float32)).cast(pl.Array(pl.Float32, d)),
    })


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts → flat ``a.b.c`` keys (DVC metrics files stay flat); lists become strings."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = ",".join(str(x) for x in v)
        else:
            out[key] = v
    return out
