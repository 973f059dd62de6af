"""Stage ``match``: one-to-one stable matching of two sources' items inside every block (issue 5 §6).

Inputs (contracts of the upstream stages):
    --items       <dir>/<source>/items.parquet       item_id, title, fine_category, ...
    --blocks      blocks.parquet                     block_id, left, right (fine categories; str or list[str])
    --embeddings  <dir>/<source>.parquet or "none"   item_id, embedding (learned ICPA vectors; optional)
    --truth       product_matches.parquet            source_a, item_a, source_b, item_b
    --model       weavenet.pt                        read only when ``solver: weavenet``
Outputs:
    --out         pairs.parquet: block_id, left_source, left_item_id, right_source, right_item_id,
                  similarity, left_rank, right_rank (1-based, in the market), market_left, market_right
    --metrics     flat JSON: precision / recall / F1 against the truth, market statistics

Blocks sharing a category are merged into one market (``crossmatch.twosided.entity``); unequal sides are
padded with dummies (``crossmatch.twosided.market``); markets above ``max_market`` agents per side are
pruned to their best candidates; pairs below ``min_similarity`` are dropped after matching.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.progress import Progress

from crossmatch.errors import ConfigError, InputError
from crossmatch.twosided.entity import merge_blocks, score_pairs
from crossmatch.twosided.market import SOLVERS, Predictor, solve_market
from crossmatch.twosided.preferences import (
    block_similarity,
    prune_candidates,
    tfidf_vectors,
    two_sided_scores,
)
from stages._common import console, load_section, params_as, run, write_atomic, write_json


@dataclass(frozen=True)
class MatchParams:
    left: str = "alpha"
    right: str = "beta"
    solver: str = "power_balance"  # gs | gs_best | power_balance | weavenet
    preferences: str = "shared"  # shared | standardized (crossmatch/twosided/preferences.py)
    similarity: str = "auto"  # auto: ICPA embeddings where present, TF-IDF otherwise | tfidf
    min_similarity: float = 0.0
    max_market: int = 1500
    weavenet_max_n: int = 200  # larger markets fall back to power_balance (memory grows with N²)
    binarize: str = "hungarian"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ConfigError(f"match.solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.preferences not in ("shared", "standardized"):
            raise ConfigError(f"match.preferences must be shared | standardized, got {self.preferences!r}")
        if self.similarity not in ("auto", "tfidf"):
            raise ConfigError(f"match.similarity must be auto | tfidf, got {self.similarity!r}")
        if self.binarize not in ("hungarian", "argmax"):
            raise ConfigError(f"match.binarize must be hungarian | argmax, got {self.binarize!r}")
        if int(self.max_market) < 2 or int(self.weavenet_max_n) < 1:
            raise ConfigError("match.max_market must be >= 2 and match.weavenet_max_n >= 1")
        if self.left == self.right:
            raise ConfigError(f"match.left and match.right must differ, both are {self.left!r}")


def read_items(root: Path, source: str) -> pl.DataFrame:
    path = root / source / "items.parquet"
    if not path.is_file():
        raise InputError(f"items of source '{source}' not found; run the ingest stage first", file=str(path))
    items = pl.read_parquet(path)
    missing = [c for c in ("item_id", "title", "fine_category") if c not in items.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", file=str(path))
    return items.select("item_id", "title", "fine_category")


def read_blocks(path: Path) -> list[tuple[Any, list[str], list[str]]]:
    """Rows ``(block_id, left categories, right categories)``; ``left``/``right`` may be strings or lists."""
    if not path.is_file():
        raise InputError("blocks not found; run the blocking stage first", file=str(path))
    df = pl.read_parquet(path)
    missing = [c for c in ("block_id", "left", "right") if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; expected block_id, left, right", file=str(path))
    return [(bid, _as_list(lft), _as_list(rgt)) for bid, lft, rgt in df.select("block_id", "left", "right").iter_rows()]


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x) for x in v if x is not None]
    return [str(v)]


def read_embeddings(root: Path | None, source: str, item_ids: list[str]) -> np.ndarray | None:
    """Embeddings aligned to ``item_ids`` (NaN rows for items without one), or None if absent."""
    if root is None:
        return None
    path = root / f"{source}.parquet"
    if not path.is_file():
        return None
    df = pl.read_parquet(path)
    if "item_id" not in df.columns or "embedding" not in df.columns:
        raise InputError("expected columns item_id, embedding", file=str(path))
    ids = df.get_column("item_id").cast(pl.Utf8).to_list()
    vecs = np.asarray(df.get_column("embedding").to_list(), dtype=np.float64)
    if vecs.ndim != 2:
        raise InputError("embedding must be a fixed-length list per item", file=str(path), column="embedding")
    pos = {i: k for k, i in enumerate(ids)}
    out = np.full((len(item_ids), vecs.shape[1]), np.nan)
    for k, i in enumerate(item_ids):
        if i in pos:
            out[k] = vecs[pos[i]]
    return out


def read_truth(path: Path, left: str, right: str) -> set[tuple[str, str]]:
    if not path.is_file():
        raise InputError("product-match truth not found", file=str(path))
    t = pl.read_parquet(path)
    missing = [c for c in ("source_a", "item_a", "source_b", "item_b") if c not in t.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", file=str(path))
    fwd = t.filter((pl.col("source_a") == left) & (pl.col("source_b") == right)).select("item_a", "item_b")
    bwd = t.filter((pl.col("source_a") == right) & (pl.col("source_b") == left)).select("item_b", "item_a")
    return {(str(a), str(b)) for a, b in fwd.iter_rows()} | {(str(a), str(b)) for a, b in bwd.iter_rows()}


def load_predictor(path: Path, device_name: str) -> Predictor:
    import torch

    from crossmatch.twosided.weavenet.train import load_model, predict_logits, resolve_device

    if not path.is_file():
        raise InputError("WeaveNet checkpoint not found; run weavenet_train or choose another match.solver", file=str(path))
    device = resolve_device(device_name)
    model = load_model(torch.load(path, map_location="cpu", weights_only=True), device)
    return lambda sa, sb: predict_logits(model, sa, sb, device)


def match_sources(items_l: pl.DataFrame, items_r: pl.DataFrame, blocks: list[tuple[Any, list[str], list[str]]],
                  params: MatchParams, emb: tuple[np.ndarray | None, np.ndarray | None],
                  predictor: Predictor | None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """All matched pairs and market statistics (pure: frames in, frames out)."""
    ids_l = items_l.get_column("item_id").cast(pl.Utf8).to_list()
    ids_r = items_r.get_column("item_id").cast(pl.Utf8).to_list()
    cat_l = items_l.get_column("fine_category").cast(pl.Utf8).to_list()
    cat_r = items_r.get_column("fine_category").cast(pl.Utf8).to_list()
    by_cat_l: dict[str, list[int]] = {}
    by_cat_r: dict[str, list[int]] = {}
    for k, c in enumerate(cat_l):
        if c is not None:
            by_cat_l.setdefault(c, []).append(k)
    for k, c in enumerate(cat_r):
        if c is not None:
            by_cat_r.setdefault(c, []).append(k)
    tfidf = tfidf_vectors(items_l.get_column("title").to_list(), items_r.get_column("title").to_list())
    markets = merge_blocks(blocks)
    rows: list[tuple[Any, ...]] = []
    st = {"markets": len(markets), "markets_one_sided": 0, "markets_pruned": 0, "largest_market_side": 0,
          "pairs_scored": 0, "pairs_scored_icpa": 0, "weavenet_markets": 0, "weavenet_repaired": 0,
          "weavenet_fallback_markets": 0, "items_left_in_blocks": 0, "items_right_in_blocks": 0}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("match", total=len(markets))
        for mk in markets:
            progress.advance(task)
            rows_l = np.array(sorted(k for c in mk.left for k in by_cat_l.get(c, [])), dtype=np.int64)
            rows_r = np.array(sorted(k for c in mk.right for k in by_cat_r.get(c, [])), dtype=np.int64)
            st["items_left_in_blocks"] += rows_l.size
            st["items_right_in_blocks"] += rows_r.size
            if rows_l.size == 0 or rows_r.size == 0:
                st["markets_one_sided"] += 1
                continue
            sim, n_icpa = block_similarity(rows_l, rows_r, tfidf, *emb)
            st["pairs_scored"] += sim.size
            st["pairs_scored_icpa"] += n_icpa
            keep_l, keep_r = prune_candidates(sim, int(params.max_market))
            if keep_l.size < rows_l.size or keep_r.size < rows_r.size:
                st["markets_pruned"] += 1
                rows_l, rows_r, sim = rows_l[keep_l], rows_r[keep_r], sim[np.ix_(keep_l, keep_r)]
            st["largest_market_side"] = max(st["largest_market_side"], int(max(sim.shape)))
            score_a, score_b = two_sided_scores(sim, params.preferences)  # type: ignore[arg-type]
            solver = params.solver
            if solver == "weavenet":
                if max(sim.shape) > int(params.weavenet_max_n):
                    solver = "power_balance"
                    st["weavenet_fallback_markets"] += 1
                else:
                    st["weavenet_markets"] += 1
            res = solve_market(score_a, score_b, solver, predictor=predictor, binarize_method=params.binarize)
            st["weavenet_repaired"] += int(res.repaired)
            rank_a = np.argsort(np.argsort(-score_a, axis=1, kind="stable"), axis=1) + 1
            rank_b = np.argsort(np.argsort(-score_b, axis=1, kind="stable"), axis=1) + 1
            for i, j in zip(res.left.tolist(), res.right.tolist(), strict=True):
                s = float(sim[i, j])
                if s < float(params.min_similarity):
                    continue
                rows.append((str(mk.block_ids[0]), params.left, ids_l[rows_l[i]], params.right, ids_r[rows_r[j]], s,
                             int(rank_a[i, j]), int(rank_b[j, i]), int(sim.shape[0]), int(sim.shape[1])))
    schema = {"block_id": pl.Utf8, "left_source": pl.Utf8, "left_item_id": pl.Utf8, "right_source": pl.Utf8,
              "right_item_id": pl.Utf8, "similarity": pl.Float64, "left_rank": pl.Int32, "right_rank": pl.Int32,
              "market_left": pl.Int32, "market_right": pl.Int32}
    return pl.DataFrame(rows, schema=schema, orient="row"), st


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.match", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="match")
    ap.add_argument("--items", default="data/ingested")
    ap.add_argument("--blocks", default="data/blocking/blocks.parquet")
    ap.add_argument("--embeddings", default="data/icpa/embeddings", help='directory of <source>.parquet, or "none"')
    ap.add_argument("--truth", default="data/truth/product_matches.parquet")
    ap.add_argument("--model", default="data/twosided/weavenet.pt")
    ap.add_argument("--out", default="data/match/pairs.parquet")
    ap.add_argument("--metrics", default="metrics/match.json")
    args = ap.parse_args()
    params = params_as(MatchParams, load_section(args.section, args.params), args.section)

    items_l, items_r = read_items(Path(args.items), params.left), read_items(Path(args.items), params.right)
    blocks = read_blocks(Path(args.blocks))
    truth = read_truth(Path(args.truth), params.left, params.right)
    emb_root = None if params.similarity == "tfidf" or args.embeddings.lower() == "none" else Path(args.embeddings)
    emb = (read_embeddings(emb_root, params.left, items_l.get_column("item_id").cast(pl.Utf8).to_list()),
           read_embeddings(emb_root, params.right, items_r.get_column("item_id").cast(pl.Utf8).to_list()))
    if emb[0] is None or emb[1] is None:
        emb = (None, None)
    predictor = load_predictor(Path(args.model), params.device) if params.solver == "weavenet" else None

    pairs, st = match_sources(items_l, items_r, blocks, params, emb, predictor)
    predicted = set(zip(pairs.get_column("left_item_id").to_list(), pairs.get_column("right_item_id").to_list(), strict=True))
    sc = score_pairs(predicted, truth)
    in_blocks_truth = _truth_within_markets(truth, items_l, items_r, blocks)
    metrics = {
        "left": params.left, "right": params.right, "solver": params.solver, "preferences": params.preferences,
        "similarity": "icpa+tfidf" if emb[0] is not None else "tfidf", "min_similarity": params.min_similarity,
        "precision": sc.precision, "recall": sc.recall, "f1": sc.f1, "pairs": sc.predicted,
        "true_positives": sc.true_positives, "truth_pairs": sc.truth,
        "precision_labelled": sc.precision_labelled, "pairs_labelled": sc.labelled_predicted,
        "truth_pairs_within_blocks": in_blocks_truth,
        "recall_ceiling_blocking": in_blocks_truth / sc.truth if sc.truth else 0.0,
        **st,
    }
    write_atomic(Path(args.out), lambda p: pairs.write_parquet(p))
    write_json(args.metrics, metrics)
    console.print(
        f"match: {sc.predicted} pairs in {st['markets']} markets ({params.solver}, {metrics['similarity']}); "
        f"P {sc.precision:.3f} R {sc.recall:.3f} F1 {sc.f1:.3f} (recall ceiling of the blocks "
        f"{metrics['recall_ceiling_blocking']:.3f}) -> {args.out}"
    )


def _truth_within_markets(truth: set[tuple[str, str]], items_l: pl.DataFrame, items_r: pl.DataFrame,
                          blocks: list[tuple[Any, list[str], list[str]]]) -> int:
    """True pairs whose two items fall into the same market: the recall any matcher can reach."""
    market_of_l: dict[str, int] = {}
    market_of_r: dict[str, int] = {}
    for k, mk in enumerate(merge_blocks(blocks)):
        for c in mk.left:
            market_of_l[c] = k
        for c in mk.right:
            market_of_r[c] = k
    cat_l = dict(zip(items_l.get_column("item_id").cast(pl.Utf8).to_list(), items_l.get_column("fine_category").to_list(), strict=True))
    cat_r = dict(zip(items_r.get_column("item_id").cast(pl.Utf8).to_list(), items_r.get_column("fine_category").to_list(), strict=True))
    hits = 0
    for a, b in truth:
        ma, mb = market_of_l.get(cat_l.get(a)), market_of_r.get(cat_r.get(b))  # type: ignore[arg-type]
        hits += int(ma is not None and ma == mb)
    return hits


if __name__ == "__main__":
    run("match", main)
