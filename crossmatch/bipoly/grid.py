"""The ω/η grid search and per-partition solves, over any ``concurrent.futures`` executor (ALGORITHMS.md §1.3
"Parameter search", paper Sec. V-C).

The library never creates processes itself: callers pass an executor (thread or process pool,
or ``None`` for in-process), which is the scale-out hook — a Dask or Ray executor with the same
``submit``/``map`` interface plugs in unchanged. Work units are module-level functions on
picklable arguments, so process pools work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from crossmatch.bipoly.baselines import bipartite_greedy
from crossmatch.bipoly.center import bipoly_c
from crossmatch.bipoly.greedy import bipoly_s, poly_greedy, uflp_greedy
from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.matching import Matching
from crossmatch.bipoly.metrics import BlockingTruth
from crossmatch.errors import ConfigError

GREEDY_METHODS: tuple[str, ...] = ("bipoly_s", "bipoly_c", "poly", "bipartite", "uflp")


def run_greedy(method: str, inst: Instance, rewards: Rewards, host_side: Side = "left") -> Matching | None:
    """One greedy method at one reward setting; ``None`` where the setting is outside the method's
    domain (UFLP needs ``η_host ≤ 0``: its opening cost is ``f = −η``)."""
    if method == "bipoly_s":
        return bipoly_s(inst, rewards)
    if method == "bipoly_c":
        return bipoly_c(inst, rewards)
    if method == "poly":
        return poly_greedy(inst, rewards, host_side=host_side)
    if method == "bipartite":
        return bipartite_greedy(inst, rewards)
    if method == "uflp":
        f = -rewards.eta(host_side)
        return uflp_greedy(inst, f, host_side=host_side) if f >= 0 else None
    raise ConfigError(f"unknown greedy method {method!r}; choose from {list(GREEDY_METHODS)}")


def value_range(spec: Sequence[float]) -> list[float]:
    """``[start, stop, step]`` → the inclusive list of values, rounded to 10 decimals."""
    if len(spec) != 3:
        raise ConfigError(f"a grid axis is [start, stop, step], got {list(spec)}")
    start, stop, step = (float(x) for x in spec)
    if step <= 0 or stop < start:
        raise ConfigError(f"grid axis needs step > 0 and stop >= start, got {list(spec)}")
    n = int(np.floor((stop - start) / step + 1e-9)) + 1
    return [round(start + i * step, 10) for i in range(n)]


def grid_points(omega: Sequence[float], eta: Sequence[float], *, tie_sides: bool = True) -> list[Rewards]:
    """Reward settings of the grid: ``ω × η`` with ``ω_L = ω_R``, ``η_L = η_R`` (the paper's 21 × 21),
    or the full per-side product ``ω_L × ω_R × η_L × η_R`` when ``tie_sides`` is false."""
    if tie_sides:
        return [Rewards.tied(o, e) for o in omega for e in eta]
    return [Rewards(ol, orr, el, er) for ol in omega for orr in omega for el in eta for er in eta]


@dataclass(frozen=True)
class GridRow:
    method: str
    rewards: Rewards
    coverage: float
    reduction: float
    tradeoff: float
    n_pairs: int
    objective: float

    def as_dict(self) -> dict[str, Any]:
        o_l, o_r, e_l, e_r = self.rewards.as_tuple()
        return {"method": self.method, "omega_l": o_l, "omega_r": o_r, "eta_l": e_l, "eta_r": e_r,
                "coverage": self.coverage, "reduction": self.reduction, "tradeoff": self.tradeoff,
                "n_pairs": self.n_pairs, "objective": self.objective}


def _grid_chunk(method: str, inst: Instance, truth: BlockingTruth, points: list[Rewards], host_side: Side) -> list[GridRow]:
    rows = []
    for rw in points:
        m = run_greedy(method, inst, rw, host_side)
        if m is None:
            continue
        s = truth.score_matching(m)
        rows.append(GridRow(method, rw, s.coverage, s.reduction, s.tradeoff, m.n_pairs, m.objective))
    return rows


def grid_search(
    methods: Sequence[str],
    inst: Instance,
    truth: BlockingTruth,
    points: Sequence[Rewards],
    *,
    host_side: Side = "left",
    executor: Executor | None = None,
    chunks_per_method: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[GridRow]:
    """Every greedy ``method`` at every grid point, scored on the tuning labels ``truth``.

    Rows come back in (method, grid) order whatever the executor, so results are deterministic.
    ``on_progress(done, total)`` is called as chunks finish (a progress bar's hook).
    """
    for mt in methods:
        if mt not in GREEDY_METHODS:
            raise ConfigError(f"unknown greedy method {mt!r}; choose from {list(GREEDY_METHODS)}")
    pts = list(points)
    size = max(1, -(-len(pts) // max(1, chunks_per_method)))
    tasks = [(mt, pts[i : i + size]) for mt in methods for i in range(0, len(pts), size)]
    parts: list[list[GridRow]] = [[] for _ in tasks]
    if executor is None:
        for i, (mt, chunk) in enumerate(tasks):
            parts[i] = _grid_chunk(mt, inst, truth, chunk, host_side)
            if on_progress is not None:
                on_progress(i + 1, len(tasks))
    else:
        futures = {executor.submit(_grid_chunk, mt, inst, truth, chunk, host_side): i for i, (mt, chunk) in enumerate(tasks)}
        for done, fut in enumerate(as_completed(futures), start=1):
            parts[futures[fut]] = fut.result()
            if on_progress is not None:
                on_progress(done, len(tasks))
    return [row for part in parts for row in part]


def best_rows(rows: Sequence[GridRow]) -> dict[str, GridRow]:
    """Best tradeoff per method; ties keep the first row in grid order."""
    best: dict[str, GridRow] = {}
    for r in rows:
        if r.method not in best or r.tradeoff > best[r.method].tradeoff:
            best[r.method] = r
    return best


def split_by_groups(inst: Instance, group_left: np.ndarray, group_right: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, Instance]]:
    """Partition an instance by a group label per node (e.g. the shared coarse category).

    Pairs across groups are dropped. Returns ``(left ids, right ids, sub-instance)`` per group that
    has nodes on both sides; nodes of one-sided groups are simply never matched.
    """
    keep = group_left[inst.left] == group_right[inst.right]
    out = []
    for g in np.unique(np.r_[group_left, group_right]):
        li = np.flatnonzero(group_left == g)
        ri = np.flatnonzero(group_right == g)
        if li.size == 0 or ri.size == 0:
            continue
        sel = keep & (group_left[inst.left] == g)
        pos_l = np.full(inst.n_left, -1)
        pos_l[li] = np.arange(li.size)
        pos_r = np.full(inst.n_right, -1)
        pos_r[ri] = np.arange(ri.size)
        sub = Instance(li.size, ri.size, pos_l[inst.left[sel]], pos_r[inst.right[sel]], inst.weight[sel])
        out.append((li, ri, sub))
    return out


def solve_partitioned(
    parts: Sequence[tuple[np.ndarray, np.ndarray, Instance]],
    solve: Callable[[Instance], Matching],
    *,
    executor: Executor | None = None,
) -> list[Matching]:
    """Solve each partition with ``solve`` (picklable for process pools) and map pairs back to global ids."""
    return solve_partitioned_many(parts, [solve], executor=executor)[0]


def solve_partitioned_many(
    parts: Sequence[tuple[np.ndarray, np.ndarray, Instance]],
    solvers: Sequence[Callable[[Instance], Matching]],
    *,
    executor: Executor | None = None,
) -> list[list[Matching]]:
    """Every solver on every partition, all submitted to ``executor`` at once (e.g. one ILP per reward
    setting, ALGORITHMS.md §1.3 "Parameter search"); per solver, the partitions' matchings in global ids."""
    jobs = [(solve, sub) for solve in solvers for _, _, sub in parts]
    if executor is None:
        results = [solve(sub) for solve, sub in jobs]
    else:
        results = [f.result() for f in [executor.submit(solve, sub) for solve, sub in jobs]]
    mapped = [
        Matching.from_pairs(li[m.left], ri[m.right], method=m.method, objective=m.objective, seconds=m.seconds,
                            status=m.status, gap=m.gap, info=m.info)
        for (li, ri, _), m in zip(list(parts) * len(solvers), results, strict=True)
    ]
    n = len(parts)
    return [mapped[i * n:(i + 1) * n] for i in range(len(solvers))]


def merge(matchings: Sequence[Matching], method: str) -> Matching:
    """One matching from per-partition ones: pairs united, objectives, times and ILP nodes summed, the worst
    status and the largest gap kept."""
    left = np.concatenate([m.left for m in matchings]) if matchings else np.empty(0, dtype=np.int64)
    right = np.concatenate([m.right for m in matchings]) if matchings else np.empty(0, dtype=np.int64)
    statuses = sorted({m.status for m in matchings})
    status = "Optimal" if statuses == ["Optimal"] else "; ".join(statuses)
    gaps = [m.gap for m in matchings if np.isfinite(m.gap)]
    nodes: list[int] = [int(m.info["nodes"]) for m in matchings if m.info.get("nodes") is not None]
    return Matching.from_pairs(
        left, right, method=method, objective=float(sum(m.objective for m in matchings)),
        seconds=float(sum(m.seconds for m in matchings)), status=status,
        gap=max(gaps) if gaps else float("nan"),
        # ILP parts: their branch-and-bound nodes summed (None where a part has no count, e.g. greedy parts)
        info={"n_partitions": len(matchings),
              "nodes": sum(nodes) if matchings and len(nodes) == len(matchings) else None},
    )
