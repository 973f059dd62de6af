"""A literal, slow transcription of BiPoly.S (ALGORITHMS.md §1.5) — the executable specification.

Every round re-evaluates every available node from scratch and takes the minimum key, exactly as
the main loop of §1.5 reads (no priority queue, no caching). Tests check that the fast kernel of
:mod:`crossmatch.bipoly.greedy` returns the same matching; the benchmarks use it as the
straightforward Python baseline for the authors' algorithm. Pure Python on a dense matrix:
for small instances only.
"""

from __future__ import annotations

import numpy as np

from crossmatch.bipoly.instance import Rewards


def bipoly_s_reference(h: np.ndarray, rewards: Rewards, *, exact_prefix_scan: bool = False) -> set[tuple[int, int]]:
    """BiPoly.S on a dense ``m × n`` array of ĥ; returns the matched ``(l, r)`` pairs."""
    m, n = h.shape
    # node u: ("L", l) or ("R", r); candidate lists by distance ascending, ties by index (stable)
    cand: dict[tuple[str, int], list[tuple[float, int]]] = {}
    for i in range(m):
        cand[("L", i)] = sorted((1.0 - float(h[i, j]), j) for j in range(n) if h[i, j] > 0)
    for j in range(n):
        cand[("R", j)] = sorted((1.0 - float(h[i, j]), i) for i in range(m) if h[i, j] > 0)
    avail = {"L": set(range(m)), "R": set(range(n))}
    omega = {"L": rewards.omega_l, "R": rewards.omega_r}
    eta = {"L": rewards.eta_l, "R": rewards.eta_r}
    other = {"L": "R", "R": "L"}
    pairs: set[tuple[int, int]] = set()

    def evaluate(side: str, u: int) -> tuple[float, list[int]]:
        best, clients = 1.0 - omega[side], []
        a, total, scanned = 1.0 - eta[side], 0.0, []
        for d, c in cand[(side, u)]:
            if c not in avail[other[side]]:
                continue
            total += d
            scanned.append(c)
            price = (a + total) / (len(scanned) + 1)
            if price < best:
                best, clients = price, list(scanned)
            elif not exact_prefix_scan:
                break
        return best, clients

    while avail["L"] and avail["R"]:
        best_key: tuple[float, int, int, int] | None = None
        best_pick: tuple[str, int, list[int]] | None = None
        for side in ("R", "L"):  # tie rule: right-side hosts before left-side hosts
            for u in sorted(avail[side]):
                price, clients = evaluate(side, u)
                key = (price, 1 if clients else 0, 0 if side == "R" else 1, u)
                if best_key is None or key < best_key:
                    best_key, best_pick = key, (side, u, clients)
        assert best_pick is not None
        side, u, clients = best_pick
        avail[side].discard(u)
        for c in clients:
            avail[other[side]].discard(c)
            pairs.add((u, c) if side == "L" else (c, u))
    return pairs
