"""Rotations of a stable-marriage instance and their poset (Irving–Leather–Gusfield; ALGORITHMS.md §3.8.2).

The stable matchings form a distributive lattice between ``M_A`` (A-optimal) and ``M_B`` (B-optimal);
every stable matching is ``M_A`` with a closed (predecessor-complete) set of rotations eliminated. This
module walks from ``M_A`` to ``M_B`` collecting every rotation once, builds the precedence edges, and
implements BreakMarriage (Gusfield), which the min-regret search uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossmatch.twosided.gale_shapley import gale_shapley
from crossmatch.twosided.instance import Instance


@dataclass(frozen=True)
class Rotation:
    """``pairs = ((x_0, y_0), …, (x_{r−1}, y_{r−1}))``: eliminating it marries ``x_i`` to ``y_{i+1 mod r}``."""

    pairs: tuple[tuple[int, int], ...]

    def apply(self, match: list[int]) -> None:
        """Eliminate this rotation in place on A's partner list."""
        r = len(self.pairs)
        for i, (x, _) in enumerate(self.pairs):
            match[x] = self.pairs[(i + 1) % r][1]

    def egal_decrease(self, rank_a: list[list[int]], rank_b: list[list[int]]) -> int:
        """``w(ρ)``: how much eliminating ρ lowers Egal (§3.8.2 step 3)."""
        r = len(self.pairs)
        w = 0
        for i, (x, y) in enumerate(self.pairs):
            y_next = self.pairs[(i + 1) % r][1]
            w += rank_a[x][y] + rank_b[y][x] - rank_a[x][y_next] - rank_b[y_next][x]
        return w


@dataclass(frozen=True)
class RotationPoset:
    m_a: list[int]  # A-optimal matching
    m_b: list[int]  # B-optimal matching
    rotations: list[Rotation]  # in elimination order from M_A: a linear extension of the poset
    preds: list[set[int]]  # preds[k]: rotations that must be eliminated before rotation k


def rotation_poset(inst: Instance) -> RotationPoset:
    """All rotations in one walk from ``M_A`` to ``M_B`` and their precedence (§3.8.2 step 1–2)."""
    pa, pb, ra, rb = inst.lists
    n = inst.n
    m_a = gale_shapley(inst, "a").tolist()
    m_b = gale_shapley(inst, "b").tolist()
    cur = m_a[:]
    inv = [0] * n
    for x, y in enumerate(cur):
        inv[y] = x
    # ptr[x]: position on x's list from which s(x) is searched; it only moves forward, since
    # every B-agent's partner only improves along the walk (amortised O(n²) scanning).
    ptr = [ra[x][cur[x]] + 1 for x in range(n)]
    rotations: list[Rotation] = []

    def s_of(x: int) -> int:
        lst = pa[x]
        p = ptr[x]
        while True:
            y = lst[p]
            rby = rb[y]
            if rby[x] < rby[inv[y]]:
                ptr[x] = p
                return y
            p += 1

    while True:
        todo = [x for x in range(n) if cur[x] != m_b[x]]
        if not todo:
            break
        # Follow next(x) = M(s(x)) from an unfinished agent until a node repeats: that cycle is exposed.
        path: list[int] = []
        pos: dict[int, int] = {}
        x = todo[0]
        while x not in pos:
            pos[x] = len(path)
            path.append(x)
            x = inv[s_of(x)]
        cycle = path[pos[x]:]
        rot = Rotation(tuple((c, cur[c]) for c in cycle))
        rot.apply(cur)
        for c in cycle:
            inv[cur[c]] = c
            ptr[c] = max(ptr[c], ra[c][cur[c]] + 1)
        rotations.append(rot)

    preds = _precedence(rotations, pa, ra, rb, n)
    return RotationPoset(m_a, m_b, rotations, preds)


def _precedence(rotations: list[Rotation], pa: list[list[int]], ra: list[list[int]], rb: list[list[int]], n: int) -> list[set[int]]:
    """Edges of §3.8.2 step 2: (i) successive rotations moving the same A-agent; (ii) for π moving x from
    y to y' and z strictly between them on x's list, the rotation moving z across x precedes π."""
    preds: list[set[int]] = [set() for _ in rotations]
    last_moving: dict[int, int] = {}
    # crossings[z]: (rank of z's old partner, rank of z's new partner, rotation) in lattice order.
    crossings: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
    for k, rot in enumerate(rotations):
        r = len(rot.pairs)
        for i, (x, _) in enumerate(rot.pairs):
            if x in last_moving:
                preds[k].add(last_moving[x])
            last_moving[x] = k
            y_new = rot.pairs[(i + 1) % r][1]
            # B-agent y_new trades its partner pairs[i+1].x for x.
            x_old = rot.pairs[(i + 1) % r][0]
            crossings[y_new].append((rb[y_new][x_old], rb[y_new][x], k))
    for k, rot in enumerate(rotations):
        r = len(rot.pairs)
        for i, (x, y) in enumerate(rot.pairs):
            y_new = rot.pairs[(i + 1) % r][1]
            for pos in range(ra[x][y] + 1, ra[x][y_new]):
                z = pa[x][pos]
                rz = rb[z][x]
                for old_rank, new_rank, kk in crossings[z]:
                    if old_rank > rz > new_rank:
                        if kk != k:
                            preds[k].add(kk)
                        break
    return preds


def apply_rotations(m_a: list[int], rotations: list[Rotation], chosen: list[int]) -> np.ndarray:
    """``M_A`` with the rotations ``chosen`` (indices, any order) eliminated in elimination order."""
    cur = m_a[:]
    for k in sorted(chosen):
        rotations[k].apply(cur)
    return np.asarray(cur, dtype=np.int64)


def break_marriage(match: list[int], x: int, pref_p: list[list[int]], rank_p: list[list[int]],
                   rank_q: list[list[int]]) -> list[int] | None:
    """Gusfield's BreakMarriage with ``x`` on the proposing side (§3.8.2): ``x`` leaves ``y``, who will only
    accept someone she prefers to ``x``; ``x`` proposes down its list from after ``y``; each acceptor takes a
    proposer she prefers to her partner and the displaced partner proposes next; the chain ends when ``y``
    accepts. Returns the next stable matching in which ``x`` is worse off, or None if a proposer runs out
    of candidates (``x`` is already at its worst stable partner).

    ``match``: proposer → acceptor; ``rank_p[i][j]`` proposer i's rank of j, ``rank_q[j][i]`` likewise.
    """
    n = len(match)
    cur = match[:]
    inv = [0] * n
    for i, j in enumerate(cur):
        inv[j] = i
    y = cur[x]
    inv[y] = x  # y stays "engaged" to x until somebody better proposes
    p = x
    pos = rank_p[x][y] + 1
    while True:
        if pos >= n:
            return None
        j = pref_p[p][pos]
        rq = rank_q[j]
        if rq[p] < rq[inv[j]]:
            displaced = inv[j]
            cur[p] = j
            inv[j] = p
            if j == y:
                return cur
            p = displaced
            pos = rank_p[p][j] + 1
        else:
            pos += 1
