"""Solving the robust BiPoly integer program with HiGHS (paper eq. 3–11; ALGORITHMS.md §1.3).

:func:`solve_ilp` builds the configured model (:mod:`crossmatch.bipoly.ilp_model`: :class:`IlpConfig`, the
families ``bipoly`` / ``poly`` / ``bipartite`` / ``uflp``, :func:`build_model`), picks the best family-feasible
warm start (:mod:`crossmatch.bipoly.ilp_start`), hands both to HiGHS within the time budget and decodes the
incumbent. The model and warm-start names stay importable from here.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
import warnings
from collections.abc import Sequence

import highspy
import numpy as np

from crossmatch.bipoly.ilp_model import INF, IlpConfig, IlpFamily, IlpModel, build_model
from crossmatch.bipoly.ilp_start import greedy_starts, start_objective, start_values
from crossmatch.bipoly.instance import Instance, Rewards
from crossmatch.bipoly.matching import Matching, objective

__all__ = ["GAP_NOISE", "INF", "MIN_SOLVE_SECONDS", "IlpConfig", "IlpFamily", "IlpModel", "build_model",
           "solve_ilp", "start_objective"]


_BANNER_LOCK = threading.Lock()
_banner_done = False


def _swallow_banner() -> None:
    """Create this process's first HiGHS instance with the C-level stdout pointed at ``/dev/null``.

    HiGHS (1.16) prints a two-line licence banner when a process creates its first instance, in the constructor,
    before ``output_flag`` can be set: every blocking worker wrote it into ``crossmatch run``'s live view. Later
    instances print nothing. Under a lock, so threads never swap the descriptor twice."""
    global _banner_done
    with _BANNER_LOCK:
        if _banner_done:
            return
        _banner_done = True
        try:
            sys.stdout.flush()
            saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
        except (OSError, ValueError):  # no usable stdout (a closed descriptor): nothing to protect
            highspy.Highs()
            return
        try:
            os.dup2(null, 1)
            highspy.Highs()
            try:  # the banner may sit in the C library's buffer: flush it while it still goes to /dev/null
                ctypes.CDLL(None).fflush(None)
            except (OSError, AttributeError, TypeError):  # no C runtime reachable this way (not POSIX)
                pass
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)


def _highs(model: IlpModel, cfg: IlpConfig, start: np.ndarray | None) -> highspy.Highs:
    """A HiGHS instance holding the model (and the start values, when given), not yet run; the caller
    sets ``time_limit`` to what is left of the budget just before ``run``."""
    _swallow_banner()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", float(cfg.mip_gap))
    h.setOptionValue("threads", int(cfg.threads))
    # HiGHS >= 1.15 can run the MIP tree search in parallel; a serial search follows one path
    h.setOptionValue("parallel", "off" if cfg.threads == 1 else "choose")
    h.setOptionValue("random_seed", int(cfg.seed))
    if cfg.node_limit is not None:
        h.setOptionValue("mip_max_nodes", int(cfg.node_limit))
    n_cols = model.cost.size
    empty_i = np.empty(0, dtype=np.int32)
    h.addCols(n_cols, model.cost, model.col_lower, model.col_upper, 0, empty_i, empty_i, np.empty(0))
    a = model.rows
    h.addRows(a.shape[0], model.row_lower, model.row_upper, a.nnz,
              a.indptr[:-1].astype(np.int32), a.indices.astype(np.int32), a.data)
    h.changeColsIntegrality(n_cols, np.arange(n_cols, dtype=np.int32),
                            np.full(n_cols, int(highspy.HighsVarType.kInteger.value), dtype=np.uint8))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = start.tolist()
        sol.value_valid = True
        h.setSolution(sol)
    return h


# relative MIP gaps below this are rounding noise and reported as 0 (1.7e-16 with one HiGHS release, 0 with another)
GAP_NOISE = 1e-12
# below this many seconds left of the budget HiGHS is not started (it could not improve on the start)
MIN_SOLVE_SECONDS = 1e-3


def _decode(inst: Instance, model: IlpModel, h: highspy.Highs) -> tuple[np.ndarray, np.ndarray] | None:
    """The pairs of HiGHS's incumbent, or None when it has no feasible one."""
    if int(h.getInfo().primal_solution_status) != int(highspy.kSolutionStatusFeasible):
        return None
    x = np.asarray(h.getSolution().col_value) > 0.5
    e = inst.n_pairs
    chosen = np.zeros(e, dtype=bool)
    if model.x_lr >= 0:
        chosen |= x[model.x_lr : model.x_lr + e]
    if model.x_rl >= 0:
        chosen |= x[model.x_rl : model.x_rl + e]
    return inst.left[chosen], inst.right[chosen]


def _run(h: highspy.Highs, deadline: float) -> bool:
    """Run HiGHS with what is left until ``deadline``; False (not run) when nothing is left."""
    left = deadline - time.perf_counter()
    if left < MIN_SOLVE_SECONDS:
        return False
    h.setOptionValue("time_limit", float(left))
    h.run()
    return True


def solve_ilp(inst: Instance, rewards: Rewards, cfg: IlpConfig | None = None, *, method: str | None = None,
              starts: Sequence[Matching] = ()) -> Matching:
    """Solve the configured robust ILP with HiGHS (paper eq. 3–11; ALGORITHMS.md §1.3).

    ``cfg.time_limit`` bounds the whole call: model build, the greedy warm starts and the HiGHS
    solve (HiGHS gets what is left). With ``cfg.warm_start`` the start is the best, by F under
    this model, of every family-feasible greedy (:func:`~crossmatch.bipoly.ilp_start.greedy_starts`) and of ``starts``
    (e.g. the caller's tuned greedy results; infeasible ones are skipped), and the result's F is
    never below it.

    Returns:
        The matching with ``status`` (HiGHS model status, e.g. ``"Optimal"``, ``"Time limit
        reached"`` or, at ``cfg.node_limit``, ``"Solution limit reached"``), ``gap`` (relative MIP
        gap), ``objective`` (F of eq. 3 of the returned matching), ``seconds`` (wall time of the
        whole call) and ``info`` with the dual bound, ``nodes`` (branch-and-bound nodes explored:
        the deterministic measure of the work), sizes, ``proven_optimal``, the warm start used and
        the time split (``seconds_build``, ``seconds_start``, ``seconds_solve``). When the time limit passes with
        an incumbent, that incumbent is returned. When HiGHS has no feasible solution at all, the
        family's greedy (BiPoly.S for BiPoly) is returned with a :class:`RuntimeWarning` and
        ``status = "fallback: <greedy>"``.
    """
    cfg = cfg or IlpConfig()
    name = method or f"ilp_{cfg.family}"
    t0 = time.perf_counter()
    deadline = t0 + cfg.time_limit
    model = build_model(inst, rewards, cfg)
    t_build = time.perf_counter() - t0
    best: Matching | None = None
    best_f = -np.inf
    start: np.ndarray | None = None
    if cfg.warm_start:
        for cand in [*greedy_starts(inst, rewards, cfg), *starts]:
            f = start_objective(inst, cand, rewards, cfg)
            if np.isfinite(f) and f > best_f + 1e-12:
                best, best_f = cand, f
        if best is not None:
            start = start_values(inst, model, best, rewards, cfg.hosts_fixed)
    t_start = time.perf_counter() - t0 - t_build
    h = _highs(model, cfg, start)
    ran = _run(h, deadline)
    if ran and start is not None and _decode(inst, model, h) is not None:
        found = float(model.cost @ np.asarray(h.getSolution().col_value))
        reported = float(h.getInfo().objective_function_value)
        if abs(found - reported) > 1e-6 * max(1.0, abs(reported)):
            # HiGHS 1.16 can report the optimum that presolve found while returning the warm
            # start's column values; the solve is then repeated without the start, in the time left.
            h2 = _highs(model, cfg, None)
            if _run(h2, deadline):
                h = h2
    secs = time.perf_counter() - t0
    sizes = {"n_cols": int(model.cost.size), "n_rows": int(model.rows.shape[0]), "n_nonzeros": int(model.rows.nnz)}
    timing = {"seconds_build": round(t_build, 4), "seconds_start": round(t_start, 4),
              "seconds_solve": round(secs - t_build - t_start, 4), "time_limit": cfg.time_limit}
    warm = {"warm_start_method": best.method if best is not None else None,
            "warm_start_objective": float(best_f) if best is not None else None}
    status = h.modelStatusToString(h.getModelStatus()) if ran else "Time limit reached"
    pairs = _decode(inst, model, h) if ran else None
    if pairs is not None:
        f = objective(inst, pairs[0], pairs[1], rewards, host_side=cfg.hosts_fixed)
        if best is None or not f < best_f - 1e-9:
            info = h.getInfo()
            proven = status == "Optimal"
            gap = float(info.mip_gap) if np.isfinite(info.mip_gap) else float("nan")
            # a gap of a few ulps is the rounding of the objective sum, which differs between HiGHS releases
            gap = 0.0 if abs(gap) < GAP_NOISE else gap
            return Matching.from_pairs(
                pairs[0], pairs[1], method=name, seconds=secs, status=status,
                gap=0.0 if proven and cfg.mip_gap == 0 else gap, objective=f,
                info={**sizes, **timing, **warm, "highs_objective": float(info.objective_function_value),
                      "dual_bound": float(info.mip_dual_bound), "nodes": int(info.mip_node_count),
                      "node_limit": cfg.node_limit, "proven_optimal": proven, "returned": "highs"},
            )
    if best is not None:
        # HiGHS had no time left, or kept nothing at least as good as the start: the start is the incumbent
        return Matching(best.left, best.right, method=name, objective=best_f, seconds=secs,
                        status=status if status != "Optimal" else "Time limit reached", gap=float("nan"),
                        info={**sizes, **timing, **warm, "proven_optimal": False, "returned": "warm start"})
    greedy = greedy_starts(inst, rewards, cfg)[0]
    warnings.warn(
        f"{name}: HiGHS found no feasible solution within {cfg.time_limit:g} s (status {status}); "
        f"falling back to greedy {greedy.method}",
        RuntimeWarning,
        stacklevel=2,
    )
    return Matching(greedy.left, greedy.right, method=name, objective=start_objective(inst, greedy, rewards, cfg),
                    seconds=time.perf_counter() - t0, status=f"fallback: {greedy.method}",
                    info={**sizes, **timing, "highs_status": status, "proven_optimal": False, "returned": "fallback"})
