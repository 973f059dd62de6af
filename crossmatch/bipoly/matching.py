"""Matchings (sets of pairs ρ), their robust objective and the constraint families.

ALGORITHMS.md §1.1 (Bipartite / Poly / BiPoly families, reclusive and receptive components)
and §1.3 (objective F of eq. 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from crossmatch.bipoly.instance import Instance, Rewards, Side

Family = Literal["bipoly", "poly", "bipartite", "many"]


@dataclass(frozen=True)
class Matching:
    """A set of matched pairs ``ρ ⊆ L × R`` and how it was obtained.

    Attributes:
        left, right: int64 arrays of the matched pairs, sorted by ``(left, right)``.
        method: name of the method that produced it (``bipoly_s``, ``ilp_bipoly``, ...).
        objective: robust objective F (eq. 3) under the rewards it was solved for; NaN for
            many-to-many results (k-core) where F is undefined.
        seconds: wall time of the solve.
        status: ``"heuristic"`` for greedy methods; the HiGHS model status for ILPs.
        gap: relative MIP gap of an ILP (0 for a proven optimum); NaN for heuristics.
        info: free-form extras (hosts, fallback reason, threshold, ...).
    """

    left: np.ndarray
    right: np.ndarray
    method: str = ""
    objective: float = float("nan")
    seconds: float = 0.0
    status: str = "heuristic"
    gap: float = float("nan")
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_pairs(cls, left: np.ndarray, right: np.ndarray, **kw: Any) -> Matching:
        left = np.asarray(left, dtype=np.int64)
        right = np.asarray(right, dtype=np.int64)
        order = np.lexsort((right, left))
        return cls(left[order], right[order], **kw)

    @property
    def n_pairs(self) -> int:
        return int(self.left.size)

    def pairs(self) -> set[tuple[int, int]]:
        return set(zip(self.left.tolist(), self.right.tolist(), strict=True))


def degrees(left: np.ndarray, right: np.ndarray, n_left: int, n_right: int) -> tuple[np.ndarray, np.ndarray]:
    return np.bincount(left, minlength=n_left), np.bincount(right, minlength=n_right)


def is_bipoly(left: np.ndarray, right: np.ndarray, n_left: int, n_right: int) -> bool:
    """Every matched pair has an endpoint of degree 1 (Definition II.3)."""
    dl, dr = degrees(left, right, n_left, n_right)
    return bool(np.all((dl[left] == 1) | (dr[right] == 1)))


def is_poly(left: np.ndarray, right: np.ndarray, n_left: int, n_right: int, host_side: Side) -> bool:
    """Every client (node of the side opposite ``host_side``) has degree ≤ 1 (Definition II.2)."""
    dl, dr = degrees(left, right, n_left, n_right)
    clients = dr if host_side == "left" else dl
    return bool(np.all(clients <= 1))


def is_bipartite(left: np.ndarray, right: np.ndarray, n_left: int, n_right: int) -> bool:
    """Every node has degree ≤ 1 (Definition II.1)."""
    dl, dr = degrees(left, right, n_left, n_right)
    return bool(np.all(dl <= 1) and np.all(dr <= 1))


def satisfies(m: Matching, family: Family, n_left: int, n_right: int, host_side: Side = "left") -> bool:
    """Whether ``m`` lies in the constraint ``family``."""
    if family == "bipoly":
        return is_bipoly(m.left, m.right, n_left, n_right)
    if family == "poly":
        return is_poly(m.left, m.right, n_left, n_right, host_side)
    if family == "bipartite":
        return is_bipartite(m.left, m.right, n_left, n_right)
    return True


def objective(
    inst: Instance, left: np.ndarray, right: np.ndarray, rewards: Rewards, *, host_side: Side | None = None
) -> float:
    """Robust objective F of eq. 3 for a BiPoly matching (ALGORITHMS.md §1.3).

    ``F = Σ_ρ ĥ + Σ_reclusive ω_u + Σ_receptive-hosts η_u``. A star with ≥ 2 clients has its
    centre as host. A single-edge star may be hosted by either end (§1.1); without
    ``host_side`` the end with the larger ``η`` hosts it (what the ILP would choose),
    with ``host_side`` that side hosts it (the Poly and Bipartite models).

    Returns NaN when the pairs are not a BiPoly matching (F is undefined there), or when
    ``host_side`` is given and a client-side node hosts a star of ≥ 2.
    """
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    m, n = inst.n_left, inst.n_right
    dl, dr = degrees(left, right, m, n)
    if left.size and not np.all((dl[left] == 1) | (dr[right] == 1)):
        return float("nan")
    if host_side == "left" and np.any(dr >= 2):
        return float("nan")
    if host_side == "right" and np.any(dl >= 2):
        return float("nan")
    sim = float(inst.lookup(left, right).sum())
    reclusive = rewards.omega_l * int(np.sum(dl == 0)) + rewards.omega_r * int(np.sum(dr == 0))
    single = int(np.sum((dl[left] == 1) & (dr[right] == 1))) if left.size else 0
    if host_side is None:
        eta_single = max(rewards.eta_l, rewards.eta_r)
    else:
        eta_single = rewards.eta(host_side)
    receptive = rewards.eta_l * int(np.sum(dl >= 2)) + rewards.eta_r * int(np.sum(dr >= 2)) + eta_single * single
    return sim + reclusive + receptive


def hosts_of(left: np.ndarray, right: np.ndarray, n_left: int, n_right: int) -> tuple[np.ndarray, np.ndarray]:
    """Star centres: left nodes and right nodes of degree ≥ 2 (single edges have no fixed centre)."""
    dl, dr = degrees(left, right, n_left, n_right)
    return np.flatnonzero(dl >= 2), np.flatnonzero(dr >= 2)
