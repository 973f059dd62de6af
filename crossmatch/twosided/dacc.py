"""DACC: Deferred Acceptance with Compensation Chains (Dworczak 2016), Tziavelis's deterministic
sequence (ALGORITHMS.md §3.8.4).

Both sides propose. Every agent keeps a *budget* (its list with deletions; ``κ`` = best index still in
it) and ``mate`` (rank index of its partner, ``n`` = single). When an agent is left by a partner it had
once proposed to, it is owed a *compensation chain*: it goes on a stack and proposes before the regular
sequence continues. Worst case O(n⁴); runs on Python lists.
"""

from __future__ import annotations

import numpy as np

from crossmatch.twosided.instance import Instance


class _Dacc:
    __slots__ = ("n", "pref", "rank", "kappa", "deleted", "mate", "applied", "cc")

    def __init__(self, inst: Instance) -> None:
        pa, pb, ra, rb = inst.lists
        n = inst.n
        self.n = n
        self.pref = (pa, pb)
        self.rank = (ra, rb)
        self.kappa = ([0] * n, [0] * n)
        self.deleted = ([[False] * n for _ in range(n)], [[False] * n for _ in range(n)])
        self.mate = ([n] * n, [n] * n)
        self.applied: tuple[list[set[int]], list[set[int]]] = ([set() for _ in range(n)], [set() for _ in range(n)])
        self.cc: list[tuple[int, int]] = []  # (side, agent) owed a compensation chain

    def _delete(self, side: int, x: int, k: int) -> None:
        """Remove rank index ``k`` from ``x``'s budget and move ``κ(x)`` to the next index still in it."""
        dx = self.deleted[side][x]
        dx[k] = True
        kap = self.kappa[side]
        while kap[x] < self.n and dx[kap[x]]:
            kap[x] += 1

    def _leave(self, side: int, x_prime: int, partner: int) -> None:
        """``x_prime`` (on ``side``) loses ``partner``: owed a chain if it had proposed to her; she leaves its budget."""
        if partner in self.applied[side][x_prime]:
            self.cc.append((side, x_prime))
        self._delete(side, x_prime, self.rank[side][x_prime][partner])
        self.mate[side][x_prime] = self.n

    def propose(self, side: int, x: int) -> None:
        """``Propose(x)`` of §3.8.4."""
        n = self.n
        kap, mate = self.kappa[side], self.mate[side]
        if mate[x] <= kap[x] or kap[x] == n:
            return
        other = 1 - side
        y = self.pref[side][x][kap[x]]
        self.applied[other][y].add(x)
        r = self.rank[other][y][x]
        self.deleted[other][y][r] = False  # x re-enters y's budget
        ky = self.kappa[other]
        if r < ky[y]:
            ky[y] = r
        mate_o = self.mate[other]
        if mate_o[y] > r:  # y prefers x to what it holds: accept
            if mate[x] < n:
                x_prime = self.pref[side][x][mate[x]]  # x's current partner (on the other side)
                self._leave(other, x_prime, x)
            if mate_o[y] < n:
                y_prime = self.pref[other][y][mate_o[y]]  # y's current partner (on x's side)
                self._leave(side, y_prime, y)
            mate[x] = self.rank[side][x][y]
            mate_o[y] = r
        else:
            self._delete(side, x, kap[x])

    def unsettled(self) -> bool:
        """Some agent still has a budget top better than its partner (``κ(x) < mate(x)``)."""
        return any(k < m for s in (0, 1) for k, m in zip(self.kappa[s], self.mate[s], strict=True))

    def can_propose(self, side: int) -> bool:
        n = self.n
        return any(k < m and k < n for k, m in zip(self.kappa[side], self.mate[side], strict=True))

    def drain_chains(self) -> None:
        """Serve the compensation stack: the top agent proposes until matched or out of budget."""
        n = self.n
        while self.cc:
            idx = len(self.cc) - 1
            side, x = self.cc[idx]
            self.propose(side, x)
            if self.mate[side][x] < n or self.kappa[side][x] == n:
                del self.cc[idx]  # entries pushed meanwhile sit above idx, so idx still points at x
            elif len(self.cc) - 1 == idx and self.mate[side][x] <= self.kappa[side][x]:
                del self.cc[idx]  # defensive: nothing left for x to do

    def run(self) -> np.ndarray:
        n = self.n
        guard = 4 * n**4 + 1000
        steps = 0
        while self.unsettled():
            can_a, can_b = self.can_propose(0), self.can_propose(1)
            if not can_a:
                side = 1
            elif not can_b:
                side = 0
            else:
                side = 0 if sum(self.kappa[0]) < sum(self.kappa[1]) else 1
            kap, mate = self.kappa[side], self.mate[side]
            for i in range(n):
                if self.cc:
                    self.drain_chains()
                # Inline copy of Propose's first test: most agents are settled, skip the call.
                if mate[i] > kap[i] < n:
                    self.propose(side, i)
            if self.cc:
                self.drain_chains()
            steps += 1
            if steps > guard:
                raise RuntimeError("DACC did not settle within its O(n^4) bound; please report this instance")
        pa, mate_a = self.pref[0], self.mate[0]
        return np.array([pa[x][mate_a[x]] if mate_a[x] < n else -1 for x in range(n)], dtype=np.int64)


def dacc(inst: Instance) -> np.ndarray:
    """§3.8.4 DACC (deterministic variant); cost-independent, so Tables 2 and 3 share one run."""
    return _Dacc(inst).run()
