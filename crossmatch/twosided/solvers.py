"""One entry point per classical algorithm name and batched evaluation over many instances (§3.8, §3.7).

Tables 2–3 target SEq and Bal respectively; GS, PolyMin and PowerBalance pick their output per target
cost, DACC does not. :func:`solve_batch` runs every requested algorithm once per instance and returns
per-instance costs of the output chosen for each target, ready for means and standard errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from crossmatch.twosided.costs import blocking_pairs_batch, costs_batch
from crossmatch.twosided.dacc import dacc
from crossmatch.twosided.gale_shapley import gs_best_many
from crossmatch.twosided.instance import Instance
from crossmatch.twosided.polymin import polymin_many
from crossmatch.twosided.power_balance import power_balance_many

ALGORITHMS = ("GS", "PolyMin", "DACC", "PowerBalance")
TARGETS = ("seq", "bal")
REPORTED = ("seq", "bal", "egal", "regret")

_MANY: dict[str, Callable[[Instance, tuple[str, ...]], dict[str, np.ndarray]]] = {
    "GS": gs_best_many,
    "PolyMin": polymin_many,
    "PowerBalance": power_balance_many,
    "DACC": lambda inst, targets: dict.fromkeys(targets, dacc(inst)),
}


def solve(inst: Instance, algorithm: str, target: str = "seq") -> np.ndarray:
    """The matching of ``algorithm`` ∈ {GS, PolyMin, DACC, PowerBalance} for target cost ``target``."""
    if algorithm not in _MANY:
        raise ValueError(f"unknown algorithm {algorithm!r}; known: {ALGORITHMS}")
    return _MANY[algorithm](inst, (target,))[target]


def solve_batch(rank_a: np.ndarray, rank_b: np.ndarray, algorithms: Sequence[str] = ALGORITHMS,
                targets: Sequence[str] = TARGETS) -> dict[str, np.ndarray]:
    """Run ``algorithms`` on every instance of a batch of 0-based rank matrices (``B × N × N``).

    Returns arrays of shape ``(B,)`` keyed ``"<alg>/<target>/<cost>"`` for cost ∈ {seq, bal, egal, regret,
    blocking}; ``blocking`` (expected 0) makes the stability of every output checkable downstream.
    """
    for a in algorithms:
        if a not in _MANY:
            raise ValueError(f"unknown algorithm {a!r}; known: {ALGORITHMS}")
    tg = tuple(targets)
    matches: dict[tuple[str, str], np.ndarray] = {
        (a, t): np.empty(rank_a.shape[:2], dtype=np.int64) for a in algorithms for t in tg
    }
    for k in range(rank_a.shape[0]):
        inst = Instance(rank_a[k].astype(np.int32), rank_b[k].astype(np.int32))
        for a in algorithms:
            res = _MANY[a](inst, tg)
            for t in tg:
                matches[(a, t)][k] = res[t]
    # Costs and stability of all outputs at once (vectorised over the batch).
    out: dict[str, np.ndarray] = {}
    for (a, t), m in matches.items():
        c = costs_batch(rank_a, rank_b, m)
        for name in REPORTED:
            out[f"{a}/{t}/{name}"] = c[name]
        out[f"{a}/{t}/blocking"] = blocking_pairs_batch(rank_a, rank_b, m).astype(np.int64)
    return out
