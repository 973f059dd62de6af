"""PowerBalance (Tziavelis et al. 2019): strongly deferred acceptance, the stronger side concedes
(ALGORITHMS.md §3.8.5).

Every agent ``x`` (both sides) has a pointer ``κ(x)`` into its list that is both its next proposal target
and its acceptance threshold, and a flag ``engaged(x)``; an engaged agent's partner is ``pref_x[κ(x)]``.
The main loop runs rounds in which one side proposes; after ``R = n·⌈(log2 n)²/10⌉`` rounds, *Finish*
completes the matching from the saved state twice (A then B proposing, and B then A) and keeps the
cheaper result for the target cost.

Sequential by nature (one proposal changes the next one's threshold), so it runs on Python lists;
the main loop shares state across target costs, so several costs cost one main loop.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from crossmatch.twosided.costs import costs
from crossmatch.twosided.instance import Instance


class _State:
    """Pointers and engagement flags of both sides (side 0 = A, side 1 = B).

    Bookkeeping kept incrementally so one round costs O(proposals), not O(n): per side the set of
    agents that can propose (not engaged, list not exhausted), the pointer sum, and the engaged count.
    """

    __slots__ = ("kappa", "engaged", "pref", "rank", "n", "free", "ksum", "n_engaged")

    def __init__(self, pref: tuple[list[list[int]], list[list[int]]], rank: tuple[list[list[int]], list[list[int]]], n: int) -> None:
        self.pref = pref
        self.rank = rank
        self.n = n
        self.kappa = ([0] * n, [0] * n)
        self.engaged = ([False] * n, [False] * n)
        self.free = (set(range(n)), set(range(n)))
        self.ksum = [0, 0]
        self.n_engaged = [0, 0]

    def copy(self) -> _State:
        s = _State(self.pref, self.rank, self.n)
        s.kappa = (self.kappa[0][:], self.kappa[1][:])
        s.engaged = (self.engaged[0][:], self.engaged[1][:])
        s.free = (set(self.free[0]), set(self.free[1]))
        s.ksum = self.ksum[:]
        s.n_engaged = self.n_engaged[:]
        return s

    def propose(self, side: int, x: int) -> int:
        """``Propose(x)``; returns -1 if nothing was issued, else the released agent of ``side`` (or ``n``).

        ``Accept(y, x)``: ``y`` takes ``x`` iff ``κ(y) ≥ rank_y(x)``; an engaged ``y`` releases its partner
        ``pref_y[κ(y)]``; ``κ(y)`` becomes ``rank_y(x)``. A rejected ``x`` moves its pointer on.
        """
        n = self.n
        kx = self.kappa[side]
        if self.engaged[side][x] or kx[x] == n:
            return -1
        y = self.pref[side][x][kx[x]]
        other = 1 - side
        r = self.rank[other][y][x]
        ky = self.kappa[other]
        released = n
        if ky[y] >= r:
            eng_y = self.engaged[other]
            if eng_y[y]:
                released = self.pref[other][y][ky[y]]
                self.engaged[side][released] = False
                self.n_engaged[side] -= 1
                if kx[released] < n:
                    self.free[side].add(released)
            else:
                eng_y[y] = True
                self.n_engaged[other] += 1
                self.free[other].discard(y)
            self.ksum[other] += r - ky[y]
            ky[y] = r
            self.engaged[side][x] = True
            self.n_engaged[side] += 1
            self.free[side].discard(x)
        else:
            kx[x] += 1
            self.ksum[side] += 1
            if kx[x] == n:
                self.free[side].discard(x)
        return released

    def one_round(self, side: int) -> None:
        """Every agent of ``side``, in index order, calls Propose once. Only agents that can propose at
        their turn matter: those free at the start, plus agents released during the round whose index
        comes later (an earlier index has had its turn). Propose is inlined: this loop is the hot path."""
        n = self.n
        other = 1 - side
        kx, ky = self.kappa[side], self.kappa[other]
        ex, ey = self.engaged[side], self.engaged[other]
        px, py = self.pref[side], self.pref[other]
        ry = self.rank[other]
        free_x, free_y = self.free[side], self.free[other]
        heap = sorted(free_x)
        pop, push = heapq.heappop, heapq.heappush
        ksum_x = ksum_y = 0
        eng_x = eng_y = 0
        while heap:
            x = pop(heap)
            if ex[x] or kx[x] == n:
                continue
            y = px[x][kx[x]]
            r = ry[y][x]
            if ky[y] >= r:
                if ey[y]:
                    z = py[y][ky[y]]  # y's partner is released
                    ex[z] = False
                    eng_x -= 1
                    if kx[z] < n:
                        free_x.add(z)
                        if z > x:
                            push(heap, z)
                else:
                    ey[y] = True
                    eng_y += 1
                    free_y.discard(y)
                ksum_y += r - ky[y]
                ky[y] = r
                ex[x] = True
                eng_x += 1
                free_x.discard(x)
            else:
                kx[x] += 1
                ksum_x += 1
                if kx[x] == n:
                    free_x.discard(x)
        self.ksum[side] += ksum_x
        self.ksum[other] += ksum_y
        self.n_engaged[side] += eng_x
        self.n_engaged[other] += eng_y

    def until_idle(self, side: int) -> None:
        """Full sweeps of ``side``; each agent proposes while it can, until a sweep issues nothing."""
        n = self.n
        pending = sorted(self.free[side])
        while pending:
            heap = pending
            heapq.heapify(heap)
            later: list[int] = []
            while heap:
                x = heapq.heappop(heap)
                while True:
                    z = self.propose(side, x)
                    if z < 0:
                        break
                    if z < n:
                        (heapq.heappush(heap, z) if z > x else later.append(z))
            pending = sorted(set(later) & self.free[side])

    def matching(self) -> np.ndarray:
        """A's partners (-1 for a non-engaged A-agent)."""
        pa, ka, ea = self.pref[0], self.kappa[0], self.engaged[0]
        return np.array([pa[i][ka[i]] if ea[i] else -1 for i in range(self.n)], dtype=np.int64)


def rounds_limit(n: int) -> int:
    """``R = n · ⌈(log2 n)² / 10⌉`` (40, 90, 500 for n = 20, 30, 100); at least 1."""
    if n < 2:
        return 1
    return n * max(1, math.ceil(math.log2(n) ** 2 / 10))


def power_balance_many(inst: Instance, cost_names: tuple[str, ...] = ("seq", "bal")) -> dict[str, np.ndarray]:
    """PowerBalance for several target costs (``seq``/``bal``/``egal``/``regret``) sharing the main loop."""
    pa, pb, ra, rb = inst.lists
    n = inst.n
    st = _State((pa, pb), (ra, rb), n)
    limit = rounds_limit(n)
    rnd = 0
    while st.n_engaged[0] < n:
        rnd += 1
        if rnd >= limit:
            return _finish(inst, st, cost_names)
        can_a, can_b = bool(st.free[0]), bool(st.free[1])
        if not can_a:
            side = 1
        elif not can_b:
            side = 0
        else:
            # The side that is better off (smaller pointer sum) makes the concessions (B if ΣκA ≥ ΣκB).
            side = 1 if st.ksum[0] >= st.ksum[1] else 0
        st.one_round(side)
    m = st.matching()
    return {c: m for c in cost_names}


def _finish(inst: Instance, saved: _State, cost_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """*Finish*: (a) A until idle, then B → M1; (b) B until idle, then A → M2; keep M1 only if strictly cheaper."""
    s1 = saved.copy()
    s1.until_idle(0)
    s1.until_idle(1)
    s2 = saved.copy()
    s2.until_idle(1)
    s2.until_idle(0)
    m1, m2 = s1.matching(), s2.matching()
    c1, c2 = costs(inst, m1), costs(inst, m2)
    return {c: (m1 if c1.get(c) < c2.get(c) else m2) for c in cost_names}


def power_balance(inst: Instance, cost: str = "seq") -> np.ndarray:
    """§3.8.5 PowerBalance with target cost ``cost`` (SEq for Table 2, Bal for Table 3)."""
    return power_balance_many(inst, (cost,))[cost]
