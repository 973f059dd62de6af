"""Stage ``match``: one-to-one stable matching of two sources' items over the blocking's candidates (issue 5 §6).

Inputs (contracts of the upstream stages):
    --items       <dir>/<source>/items.parquet            item_id, category[, title, fine_category] (read_items)
    --candidates  candidate_pairs.parquet                 left_item_id, right_item_id, block_id
    --blocks      blocks.parquet                          block_id, left, right (fine categories; str or list);
                                                          expanded to item pairs only when --candidates is absent
    --embeddings  <dir>/<source>.parquet or "none"        item_id, embedding (learned ICPA vectors; optional)
    --truth       product_matches.parquet or "none"       source_a, item_a, source_b, item_b (none: P / R / F1 null)
    --model       weavenet.pt                             read only when ``solver: weavenet``
Outputs:
    --out         pairs.parquet: block_id, left_source, left_item_id, right_source, right_item_id, similarity,
                  left_rank, right_rank (1-based, inside each item's candidate list), market_left, market_right
    --metrics     flat JSON: P / R / F1 against the truth (or, without, share of items matched, mean similarity), markets

A block above ``match.max_block_pairs`` item pairs keeps each item's top ``match.block_top_k`` partners by the
same similarity (crossmatch/twosided/candidates.py), never its cross product. The matching is
:func:`crossmatch.twosided.block_match.match_in_blocks` (every connected component of the
candidate graph is one market with incomplete lists); this script reads, calls it once, writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
from rich.progress import track

from crossmatch.errors import InputError
from crossmatch.truth import oriented_pair_set
from crossmatch.twosided.block_match import (
    MatchParams,
    align_embeddings,
    candidate_pairs,
    label_free,
    match_in_blocks,
)
from stages._common import console, load_section, params_as, run, write_atomic, write_json

__all__ = ["MatchParams", "main"]


def read_items(root: Path, source: str) -> pl.DataFrame:
    path = root / source / "items.parquet"
    if not path.is_file():
        raise InputError(f"items of source '{source}' not found; run the ingest stage first", file=str(path))
    items = pl.read_parquet(path)
    missing = [c for c in ("item_id", "category") if c not in items.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", file=str(path))
    # title and fine_category are optional (README): blocking's stand-ins (the category; the category names
    # as text, so the ICPA embeddings decide between the items of one category under similarity auto/blend).
    def words(c: str) -> pl.Expr:
        return pl.col(c).cast(pl.Utf8).fill_null("").str.replace_all(r"[_\-/]+", " ")
    has_fine = "fine_category" in items.columns
    names = pl.concat_str([words("category"), words("fine_category")], separator=" ") if has_fine else words("category")
    title = pl.col("title").cast(pl.Utf8) if "title" in items.columns else names
    fine = pl.col("fine_category" if has_fine else "category").cast(pl.Utf8)
    return items.select(pl.col("item_id").cast(pl.Utf8), title.alias("title"), fine.alias("fine_category"))


def read_embeddings(root: Path | None, source: str, item_ids: list[str]) -> np.ndarray | None:
    """Embeddings aligned to ``item_ids`` (NaN rows for items without one), or None if absent."""
    path = root / f"{source}.parquet" if root is not None else None
    return align_embeddings(pl.read_parquet(path), item_ids, file=str(path)) if path is not None and path.is_file() else None


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.match", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="match")
    ap.add_argument("--items", default="data/ingested")
    ap.add_argument("--candidates", default="data/blocking/candidate_pairs.parquet")
    ap.add_argument("--blocks", default="data/blocking/blocks.parquet")
    ap.add_argument("--embeddings", default="data/icpa/embeddings", help='directory of <source>.parquet, or "none"')
    ap.add_argument("--truth", default="data/truth/product_matches.parquet", help='labelled pairs, or "none"')
    ap.add_argument("--model", default="data/twosided/weavenet.pt")
    ap.add_argument("--out", default="data/match/pairs.parquet")
    ap.add_argument("--metrics", default="metrics/match.json")
    args = ap.parse_args()
    params = params_as(MatchParams, load_section(args.section, args.params), args.section)

    items_l, items_r = read_items(Path(args.items), params.left), read_items(Path(args.items), params.right)
    emb_root = None if params.similarity == "tfidf" or args.embeddings.lower() == "none" else Path(args.embeddings)
    emb = (read_embeddings(emb_root, params.left, items_l.get_column("item_id").to_list()),
           read_embeddings(emb_root, params.right, items_r.get_column("item_id").to_list()))
    cand_path, blocks_path = Path(args.candidates), Path(args.blocks)
    table = cand_path if cand_path.is_file() else blocks_path
    if not table.is_file():
        raise InputError("neither candidate pairs nor blocks found; run the blocking stage first", file=str(blocks_path))
    cand = candidate_pairs(items_l, items_r, **{"candidates" if table == cand_path else "blocks": pl.read_parquet(table)},
                           max_pairs=int(params.max_pairs), max_block_pairs=int(params.max_block_pairs),
                           block_top_k=int(params.block_top_k), embeddings=emb, blend=params.similarity == "blend",
                           file=str(table))
    truth_path = None if args.truth.lower() == "none" else Path(args.truth)
    if truth_path is not None and not truth_path.is_file():
        raise InputError('product-match truth not found (--truth none: match without it)', file=str(truth_path))
    truth = (oriented_pair_set(pl.read_parquet(truth_path), params.left, params.right, file=str(truth_path))
             if truth_path is not None else set())
    predictor = None
    if params.solver == "weavenet":
        from crossmatch.twosided.weavenet.runs import predictor_from  # torch only when WeaveNet solves

        predictor = predictor_from(Path(args.model), params.device, params.weavenet_model)

    pairs, metrics = match_in_blocks(params, items_left=items_l, items_right=items_r, candidates=cand, truth=truth,
                                     embeddings=emb, predictor=predictor,
                                     track=lambda markets: track(markets, "match", console=console, transient=True))
    if truth_path is None:
        metrics = label_free(metrics, pairs, items_l.height, items_r.height,
                             "no product-match truth (--truth none): precision, recall and F1 need labelled pairs")
    write_atomic(Path(args.out), lambda p: pairs.write_parquet(p))
    write_json(args.metrics, metrics)
    if params.solver not in metrics["solvers"]:
        console.print(f"[yellow]match: solver {params.solver} ran on no market; {metrics['solvers']} (items per solver; "
                      f"markets above dense_max = {params.dense_max} use gs_best)[/]")
    scores = ("no truth: P / R / F1 unavailable" if truth_path is None else
              f"P {metrics['precision']:.3f} R {metrics['recall']:.3f} F1 {metrics['f1']:.3f} "
              f"(recall ceiling of the blocking {metrics['recall_ceiling_blocking']:.3f})")
    console.print(
        f"match: {pairs.height} pairs from {metrics['candidate_pairs']:,} candidates in {metrics['markets']} markets "
        f"({params.solver}, {metrics['similarity']}); {scores} -> {args.out}"
        + (f"; {metrics['blocks_top_k']} block(s) above match.max_block_pairs kept each item's top {params.block_top_k} "
           f"partners ({metrics['block_pairs_before_top_k']:,} item pairs)" if metrics["blocks_top_k"] else "")
    )


if __name__ == "__main__":
    run("match", main)
