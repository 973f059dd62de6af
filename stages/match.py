"""Stage ``match``: one-to-one stable matching of two sources' items over the blocking's candidates (issue 5 §6).

Inputs (contracts of the upstream stages):
    --items       <dir>/<source>/items.parquet            item_id, title, fine_category, ...
    --candidates  candidate_pairs.parquet                 left_item_id, right_item_id, block_id
    --blocks      blocks.parquet                          block_id, left, right (fine categories; str or list);
                                                          expanded to item pairs only when --candidates is absent
    --embeddings  <dir>/<source>.parquet or "none"        item_id, embedding (learned ICPA vectors; optional)
    --truth       product_matches.parquet                 source_a, item_a, source_b, item_b
    --model       weavenet.pt                             read only when ``solver: weavenet``
Outputs:
    --out         pairs.parquet: block_id, left_source, left_item_id, right_source, right_item_id, similarity,
                  left_rank, right_rank (1-based, inside each item's candidate list), market_left, market_right
    --metrics     flat JSON: precision / recall / F1 against the truth, market statistics

An item finds acceptable exactly the items it shares a block with, so every connected component of the
candidate graph is one market with incomplete lists (``crossmatch.twosided.sparse_market``); the output is
stable in that sense and one-to-one overall. Pairs below ``min_similarity`` are dropped after matching.
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
from crossmatch.twosided.entity import expand_blocks, score_pairs
from crossmatch.twosided.preferences import pair_similarity, tfidf_vectors, two_sided_scores
from crossmatch.twosided.sparse_market import SOLVERS, SparseMarket, component_labels, solve_component
from stages._common import console, load_section, params_as, run, write_atomic, write_json


@dataclass(frozen=True)
class MatchParams:
    left: str = "alpha"
    right: str = "beta"
    solver: str = "power_balance"  # gs | gs_best | power_balance | weavenet
    preferences: str = "shared"  # shared | standardized (crossmatch/twosided/preferences.py)
    similarity: str = "auto"  # auto: ICPA embeddings where present, TF-IDF otherwise | blend: their mean | tfidf
    min_similarity: float = 0.0
    dense_max: int = 400  # power_balance / weavenet need nL + nR <= this per market, else gs_best
    max_pairs: int = 2_000_000  # cap when expanding blocks without candidate pairs
    binarize: str = "hungarian"
    device: str = "auto"
    weavenet_model: str = "UU"  # which model of a per-distribution WeaveNet model set (a single model serves all)

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ConfigError(f"match.solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.preferences not in ("shared", "standardized"):
            raise ConfigError(f"match.preferences must be shared | standardized, got {self.preferences!r}")
        if self.similarity not in ("auto", "blend", "tfidf"):
            raise ConfigError(f"match.similarity must be auto | blend | tfidf, got {self.similarity!r}")
        if self.binarize not in ("hungarian", "argmax"):
            raise ConfigError(f"match.binarize must be hungarian | argmax, got {self.binarize!r}")
        if int(self.dense_max) < 2 or int(self.max_pairs) < 1:
            raise ConfigError("match.dense_max must be >= 2 and match.max_pairs >= 1")
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
    return items.select(pl.col("item_id").cast(pl.Utf8), "title", pl.col("fine_category").cast(pl.Utf8))


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x) for x in v if x is not None]
    return [str(v)]


def read_candidates(cand: Path, blocks: Path, items_l: pl.DataFrame, items_r: pl.DataFrame,
                    max_pairs: int) -> tuple[np.ndarray, np.ndarray, list[Any], int]:
    """Candidate pairs as left rows, right rows and block ids, plus how many rows named unknown items."""
    pos_l = {k: i for i, k in enumerate(items_l.get_column("item_id").to_list())}
    pos_r = {k: i for i, k in enumerate(items_r.get_column("item_id").to_list())}
    if cand.is_file():
        df = pl.read_parquet(cand)
        missing = [c for c in ("left_item_id", "right_item_id", "block_id") if c not in df.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}", file=str(cand))
        first: dict[tuple[int, int], Any] = {}
        unknown = 0
        for a, b, bid in df.select(pl.col("left_item_id").cast(pl.Utf8), pl.col("right_item_id").cast(pl.Utf8), "block_id").iter_rows():
            i, j = pos_l.get(a), pos_r.get(b)
            if i is None or j is None:
                unknown += 1
                continue
            if (i, j) not in first or str(bid) < str(first[(i, j)]):
                first[(i, j)] = bid
    else:
        if not blocks.is_file():
            raise InputError("neither candidate pairs nor blocks found; run the blocking stage first", file=str(blocks))
        df = pl.read_parquet(blocks)
        missing = [c for c in ("block_id", "left", "right") if c not in df.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}; expected block_id, left, right", file=str(blocks))
        by_l: dict[str, list[int]] = {}
        by_r: dict[str, list[int]] = {}
        for k, c in enumerate(items_l.get_column("fine_category").to_list()):
            by_l.setdefault(c, []).append(k)
        for k, c in enumerate(items_r.get_column("fine_category").to_list()):
            by_r.setdefault(c, []).append(k)
        rows = [(bid, _as_list(lf), _as_list(rt)) for bid, lf, rt in df.select("block_id", "left", "right").iter_rows()]
        try:
            first = expand_blocks(rows, by_l, by_r, max_pairs)
        except ValueError as exc:
            raise InputError(f"{exc}; give the blocking's candidate_pairs.parquet or raise match.max_pairs", file=str(blocks)) from None
        unknown = 0
    keys = sorted(first)
    left = np.array([k[0] for k in keys], dtype=np.int64)
    right = np.array([k[1] for k in keys], dtype=np.int64)
    return left, right, [first[k] for k in keys], unknown


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
    vecs = np.asarray(df.get_column("embedding").to_list(), dtype=np.float64)
    if vecs.ndim != 2:
        raise InputError("embedding must be a fixed-length list per item", file=str(path), column="embedding")
    pos = {i: k for k, i in enumerate(df.get_column("item_id").cast(pl.Utf8).to_list())}
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


def load_predictor(path: Path, device_name: str, which: str = "UU") -> Any:
    from crossmatch.checkpoint import load_checkpoint
    from crossmatch.twosided.weavenet.checkpoints import load_models, model_for
    from crossmatch.twosided.weavenet.train import predict_logits, resolve_device

    if not path.is_file():
        raise InputError("WeaveNet checkpoint not found; run weavenet_train or choose another match.solver", file=str(path))
    device = resolve_device(device_name)
    try:
        model = model_for(load_models(load_checkpoint(path), device), which)
    except (ValueError, RuntimeError, TypeError) as exc:  # a plain checkpoint, but not a WeaveNet's
        raise InputError(f"cannot load the WeaveNet checkpoint: {exc}", file=str(path)) from None
    return lambda sa, sb: predict_logits(model, sa, sb, device)


def match_pairs(items_l: pl.DataFrame, items_r: pl.DataFrame, left: np.ndarray, right: np.ndarray, block_ids: list[Any],
                params: MatchParams, emb: tuple[np.ndarray | None, np.ndarray | None], predictor: Any) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Matched pairs and market statistics (pure: frames and arrays in, a frame out)."""
    tfidf = tfidf_vectors(items_l.get_column("title").to_list(), items_r.get_column("title").to_list())
    sim, n_icpa = pair_similarity(left, right, tfidf, *emb, blend=params.similarity == "blend")
    score_a, score_b = two_sided_scores(left, right, sim, params.preferences)  # type: ignore[arg-type]
    lab_l, lab_r = component_labels(left, right, items_l.height, items_r.height)
    comp = lab_l[left]
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    groups = np.split(order, bounds) if left.size else []
    st: dict[str, Any] = {"candidate_pairs": int(left.size), "pairs_scored_icpa": n_icpa, "markets": len(groups),
          "markets_dense": 0, "markets_sparse": 0, "largest_market_left": 0, "largest_market_right": 0,
          "weavenet_repaired": 0, "solvers": {}}
    ids_l, ids_r = items_l.get_column("item_id").to_list(), items_r.get_column("item_id").to_list()
    rows: list[tuple[Any, ...]] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("match", total=len(groups))
        for g in groups:
            progress.advance(task)
            nodes_l, loc_l = np.unique(left[g], return_inverse=True)
            nodes_r, loc_r = np.unique(right[g], return_inverse=True)
            market = SparseMarket(nodes_l.size, nodes_r.size, loc_l, loc_r, score_a[g], score_b[g])
            res = solve_component(market, params.solver, predictor=predictor, dense_max=int(params.dense_max),
                                  binarize_method=params.binarize)
            st["markets_dense" if res.dense else "markets_sparse"] += 1
            # no silent fallback: which solver ran on how many items (power_balance / weavenet above
            # dense_max are solved by gs_best, the named sparse solver)
            ran = params.solver if res.dense or params.solver in ("gs", "gs_best") else "gs_best"
            st["solvers"][ran] = st["solvers"].get(ran, 0) + int(nodes_l.size + nodes_r.size)
            st["weavenet_repaired"] += int(res.repaired)
            st["largest_market_left"] = max(st["largest_market_left"], int(nodes_l.size))
            st["largest_market_right"] = max(st["largest_market_right"], int(nodes_r.size))
            la, lb = market.lists()
            pair_of = {(int(loc_l[k]), int(loc_r[k])): int(g[k]) for k in range(g.size)}
            for i, j in zip(res.left.tolist(), res.right.tolist(), strict=True):
                p = pair_of[(i, j)]
                if sim[p] < float(params.min_similarity):
                    continue
                rows.append((str(block_ids[p]), params.left, ids_l[nodes_l[i]], params.right, ids_r[nodes_r[j]], float(sim[p]),
                             la[i].index(j) + 1, lb[j].index(i) + 1, int(nodes_l.size), int(nodes_r.size)))
    schema = {"block_id": pl.Utf8, "left_source": pl.Utf8, "left_item_id": pl.Utf8, "right_source": pl.Utf8,
              "right_item_id": pl.Utf8, "similarity": pl.Float64, "left_rank": pl.Int32, "right_rank": pl.Int32,
              "market_left": pl.Int32, "market_right": pl.Int32}
    return pl.DataFrame(rows, schema=schema, orient="row"), st


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.match", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="match")
    ap.add_argument("--items", default="data/ingested")
    ap.add_argument("--candidates", default="data/blocking/candidate_pairs.parquet")
    ap.add_argument("--blocks", default="data/blocking/blocks.parquet")
    ap.add_argument("--embeddings", default="data/icpa/embeddings", help='directory of <source>.parquet, or "none"')
    ap.add_argument("--truth", default="data/truth/product_matches.parquet")
    ap.add_argument("--model", default="data/twosided/weavenet.pt")
    ap.add_argument("--out", default="data/match/pairs.parquet")
    ap.add_argument("--metrics", default="metrics/match.json")
    args = ap.parse_args()
    params = params_as(MatchParams, load_section(args.section, args.params), args.section)

    items_l, items_r = read_items(Path(args.items), params.left), read_items(Path(args.items), params.right)
    left, right, block_ids, unknown = read_candidates(Path(args.candidates), Path(args.blocks), items_l, items_r, int(params.max_pairs))
    truth = read_truth(Path(args.truth), params.left, params.right)
    emb_root = None if params.similarity == "tfidf" or args.embeddings.lower() == "none" else Path(args.embeddings)
    emb = (read_embeddings(emb_root, params.left, items_l.get_column("item_id").to_list()),
           read_embeddings(emb_root, params.right, items_r.get_column("item_id").to_list()))
    if emb[0] is None or emb[1] is None:
        emb = (None, None)
    predictor = load_predictor(Path(args.model), params.device, params.weavenet_model) if params.solver == "weavenet" else None

    pairs, st = match_pairs(items_l, items_r, left, right, block_ids, params, emb, predictor)
    predicted = set(zip(pairs.get_column("left_item_id").to_list(), pairs.get_column("right_item_id").to_list(), strict=True))
    sc = score_pairs(predicted, truth)
    ids_l, ids_r = items_l.get_column("item_id").to_list(), items_r.get_column("item_id").to_list()
    cand = {(ids_l[i], ids_r[j]) for i, j in zip(left.tolist(), right.tolist(), strict=True)}
    ceiling = len(truth & cand)
    metrics = {
        "left": params.left, "right": params.right, "solver": params.solver, "preferences": params.preferences,
        "similarity": ("icpa+tfidf blend" if params.similarity == "blend" else "icpa+tfidf") if emb[0] is not None else "tfidf",
        "min_similarity": params.min_similarity,
        "candidates_from": "candidate_pairs" if Path(args.candidates).is_file() else "blocks",
        "precision": sc.precision, "recall": sc.recall, "f1": sc.f1, "pairs": sc.predicted,
        "true_positives": sc.true_positives, "truth_pairs": sc.truth,
        "precision_labelled": sc.precision_labelled, "f1_labelled": sc.f1_labelled, "pairs_labelled": sc.labelled_predicted,
        "truth_pairs_in_candidates": ceiling, "recall_ceiling_blocking": ceiling / sc.truth if sc.truth else 0.0,
        "candidate_rows_unknown_items": unknown, **st,
    }
    write_atomic(Path(args.out), lambda p: pairs.write_parquet(p))
    write_json(args.metrics, metrics)
    if params.solver not in st["solvers"]:
        console.print(f"[yellow]match: solver {params.solver} ran on no market; {st['solvers']} (items per solver; "
                      f"markets above dense_max = {params.dense_max} use gs_best)[/]")
    console.print(
        f"match: {sc.predicted} pairs from {st['candidate_pairs']:,} candidates in {st['markets']} markets "
        f"({params.solver}, {metrics['similarity']}); P {sc.precision:.3f} R {sc.recall:.3f} F1 {sc.f1:.3f} "
        f"(recall ceiling of the blocking {metrics['recall_ceiling_blocking']:.3f}) -> {args.out}"
    )


if __name__ == "__main__":
    run("match", main)
