"""One-to-one stable matching of two sources' items inside the blocking's candidates (ALGORITHMS.md §3.8; issue 5 §6).

An item finds acceptable exactly the items it shares a block with, so every connected component of the
candidate graph is one market with incomplete lists (:mod:`.sparse_market`); the output is stable in that
sense and one-to-one overall. Pairs below ``min_similarity`` are dropped after matching.

* :class:`MatchParams` — the settings; :class:`CandidatePairs` / :func:`candidate_pairs` — candidate pairs as
  item rows, from the blocking's ``candidate_pairs`` table or expanded from its ``blocks``;
* :func:`align_embeddings` — the other input, aligned to the items (the truth: :mod:`crossmatch.truth`);
* :func:`match_in_blocks` — similarity, preferences, one solve per market, the matched pairs and the metrics.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from crossmatch.errors import ConfigError, InputError
from crossmatch.twosided.candidates import Ranking, top_k_listed, top_k_pairs
from crossmatch.twosided.entity import expand_blocks, score_pairs
from crossmatch.twosided.preferences import pair_similarity, tfidf_vectors, two_sided_scores
from crossmatch.twosided.sparse_market import SOLVERS, SparseMarket, component_labels, solve_component

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
PAIRS_SCHEMA = {"block_id": pl.Utf8, "left_source": pl.Utf8, "left_item_id": pl.Utf8, "right_source": pl.Utf8,
                "right_item_id": pl.Utf8, "similarity": pl.Float64, "left_rank": pl.Int32, "right_rank": pl.Int32,
                "market_left": pl.Int32, "market_right": pl.Int32}


@dataclass(frozen=True)
class MatchParams:
    """Settings of :func:`match_in_blocks`; errors name the key as ``match.<key>``."""

    left: str = "alpha"
    right: str = "beta"
    solver: str = "power_balance"  # gs | gs_best | power_balance | weavenet
    preferences: str = "shared"  # shared | standardized (crossmatch/twosided/preferences.py)
    similarity: str = "auto"  # auto: ICPA embeddings where present, TF-IDF otherwise | blend: their mean | tfidf
    min_similarity: float = 0.0
    dense_max: int = 400  # power_balance / weavenet need nL + nR <= this per market, else gs_best
    max_pairs: int = 2_000_000  # cap when expanding blocks without candidate pairs
    max_block_pairs: int = 250_000  # a block with more item pairs keeps each item's top block_top_k partners
    block_top_k: int = 20
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
        if int(self.max_block_pairs) < 1 or int(self.block_top_k) < 1:
            raise ConfigError("match.max_block_pairs and match.block_top_k must be >= 1")
        if self.left == self.right:
            raise ConfigError(f"match.left and match.right must differ, both are {self.left!r}")


@dataclass(frozen=True)
class CandidatePairs:
    """Candidate pairs as item rows ``(left[p], right[p])``, sorted, with the block of each pair."""

    left: np.ndarray
    right: np.ndarray
    block_ids: list[Any]
    unknown: int  # candidate rows naming items that are not in the catalogues (skipped)
    source: str  # "candidate_pairs" | "blocks": which table they came from
    blocks_top_k: int = 0  # blocks above match.max_block_pairs, cut to their items' top-k partners
    block_pairs_top_k: int = 0  # item pairs those blocks held (listed or by expansion) before the cut


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x) for x in v if x is not None]
    return [str(v)]


def _positions(items: pl.DataFrame, col: str, pos: str) -> pl.DataFrame:
    # an item id listed twice in a catalogue resolves to its last row
    ids = items.select(pl.col("item_id").cast(pl.Utf8).alias(col)).with_row_index(pos)
    return ids.unique(col, keep="last").with_columns(pl.col(pos).cast(pl.Int64))


def _from_table(items_left: pl.DataFrame, items_right: pl.DataFrame, candidates: pl.DataFrame,
                file: str | None) -> tuple[pl.DataFrame, int]:
    """(i, j, block_id, key) per distinct known pair, keeping the block id first in text order; unknown rows."""
    missing = [c for c in ("left_item_id", "right_item_id", "block_id") if c not in candidates.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", file=file)
    rows = candidates.select(pl.col("left_item_id").cast(pl.Utf8), pl.col("right_item_id").cast(pl.Utf8), "block_id")
    rows = rows.join(_positions(items_left, "left_item_id", "i"), on="left_item_id", how="left", maintain_order="left")
    rows = rows.join(_positions(items_right, "right_item_id", "j"), on="right_item_id", how="left", maintain_order="left")
    known = rows.drop_nulls(["i", "j"]).with_columns(key=pl.col("block_id").cast(pl.Utf8))
    first = known.sort("i", "j", "key", maintain_order=True).unique(["i", "j"], keep="first", maintain_order=True)
    return first.select("i", "j", "block_id", "key"), rows.height - known.height


def _shrink_listed(first: pl.DataFrame, max_block_pairs: int, k: int,
                   ranking: Callable[[], Ranking]) -> tuple[pl.DataFrame, int, int]:
    """Blocks of the candidate table with more than ``max_block_pairs`` pairs keep their items' top-``k`` partners:
    over all their item pairs when the block lists all of them, else over the listed ones."""
    sizes = first.group_by("key").agg(pl.len().alias("n"), pl.col("i").n_unique().alias("nl"),
                                      pl.col("j").n_unique().alias("nr"), pl.col("block_id").first())
    big = sizes.filter(pl.col("n") > max_block_pairs).sort("key")
    if big.height == 0:
        return first, 0, 0
    rk = ranking()
    kept = [first.join(big.select("key"), on="key", how="anti")]
    for key, n, nl, nr, bid in big.iter_rows():
        part = first.filter(pl.col("key") == key)
        i, j = part.get_column("i").to_numpy(), part.get_column("j").to_numpy()
        if n == nl * nr:  # the whole block: search it, never score its cross product
            li, rj = top_k_pairs(rk, np.unique(i), np.unique(j), k=k, block=bid)
        else:
            sim, _ = pair_similarity(i, j, (rk.tfidf_left, rk.tfidf_right), rk.emb_left, rk.emb_right, blend=rk.blend)
            sel = top_k_listed(sim, i, j, k=k)
            li, rj = i[sel], j[sel]
        kept.append(pl.DataFrame({"i": li, "j": rj, "block_id": [bid] * li.size, "key": [key] * li.size},
                                 schema=first.schema))
    return pl.concat(kept), big.height, int(big.get_column("n").sum())


def _from_blocks(items_left: pl.DataFrame, items_right: pl.DataFrame, blocks: pl.DataFrame, max_pairs: int,
                 max_block_pairs: int, k: int, ranking: Callable[[], Ranking],
                 file: str | None) -> tuple[dict[tuple[int, int], Any], int, int]:
    missing = [c for c in ("block_id", "left", "right") if c not in blocks.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; expected block_id, left, right", file=file)
    by_l: dict[str, list[int]] = {}
    by_r: dict[str, list[int]] = {}
    for n, c in enumerate(items_left.get_column("fine_category").to_list()):
        by_l.setdefault(c, []).append(n)
    for n, c in enumerate(items_right.get_column("fine_category").to_list()):
        by_r.setdefault(c, []).append(n)
    listed = [(bid, _as_list(lf), _as_list(rt)) for bid, lf, rt in blocks.select("block_id", "left", "right").iter_rows()]
    first: dict[tuple[int, int], Any] = {}
    n_top, n_replaced = 0, 0
    rk: Ranking | None = None
    for bid, lefts, rights in sorted(listed, key=lambda b: str(b[0])):  # text order: a shared pair keeps the first
        rows_l = sorted({n for c in lefts for n in by_l.get(c, [])})
        rows_r = sorted({n for c in rights for n in by_r.get(c, [])})
        if len(rows_l) * len(rows_r) > max_block_pairs:
            rk = rk or ranking()
            li, rj = top_k_pairs(rk, np.array(rows_l), np.array(rows_r), k=k, block=bid)
            n_top, n_replaced = n_top + 1, n_replaced + len(rows_l) * len(rows_r)
            if len(first) + li.size > max_pairs:
                raise InputError(f"blocks give more than {max_pairs:,} item pairs even with top-{k} partners in big "
                                 "blocks; raise match.max_pairs or lower match.block_top_k", file=file)
            for a, b in zip(li.tolist(), rj.tolist(), strict=True):
                first.setdefault((a, b), bid)
            continue
        try:
            block = expand_blocks([(bid, lefts, rights)], by_l, by_r, max_pairs - len(first))
        except ValueError:
            raise InputError(f"blocks expand to more than {max_pairs:,} item pairs; give the blocking's "
                             "candidate_pairs.parquet or raise match.max_pairs", file=file) from None
        for pair, b in block.items():
            first.setdefault(pair, b)
    return first, n_top, n_replaced


def candidate_pairs(items_left: pl.DataFrame, items_right: pl.DataFrame, *, candidates: pl.DataFrame | None = None,
                    blocks: pl.DataFrame | None = None, max_pairs: int, file: str | None = None,
                    max_block_pairs: int | None = None, block_top_k: int = 20,
                    embeddings: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
                    blend: bool = False) -> CandidatePairs:
    """Pairs from ``candidates`` (left_item_id, right_item_id, block_id; a pair listed twice keeps the block
    id first in text order), else from ``blocks`` (block_id, left, right: fine categories, str or list),
    expanded to every item pair of each block up to ``max_pairs`` in all. ``file`` names the table in errors.

    A block with more than ``max_block_pairs`` item pairs (None: no limit) keeps only each item's
    ``block_top_k`` most similar partners on the other side (:mod:`.candidates`), ranked as the match stage
    ranks: ICPA ``embeddings`` (aligned to the items; ``blend``: mean with TF-IDF) and the titles' TF-IDF.
    """
    limit = sys.maxsize if max_block_pairs is None else int(max_block_pairs)
    k = int(block_top_k)

    def ranking() -> Ranking:
        tfidf = tfidf_vectors(items_left.get_column("title").to_list(), items_right.get_column("title").to_list())
        emb = embeddings if embeddings[0] is not None and embeddings[1] is not None else (None, None)
        return Ranking(tfidf[0], tfidf[1], emb[0], emb[1], blend)

    if candidates is not None:
        table, unknown = _from_table(items_left, items_right, candidates, file)
        table, n_top, n_replaced = _shrink_listed(table, limit, k, ranking)
        table = table.sort("i", "j")
        return CandidatePairs(table.get_column("i").to_numpy().astype(np.int64),
                              table.get_column("j").to_numpy().astype(np.int64),
                              table.get_column("block_id").to_list(), unknown, "candidate_pairs", n_top, n_replaced)
    if blocks is not None:
        first, n_top, n_replaced = _from_blocks(items_left, items_right, blocks, max_pairs, limit, k, ranking, file)
    else:
        raise InputError("neither candidate pairs nor blocks given; run the blocking stage first", file=file)
    keys = sorted(first)
    left = np.array([p[0] for p in keys], dtype=np.int64)
    right = np.array([p[1] for p in keys], dtype=np.int64)
    return CandidatePairs(left, right, [first[p] for p in keys], 0, "blocks", n_top, n_replaced)


def align_embeddings(frame: pl.DataFrame, item_ids: Sequence[str], *, file: str | None = None) -> np.ndarray:
    """Embeddings (``item_id``, ``embedding``) as rows aligned to ``item_ids``; NaN rows for items without one."""
    if "item_id" not in frame.columns or "embedding" not in frame.columns:
        raise InputError("expected columns item_id, embedding", file=file)
    vecs = np.asarray(frame.get_column("embedding").to_list(), dtype=np.float64)
    if vecs.ndim != 2:
        raise InputError("embedding must be a fixed-length list per item", file=file, column="embedding")
    pos = {i: k for k, i in enumerate(frame.get_column("item_id").cast(pl.Utf8).to_list())}
    out = np.full((len(item_ids), vecs.shape[1]), np.nan)
    for k, i in enumerate(item_ids):
        if i in pos:
            out[k] = vecs[pos[i]]
    return out


def _markets(cand: CandidatePairs, n_left: int, n_right: int) -> list[np.ndarray]:
    """Candidate positions grouped by connected component of the candidate graph."""
    lab_l, _ = component_labels(cand.left, cand.right, n_left, n_right)
    comp = lab_l[cand.left]
    order = np.argsort(comp, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(comp[order])) + 1) if cand.left.size else []


def match_in_blocks(
    params: MatchParams, *, items_left: pl.DataFrame, items_right: pl.DataFrame, candidates: CandidatePairs,
    truth: set[tuple[str, str]], embeddings: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    predictor: Predictor | None = None, track: Callable[[Sequence[np.ndarray]], Iterable[np.ndarray]] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Stable one-to-one pairs inside the candidates, and the metrics (P / R / F1 against ``truth``, markets).

    Args:
        params: the settings; ``solver`` runs on every market (power_balance / weavenet above ``dense_max``
            items: gs_best, counted as such under ``solvers``).
        items_left, items_right: ``item_id``, ``title`` per source (rows are the candidates' indices).
        candidates: from :func:`candidate_pairs`.
        truth: true (left item, right item) pairs, from :func:`crossmatch.truth.oriented_pair_set`.
        embeddings: ICPA vectors aligned to each source's items (:func:`align_embeddings`), or ``None``.
        predictor: WeaveNet logits of ``(S_A, S_B)`` batches; needed by ``solver: weavenet``.
        track: wraps the list of markets for progress display.

    Returns:
        The pairs (``PAIRS_SCHEMA``: ranks are 1-based inside each item's candidate list, ``market_*`` the
        sizes of its market) and a flat metrics mapping.
    """
    left, right = candidates.left, candidates.right
    emb = embeddings if embeddings[0] is not None and embeddings[1] is not None else (None, None)
    tfidf = tfidf_vectors(items_left.get_column("title").to_list(), items_right.get_column("title").to_list())
    sim, n_icpa = pair_similarity(left, right, tfidf, *emb, blend=params.similarity == "blend")
    score_a, score_b = two_sided_scores(left, right, sim, params.preferences)  # type: ignore[arg-type]
    groups = _markets(candidates, items_left.height, items_right.height)
    st: dict[str, Any] = {"candidate_pairs": int(left.size), "pairs_scored_icpa": n_icpa, "markets": len(groups),
                          "markets_dense": 0, "markets_sparse": 0, "largest_market_left": 0, "largest_market_right": 0,
                          "weavenet_repaired": 0, "solvers": {}}
    ids_l, ids_r = items_left.get_column("item_id").to_list(), items_right.get_column("item_id").to_list()
    rows: list[tuple[Any, ...]] = []
    for g in track(groups) if track is not None else groups:
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
            rows.append((str(candidates.block_ids[p]), params.left, ids_l[nodes_l[i]], params.right, ids_r[nodes_r[j]],
                         float(sim[p]), la[i].index(j) + 1, lb[j].index(i) + 1, int(nodes_l.size), int(nodes_r.size)))
    pairs = pl.DataFrame(rows, schema=PAIRS_SCHEMA, orient="row")
    predicted = set(zip(pairs.get_column("left_item_id").to_list(), pairs.get_column("right_item_id").to_list(), strict=True))
    sc = score_pairs(predicted, truth)
    ceiling = len(truth & {(ids_l[i], ids_r[j]) for i, j in zip(left.tolist(), right.tolist(), strict=True)})
    metrics = {
        "left": params.left, "right": params.right, "solver": params.solver, "preferences": params.preferences,
        "similarity": ("icpa+tfidf blend" if params.similarity == "blend" else "icpa+tfidf") if emb[0] is not None else "tfidf",
        "min_similarity": params.min_similarity, "candidates_from": candidates.source,
        "precision": sc.precision, "recall": sc.recall, "f1": sc.f1, "pairs": sc.predicted,
        "true_positives": sc.true_positives, "truth_pairs": sc.truth,
        "precision_labelled": sc.precision_labelled, "f1_labelled": sc.f1_labelled, "pairs_labelled": sc.labelled_predicted,
        "truth_pairs_in_candidates": ceiling, "recall_ceiling_blocking": ceiling / sc.truth if sc.truth else 0.0,
        "candidate_rows_unknown_items": candidates.unknown, "blocks_top_k": candidates.blocks_top_k,
        "block_pairs_before_top_k": candidates.block_pairs_top_k, **st,
    }
    return pairs, metrics


NO_TRUTH_KEYS = ("precision", "recall", "f1", "true_positives", "truth_pairs", "precision_labelled", "f1_labelled",
                 "pairs_labelled", "truth_pairs_in_candidates", "recall_ceiling_blocking")


def label_free(metrics: dict[str, Any], pairs: pl.DataFrame, n_left: int, n_right: int, reason: str) -> dict[str, Any]:
    """``metrics`` of :func:`match_in_blocks` without truth: its truth-based figures null, the reason, and what
    needs no labels (share of each side matched, mean similarity)."""
    return {**metrics, **dict.fromkeys(NO_TRUTH_KEYS), "truth_unavailable": reason, "left_items": n_left,
            "right_items": n_right, "left_matched_share": pairs.height / max(n_left, 1),
            "right_matched_share": pairs.height / max(n_right, 1),
            "mean_similarity": float(np.mean(pairs.get_column("similarity").to_numpy())) if pairs.height else None}
