"""Stability repair after binarisation: always hand back a stable matching (issue 5 §4).

Not in the paper (it reports unstable outputs as failures); this is our addition so that the ``match``
stage can use WeaveNet safely. The rule, in the spirit of Roth & Vande Vate (1990):

1. make the assignment one-to-one: a B-agent chosen by several A-agents keeps the one with the highest
   network score (or, without scores, the one she prefers); the others become single;
2. *keep* every pair in which neither partner is part of a blocking pair — the matching restricted to
   those agents is stable among them;
3. *re-insert* every other agent one at a time. An inserted agent proposes down its list to agents already
   inserted; an acceptor takes it if she prefers it to her partner, and the displaced partner continues
   down its own list from there (deferred acceptance started from a stable matching). Each insertion
   leaves a matching that is stable on the agents inserted so far, so the end result is stable — and, with
   complete lists and ``N = M``, perfect. Agents of broken pairs are re-inserted in order of their pair's
   score (best first), A before B; single agents last.

A stable input comes back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossmatch.twosided.costs import blocking_pairs, current_ranks_batch
from crossmatch.twosided.instance import Instance


@dataclass(frozen=True)
class RepairResult:
    match: np.ndarray  # stable, perfect
    changed: bool  # the output differs from the (row-assignment) input
    blocking_before: int  # blocking pairs of the one-to-one version of the input
    was_one_to_one: bool


def make_one_to_one(inst: Instance, match: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """Step 1: resolve B-agents assigned to several A-agents (highest score wins; else B's preference)."""
    out = np.asarray(match, dtype=np.int64).copy()
    for j in np.unique(out[out >= 0]):
        rows = np.flatnonzero(out == j)
        if rows.size < 2:
            continue
        if scores is not None:
            keep = rows[np.argmax(scores[rows, j])]
        else:
            keep = rows[np.argmin(inst.rank_b[j, rows])]
        out[rows[rows != keep]] = -1
    return out


def repair(inst: Instance, match: np.ndarray, scores: np.ndarray | None = None) -> RepairResult:
    """A stable perfect matching close to ``match`` (see the module docstring for the rule)."""
    n = inst.n
    match = np.asarray(match, dtype=np.int64)
    if match.shape != (n,):
        raise ValueError(f"match must have shape ({n},), got {match.shape}")
    one = make_one_to_one(inst, match, scores)
    was_one = bool((one == match).all())
    nbp = blocking_pairs(inst, one)
    if nbp == 0 and (one >= 0).all():
        return RepairResult(one, False, 0, was_one)

    # Agents in some blocking pair (unmatched agents block with anyone who would take them).
    cur_a, cur_b = current_ranks_batch(inst.rank_a[None], inst.rank_b[None], one[None])
    blk = (inst.rank_a < cur_a[0][:, None]) & (inst.rank_b.T < cur_b[0][None, :])
    bad_a = blk.any(axis=1) | (one < 0)
    inv = np.full(n, -1, dtype=np.int64)
    inv[one[one >= 0]] = np.flatnonzero(one >= 0)
    bad_b = blk.any(axis=0) | (inv < 0)
    keep_pair = (one >= 0) & ~bad_a
    keep_pair[keep_pair] &= ~bad_b[one[keep_pair]]

    pa, pb, ra, rb = inst.lists
    prefs, ranks = (pa, pb), (ra, rb)
    mate = ([-1] * n, [-1] * n)
    present = ([False] * n, [False] * n)
    for i in np.flatnonzero(keep_pair).tolist():
        j = int(one[i])
        mate[0][i], mate[1][j] = j, i
        present[0][i] = present[1][j] = True

    broken = [i for i in range(n) if one[i] >= 0 and not keep_pair[i]]
    if scores is not None:
        broken.sort(key=lambda i: -float(scores[i, one[i]]))
    order: list[tuple[int, int]] = []
    for i in broken:
        order += [(0, i), (1, int(one[i]))]
    order += [(0, i) for i in range(n) if one[i] < 0]
    order += [(1, j) for j in range(n) if inv[j] < 0]

    for side, x in order:
        present[side][x] = True
        _insert(side, x, prefs, ranks, mate, present, n)

    out = np.asarray(mate[0], dtype=np.int64)
    return RepairResult(out, bool((out != match).any()), int(nbp), was_one)


def _insert(side: int, x: int, prefs: tuple[list[list[int]], list[list[int]]], ranks: tuple[list[list[int]], list[list[int]]],
            mate: tuple[list[int], list[int]], present: tuple[list[bool], list[bool]], n: int) -> None:
    """Deferred acceptance from a stable matching on the present agents, after ``x`` (on ``side``) arrives."""
    other = 1 - side
    p, pos = x, 0
    while pos < n:
        y = prefs[side][p][pos]
        if present[other][y]:
            h = mate[other][y]
            if h < 0 or ranks[other][y][p] < ranks[other][y][h]:
                mate[other][y] = p
                mate[side][p] = y
                if h < 0:
                    return
                mate[side][h] = -1
                p, pos = h, ranks[side][h][y] + 1  # the displaced partner continues below y
                continue
        pos += 1
