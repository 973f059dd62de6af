"""Entity-matching glue for the ``match`` stage: candidate pairs from blocks, and pair-level scoring."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass


def expand_blocks(
    blocks: Iterable[tuple[Hashable, Sequence[str], Sequence[str]]],
    left_by_category: dict[str, list[int]],
    right_by_category: dict[str, list[int]],
    max_pairs: int,
) -> dict[tuple[int, int], Hashable]:
    """Every (left row, right row) pair that shares a block → the block id (the first in text order).

    Used when the blocking stage wrote no ``candidate_pairs``; refuses to build more than ``max_pairs``.
    """
    out: dict[tuple[int, int], Hashable] = {}
    for bid, lefts, rights in sorted(blocks, key=lambda b: str(b[0])):
        rows_l = [k for c in lefts for k in left_by_category.get(c, [])]
        rows_r = [k for c in rights for k in right_by_category.get(c, [])]
        if len(out) + len(rows_l) * len(rows_r) > max_pairs:
            raise ValueError(f"blocks expand to more than {max_pairs:,} item pairs")
        for i in rows_l:
            for j in rows_r:
                out.setdefault((i, j), bid)
    return out


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
    f1_labelled: float  # harmonic mean of precision_labelled and recall


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
    p_l = tp_l / len(labelled) if labelled else 0.0
    f1_l = 2 * p_l * r / (p_l + r) if p_l + r > 0 else 0.0
    return PairScores(len(predicted), tp, len(truth), p, r, f1, len(labelled), p_l, f1_l)
