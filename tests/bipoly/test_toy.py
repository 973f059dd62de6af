"""The paper's toy example (Fig. 2): max-weight Bipartite, Poly and BiPoly on L = {A..D}, R = {1..4}.

The seed text names the Bipartite and Poly results but not the figure's adjacency matrix, so the
matrix below is our reconstruction: it reproduces both named results exactly (Bipartite
{A2, B3, C1, D4}; Poly with L matched into R, {A1, D1, B3, C3}). BiPoly then shows what Fig. 2
illustrates: stars with hosts on both sides (A hosts 1 and 2; 3 hosts B and C).
"""

from __future__ import annotations

import numpy as np

from crossmatch.bipoly import MAX_WEIGHT, IlpConfig, Instance, solve_ilp

L, R = "ABCD", "1234"
H = np.array(
    [
        [0.9, 0.8, 0.1, 0.0],  # A
        [0.1, 0.2, 0.9, 0.1],  # B
        [0.7, 0.1, 0.8, 0.1],  # C
        [0.8, 0.1, 0.0, 0.5],  # D
    ]
)


def names(m) -> set[str]:
    return {f"{L[a]}{R[b]}" for a, b in m.pairs()}


def test_fig2_matchings() -> None:
    inst = Instance.from_dense(H, keep_zeros=True)
    exact = dict(mip_gap=0.0)
    bipartite = solve_ilp(inst, MAX_WEIGHT, IlpConfig(family="bipartite", **exact))
    # Definition II.2: every left node has degree <= 1, i.e. hosts on the right
    poly = solve_ilp(inst, MAX_WEIGHT, IlpConfig(family="poly", host_side="right", **exact))
    bipoly = solve_ilp(inst, MAX_WEIGHT, IlpConfig(family="bipoly", **exact))
    assert names(bipartite) == {"A2", "B3", "C1", "D4"}
    assert names(poly) == {"A1", "D1", "B3", "C3"}
    assert names(bipoly) == {"A1", "A2", "B3", "C3", "D4"}
    assert np.isclose(bipartite.objective, 2.9) and np.isclose(poly.objective, 3.4) and np.isclose(bipoly.objective, 3.9)
    # the least restrictive family has the highest max-weight objective
    assert bipoly.objective > poly.objective > bipartite.objective
