"""The exact ILP families of the blocking protocol, solved per partition under one time budget (issue 14, item 6).

Each ILP family (``bipoly``, ``poly``, ``bipartite``, ``uflp``) is solved

* ``grid: tuned`` (default) at the rewards its greedy counterpart(s) were tuned to (:data:`ILP_TUNED_BY`;
  BiPoly has two, BiPoly.S and BiPoly.C) and at max-weight (ω = η = 0), the best of these on the tuning
  labels being the family's row;
* ``grid: full`` at every point of a tied ω/η grid, keeping the best on the tuning labels (the earlier
  default: 25 settings × every partition × every family, thousands of HiGHS solves at 25× the world).

Every solve of one run is submitted to the executor at once, split into partitions capped in size
(:mod:`.partition`), and shares one wall-clock budget: a partition's solve gets ``min(time_limit, what is
left)`` and returns its greedy warm start once nothing is left. ``on_progress(done, total)`` is called as
partitions finish (for a progress bar with an ETA).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from crossmatch.bipoly.baselines import bipartite_rewards
from crossmatch.bipoly.config import BlockingParams
from crossmatch.bipoly.grid import GridRow, grid_points, merge, split_by_groups, value_range
from crossmatch.bipoly.ilp import IlpConfig, IlpFamily, solve_ilp
from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.matching import Matching
from crossmatch.bipoly.metrics import BlockingTruth
from crossmatch.bipoly.partition import Part, cap_parts
from crossmatch.bipoly.similarity import SimilarityKind

OnProgress = Callable[[int, int], None]

# the greedy method whose tuned rewards an ILP family reuses
ILP_TUNED_BY: dict[str, tuple[str, ...]] = {"bipoly": ("bipoly_s", "bipoly_c"), "poly": ("poly",),
                                            "bipartite": ("bipartite",), "uflp": ("uflp",)}


def uflp_rewards(rw: Rewards, host_side: Side) -> Rewards:
    """UFLP is robust Poly with ω = 0 and η_host = −f, f ≥ 0 (ALGORITHMS.md §1.3 table)."""
    f = max(0.0, -rw.eta(host_side))
    return Rewards(0.0, 0.0, -f, -f)


def solve_part(sub: Instance, rewards: Rewards, cfg: IlpConfig, method: str, deadline: float | None) -> Matching:
    """One partition's ILP within ``min(cfg.time_limit, deadline − now)`` (``deadline``: ``time.time()``, shared
    by worker processes); ``info["budget_limited"]`` says whether the budget shortened its limit."""
    limit, limited = cfg.time_limit, False
    if deadline is not None:
        left = deadline - time.time()
        if left < cfg.time_limit:
            # at or past the deadline HiGHS is not started and the warm start is returned (solve_ilp)
            limit, limited = max(left, 1e-9), True
    m = solve_ilp(sub, rewards, replace(cfg, time_limit=limit), method=method)
    m.info["budget_limited"] = limited
    return m


@dataclass(frozen=True)
class Job:
    """One ILP to solve on every part: its output name, rewards and configuration."""

    name: str
    rewards: Rewards
    cfg: IlpConfig
    parts: Sequence[Part]
    whole: bool  # the parts are the unsplit instance: return its matching as it is


def run_jobs(jobs: Sequence[Job], *, executor: Executor | None, deadline: float | None,
             on_progress: OnProgress | None = None) -> tuple[list[Matching], dict[str, int]]:
    """Every job on every one of its parts, all submitted at once; per job the parts' matchings merged back
    (global ids), and counts: ``n_solves``, ``n_budget_limited``, ``n_budget_cut`` (limited and not proven
    optimal: the budget changed the result).

    Solves are submitted part by part across the jobs (part 1 of every job, then part 2, ...), so that a budget
    running out cuts every job's last parts alike rather than whole families submitted last.
    """
    order = [(ji, pi) for pi in range(max((len(j.parts) for j in jobs), default=0))
             for ji, j in enumerate(jobs) if pi < len(j.parts)]
    total = len(order)
    results: dict[tuple[int, int], Matching] = {}

    def task(ji: int, pi: int) -> tuple[Instance, Rewards, IlpConfig, str, float | None]:
        j = jobs[ji]
        return j.parts[pi][2], j.rewards, j.cfg, j.name, deadline

    if executor is None:
        for done, key in enumerate(order, start=1):
            results[key] = solve_part(*task(*key))
            if on_progress is not None:
                on_progress(done, total)
    else:
        futures = {executor.submit(solve_part, *task(*key)): key for key in order}
        for done, fut in enumerate(as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if on_progress is not None:
                on_progress(done, total)
    out: list[Matching] = []
    for ji, j in enumerate(jobs):
        mine = [Matching.from_pairs(li[m.left], ri[m.right], method=m.method, objective=m.objective, seconds=m.seconds,
                                    status=m.status, gap=m.gap, info=m.info)
                for pi, (li, ri, _) in enumerate(j.parts) for m in (results[(ji, pi)],)]
        out.append(mine[0] if j.whole else merge(mine, j.name))
    limited = [m for m in results.values() if m.info.get("budget_limited")]
    stats = {"n_solves": total, "n_budget_limited": len(limited),
             "n_budget_cut": sum(m.status != "Optimal" for m in limited)}
    return out, stats


def ilp_parts(inst: Instance, groups: tuple[np.ndarray, np.ndarray] | None,
              max_nodes: int | None) -> tuple[list[Part], bool, dict[str, int]]:
    """The instance split by ``groups`` (when given), then capped at ``max_nodes`` categories per part;
    ``whole`` is True when the result is the unsplit instance."""
    if groups is None:
        parts: list[Part] = [(np.arange(inst.n_left), np.arange(inst.n_right), inst)]
    else:
        parts = split_by_groups(inst, *groups)
    capped, info = cap_parts(parts, max_nodes)
    return capped, groups is None and info["split"] == 0, info


def _family_rewards(fam: str, rw: Rewards, host_side: Side) -> Rewards:
    """A greedy method's tuned rewards as the ILP family's rewards."""
    if fam == "uflp":
        return uflp_rewards(rw, host_side)
    if fam == "bipartite":
        # the rewards under which eq. 3 is what greedy Bipartite (τ = ω_L) optimises (issue 12, 9a)
        return bipartite_rewards(rw)
    return rw


@dataclass(frozen=True)
class _Candidate:
    rewards: Rewards
    kind: SimilarityKind
    source: str  # where the setting comes from (metrics ``tuned_from``)


def _candidates(fam: str, params: BlockingParams, best: dict[str, tuple[SimilarityKind, GridRow]],
                full: bool) -> list[_Candidate]:
    """The settings a family is solved at (max-weight aside): its greedy counterparts' tuned rewards, best
    tuning tradeoff first, or (``full``) every point of the ILP grid on the best counterpart's similarity."""
    srcs = sorted((mt for mt in ILP_TUNED_BY[fam] if mt in best),
                  key=lambda mt: -best[mt][1].tradeoff if np.isfinite(best[mt][1].tradeoff) else 0.0)
    if not srcs:
        return []
    if full:
        axis = value_range(params.ilp.grid_axis)
        kind = best[srcs[0]][0]
        rws = dict.fromkeys(uflp_rewards(rw, params.host_side) if fam == "uflp" else rw for rw in grid_points(axis, axis))
        return [_Candidate(rw, kind, f"ilp grid {params.ilp.grid_axis}") for rw in rws]
    out: dict[tuple[Rewards, SimilarityKind], _Candidate] = {}
    for mt in srcs:
        kind, row = best[mt]
        rw = _family_rewards(fam, row.rewards, params.host_side)
        out.setdefault((rw, kind), _Candidate(rw, kind, mt))
    return list(out.values())


def family_ilps(params: BlockingParams, best: dict[str, tuple[SimilarityKind, GridRow]],
                instances: dict[SimilarityKind, Instance], groups: tuple[np.ndarray, np.ndarray] | None,
                truth: BlockingTruth | None, *, executor: Executor | None, deadline: float | None,
                on_progress: OnProgress | None = None) -> tuple[list[tuple[str, Matching, dict[str, Any]]], dict[str, Any]]:
    """Each configured ILP family at its greedy counterparts' tuned rewards (``grid: tuned``) or over its own
    grid (``grid: full``), and at max-weight. With tuning labels ``truth`` the family's row ``ilp_<family>`` is
    the best of its settings and max-weight on those labels (ties: the counterpart's setting first; BiPoly has
    two counterparts, BiPoly.S and BiPoly.C); without labels it is the one ``untuned`` setting.

    Returns ``(name, matching, extra metrics)`` per ILP row and the run's ``ilp_budget`` figures.
    """
    ip = params.ilp
    full = ip.grid == "full" and truth is not None
    plan: list[tuple[str, list[_Candidate], list[Job]]] = []
    part_info: dict[str, dict[str, int]] = {}
    cache: dict[SimilarityKind, tuple[list[Part], bool]] = {}

    def parts_of(kind: SimilarityKind) -> tuple[list[Part], bool]:
        if kind not in cache:
            parts, whole, part_info[kind] = ilp_parts(instances[kind], groups, ip.max_partition)
            cache[kind] = (parts, whole)
        return cache[kind]

    for fam in ip.methods:
        cands = _candidates(fam, params, best, full)
        if not cands:
            continue
        family: IlpFamily = fam  # checked by IlpParams
        cfg = IlpConfig(family=family, host_side=params.host_side, time_limit=ip.time_limit, mip_gap=ip.mip_gap,
                        seed=params.seed, warm_start=ip.warm_start, node_limit=ip.node_limit)
        jobs = [Job(f"ilp_{fam}", c.rewards, cfg, *parts_of(c.kind)) for c in cands]
        if ip.max_weight:
            cands = [*cands, _Candidate(Rewards(), cands[0].kind, "max-weight")]
            jobs.append(Job(f"ilp_{fam}_maxweight", Rewards(), cfg, *parts_of(cands[0].kind)))
        plan.append((fam, cands, jobs))
    solved, stats = run_jobs([j for *_, jobs in plan for j in jobs], executor=executor, deadline=deadline,
                             on_progress=on_progress)
    out: list[tuple[str, Matching, dict[str, Any]]] = []
    pos = 0
    for fam, cands, jobs in plan:
        ms = solved[pos : pos + len(jobs)]
        pos += len(jobs)
        pick = 0
        # the labels kind's instance is built from the tuning positives: grading on them would be in-sample,
        # so its ILP stays at the counterpart's (cross-fitted) setting
        if truth is not None and len(ms) > 1 and not any(c.kind == "labels" for c in cands):
            scored = [(truth.score_matching(m).tradeoff, i) for i, m in enumerate(ms)]
            pick = max(scored, key=lambda t: (t[0], -t[1]))[1]
        rows = [(f"ilp_{fam}", cands[pick], ms[pick])]
        if ip.max_weight:
            rows.append((f"ilp_{fam}_maxweight", cands[-1], ms[-1]))
        for name, c, m in rows:
            out.append((name, m, {"similarity": c.kind, **rewards_dict(c.rewards), "proven_optimal": m.status == "Optimal",
                                  "nodes": m.info.get("nodes"), "time_limit": ip.time_limit, "tuned_from": c.source, "n_settings": len(ms)}))
    budget = {"grid": "full" if full else "tuned", "total_time_limit": ip.total_time_limit,
              "hit": stats["n_budget_cut"] > 0, **stats, "max_partition": ip.max_partition, "partitions": part_info}
    return out, budget


def rewards_dict(r: Rewards) -> dict[str, float]:
    """ω/η as the four metrics keys ``omega_l, omega_r, eta_l, eta_r``."""
    return dict(zip(("omega_l", "omega_r", "eta_l", "eta_r"), r.as_tuple(), strict=True))
