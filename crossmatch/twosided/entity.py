"""Entity-matching glue for the ``match`` stage: blocks → disjoint markets, and pair-level scoring.

Blocks (from the blocking stage) pair fine categories of the left source with fine categories of the
right source. If one category appears in several blocks, its items would sit in several markets and the
union of per-market matchings could use an item twice; so blocks that share a category are merged
(union–find over categories) into one market. Every item then lies in at most one market and the union
of the per-market stable matchings is one-to-one.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class MarketSpec:
    block_ids: list[Hashable] = field(default_factory=list)
    left: set[str] = field(default_factory=set)
    right: set[str] = field(default_factory=set)


def merge_blocks(blocks: Iterable[tuple[Hashable, Sequence[str], Sequence[str]]]) -> list[MarketSpec]:
    """Union–find over ``("L", category)`` / ``("R", category)`` nodes; one market per component.

    ``blocks``: ``(block_id, left categories, right categories)``; rows with the same ``block_id`` belong
    together. Markets come back sorted by their smallest block id (as text) for determinism.
    """
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: tuple[str, str], b: tuple[str, str]) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    rows = []
    for bid, lefts, rights in blocks:
        nodes = [("L", str(c)) for c in lefts] + [("R", str(c)) for c in rights]
        for n in nodes:
            find(n)
        for n in nodes[1:]:
            union(nodes[0], n)
        rows.append((bid, nodes))
    by_root: dict[tuple[str, str], MarketSpec] = {}
    for bid, nodes in rows:
        if not nodes:
            continue
        spec = by_root.setdefault(find(nodes[0]), MarketSpec())
        if bid not in spec.block_ids:
            spec.block_ids.append(bid)
        for side, cat in nodes:
            (spec.left if side == "L" else spec.right).add(cat)
    markets = list(by_root.values())
    for m in markets:
        m.block_ids.sort(key=str)
    markets.sort(key=lambda m: str(m.block_ids[0]))
    return markets


@dataclass(frozen=True)
class PairScores:
    predicted: int
    true_positives: int
    truth: int
    precision: float
    recall: float
    f1: float
    labelled_predicted: int  # predictions with at least one item that occurs in the truth
    precision_labelled: float


def score_pairs(predicted: set[tuple[str, str]], truth: set[tuple[str, str]]) -> PairScores:
    """Precision, recall and F1 of predicted ``(left_item, right_item)`` pairs against true pairs.

    ``precision_labelled`` only counts predictions whose left or right item occurs in some true pair: on
    data whose truth lists only *labelled* positives (Walmart–Amazon), an unlabelled item's prediction can
    be neither confirmed nor refuted, so plain precision is a lower bound there.
    """
    tp = len(predicted & truth)
    p = tp / len(predicted) if predicted else 0.0
    r = tp / len(truth) if truth else 0.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    left_known = {a for a, _ in truth}
    right_known = {b for _, b in truth}
    labelled = {(a, b) for a, b in predicted if a in left_known or b in right_known}
    tp_l = len(labelled & truth)
    return PairScores(len(predicted), tp, len(truth), p, r, f1, len(labelled), tp_l / len(labelled) if labelled else 0.0)
