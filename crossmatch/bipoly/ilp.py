"""The robust BiPoly integer program on HiGHS, and its special cases (paper eq. 3–11; ALGORITHMS.md §1.3).

One builder, :func:`build_model`, gives every variant by its settings (:class:`IlpConfig`):

=============  ===================================================================================
family         what is added to the BiPoly model
=============  ===================================================================================
``bipoly``     nothing (eq. 3–11)
``poly``       clients only on the side opposite ``host_side``: those ``x`` columns are absent and
               the host side's ``v`` is fixed to 1 (code ``solve_poly_left/right``)
``bipartite``  ``poly`` plus at most one client per host (quota 1)
``uflp``       ``poly`` plus every client node that has a candidate pair must be served
               (``v = 0``); with rewards ``ω = 0, η_host = −f`` this is UFLP with opening cost f
               and service cost ``1 − ĥ`` (§1.3 table)
=============  ===================================================================================

``quota`` adds ``Σ incoming x ≤ Q·v_u`` (Sec. V-G); max-weight is ``Rewards()`` (ω = η = 0).

Variables (all binary), columns in this order: ``x_{l→r}`` per candidate pair (left client of a
right host), ``x_{r→l}`` per pair, ``v_u`` and ``z_u`` per node (left nodes first). Rows:

* (4)/(5) ``Σ x(u as client) + v_u = 1`` for every node;
* (8)/(9) ``Σ x(into u) − z_u ≥ 0``;
* (10)/(11) ``x − z_host ≤ 0`` per directed pair;
* (6') ``z_u − v_u ≤ 0`` (the code's extra row). Rows (6)/(7) ``x ≤ v_host`` follow from
  (10)/(11) and (6') and are left out — a deliberate deviation that removes 2·|E| redundant rows.

Deviation (marked): the model has a column pair only for the instance's candidate pairs. Built
from a dense matrix with ``keep_zeros=True`` it is exactly the paper's all-pairs model; built
from top-k candidates it is that model restricted to those pairs (pairs outside can never be
matched). For ``uflp``, client nodes with no candidate pair cannot be served and stay
reclusive instead of making the model infeasible.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np
import scipy.sparse as sp

from crossmatch.bipoly.baselines import bipartite_greedy
from crossmatch.bipoly.center import bipoly_c
from crossmatch.bipoly.greedy import bipoly_s, poly_greedy
from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.matching import Matching, objective
from crossmatch.errors import ConfigError

IlpFamily = Literal["bipoly", "poly", "bipartite", "uflp"]
INF = highspy.kHighsInf


@dataclass(frozen=True)
class IlpConfig:
    """Settings of the one model builder.

    Attributes:
        family: constraint family (module table).
        host_side: host side of the one-sided families (Ambiguity 1.3-A: default the smaller
            source, which is the left one in our datasets).
        quota: maximum clients per host, or ``None``.
        time_limit: seconds for the whole solve, model build and warm starts included; on
            expiry the best incumbent is returned. A wall-clock limit: where it cuts a solve, the
            result depends on the machine's speed and load.
        mip_gap: relative MIP gap at which HiGHS stops (0 = prove optimality).
        threads: HiGHS threads (1: serial search, the same path on every machine).
        seed: HiGHS random seed (determinism).
        warm_start: give HiGHS the best family-feasible greedy solution as a first incumbent.
        node_limit: branch-and-bound nodes HiGHS may explore (``mip_max_nodes``), or ``None`` for
            no limit. The deterministic work limit: a solve it cuts stops at the same node, with
            the same incumbent, on every machine (HiGHS 1.16 has no other work limit for MIPs);
            its status is ``"Solution limit reached"``. Set ``time_limit`` above the time such a
            solve takes so that the wall clock never decides. A solve that reaches the optimum
            first is not affected.

    Determinism: HiGHS is deterministic for a given build, options and input; here the search is
    serial (``threads``, ``parallel = off``) with a fixed ``seed``, so only a limit on the wall
    clock, or another HiGHS release (``requirements.lock`` pins it), can change the result.
    """

    family: IlpFamily = "bipoly"
    host_side: Side = "left"
    quota: int | None = None
    time_limit: float = 60.0
    mip_gap: float = 1e-4
    threads: int = 1
    seed: int = 0
    warm_start: bool = True
    node_limit: int | None = None

    def __post_init__(self) -> None:
        if self.family not in ("bipoly", "poly", "bipartite", "uflp"):
            raise ConfigError(f"ILP family must be bipoly, poly, bipartite or uflp, got {self.family!r}")
        if self.host_side not in ("left", "right"):
            raise ConfigError(f"ILP host_side must be 'left' or 'right', got {self.host_side!r}")
        if self.quota is not None and (not isinstance(self.quota, int) or self.quota < 1):
            raise ConfigError(f"ILP quota must be a positive integer or null, got {self.quota!r}")
        if not self.time_limit > 0:
            raise ConfigError(f"ILP time_limit must be > 0 seconds, got {self.time_limit}")
        if not 0 <= self.mip_gap < 1:
            raise ConfigError(f"ILP mip_gap must lie in [0, 1), got {self.mip_gap}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigError(f"ILP threads must be a positive integer, got {self.threads!r}")
        if self.node_limit is not None and (not isinstance(self.node_limit, int) or self.node_limit < 1):
            raise ConfigError(f"ILP node_limit must be a positive integer or null, got {self.node_limit!r}")

    @property
    def effective_quota(self) -> int | None:
        return 1 if self.family == "bipartite" else self.quota

    @property
    def hosts_fixed(self) -> Side | None:
        """The only side that may host, or None for BiPoly."""
        return None if self.family == "bipoly" else self.host_side


@dataclass(frozen=True)
class IlpModel:
    """The model as arrays (maximisation), ready for HiGHS."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    rows: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    # column offsets: x_lr, x_rl (−1 when absent), v, z
    x_lr: int
    x_rl: int
    v: int
    z: int


def build_model(inst: Instance, rewards: Rewards, cfg: IlpConfig) -> IlpModel:
    """Columns, bounds and constraint rows of the configured model, built in bulk with numpy."""
    m, n, e = inst.n_left, inst.n_right, inst.n_pairs
    nn = m + n
    fixed = cfg.hosts_fixed
    has_lr = fixed != "left"  # left nodes may be clients of right hosts
    has_rl = fixed != "right"
    off = 0
    x_lr = off if has_lr else -1
    off += e if has_lr else 0
    x_rl = off if has_rl else -1
    off += e if has_rl else 0
    v, z = off, off + nn
    n_cols = z + nn

    omega = np.concatenate([np.full(m, rewards.omega_l), np.full(n, rewards.omega_r)])
    eta = np.concatenate([np.full(m, rewards.eta_l), np.full(n, rewards.eta_r)])
    cost = np.zeros(n_cols)
    if has_lr:
        cost[x_lr : x_lr + e] = inst.weight
    if has_rl:
        cost[x_rl : x_rl + e] = inst.weight
    # F = Σ ĥ x + Σ ω (v − z) + Σ η z  (eq. 3)
    cost[v : v + nn] = omega
    cost[z : z + nn] = eta - omega
    lower = np.zeros(n_cols)
    upper = np.ones(n_cols)
    if fixed is not None:
        host_nodes = np.arange(m) if fixed == "left" else np.arange(m, nn)
        client_nodes = np.arange(m, nn) if fixed == "left" else np.arange(m)
        lower[v + host_nodes] = 1.0  # a node that can never be a client is always a host
        upper[z + client_nodes] = 0.0  # a node that can never host is never receptive
        if cfg.family == "uflp":
            served = np.bincount(inst.right if fixed == "left" else inst.left,
                                 minlength=n if fixed == "left" else m) > 0
            upper[v + client_nodes[served]] = 0.0  # every reachable customer is served

    edge = np.arange(e)
    l_node, r_node = inst.left, m + inst.right
    rr: list[np.ndarray] = []
    cc: list[np.ndarray] = []
    vv: list[np.ndarray] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    row0 = 0

    def add(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | float) -> None:
        rr.append(rows)
        cc.append(cols)
        vv.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), rows.shape))

    # (4)/(5): Σ x(u as client) + v_u = 1
    nodes = np.arange(nn)
    if has_lr:
        add(row0 + l_node, x_lr + edge, 1.0)
    if has_rl:
        add(row0 + r_node, x_rl + edge, 1.0)
    add(row0 + nodes, v + nodes, 1.0)
    lo.append(np.ones(nn))
    hi.append(np.ones(nn))
    row0 += nn
    # (8)/(9): Σ x(into u) − z_u ≥ 0
    if has_lr:
        add(row0 + r_node, x_lr + edge, 1.0)
    if has_rl:
        add(row0 + l_node, x_rl + edge, 1.0)
    add(row0 + nodes, z + nodes, -1.0)
    lo.append(np.zeros(nn))
    hi.append(np.full(nn, INF))
    row0 += nn
    # (10)/(11): x − z_host ≤ 0 per directed pair
    for has, xoff, host in ((has_lr, x_lr, r_node), (has_rl, x_rl, l_node)):
        if has:
            add(row0 + edge, xoff + edge, 1.0)
            add(row0 + edge, z + host, -1.0)
            lo.append(np.full(e, -INF))
            hi.append(np.zeros(e))
            row0 += e
    # (6'): z_u − v_u ≤ 0
    add(row0 + nodes, z + nodes, 1.0)
    add(row0 + nodes, v + nodes, -1.0)
    lo.append(np.full(nn, -INF))
    hi.append(np.zeros(nn))
    row0 += nn
    # quota: Σ x(into u) − Q v_u ≤ 0
    q = cfg.effective_quota
    if q is not None:
        if has_lr:
            add(row0 + r_node, x_lr + edge, 1.0)
        if has_rl:
            add(row0 + l_node, x_rl + edge, 1.0)
        add(row0 + nodes, v + nodes, -float(q))
        lo.append(np.full(nn, -INF))
        hi.append(np.zeros(nn))
        row0 += nn

    a = sp.csr_matrix(
        (np.concatenate(vv), (np.concatenate(rr), np.concatenate(cc))), shape=(row0, n_cols)
    )
    a.sum_duplicates()
    return IlpModel(cost, lower, upper, a, np.concatenate(lo), np.concatenate(hi), x_lr, x_rl, v, z)


def _start_values(inst: Instance, model: IlpModel, start: Matching, rewards: Rewards, fixed: Side | None) -> np.ndarray:
    """Column values encoding a matching (orientation: star centre hosts; single edges by η)."""
    m, n = inst.n_left, inst.n_right
    col = np.zeros(model.cost.size)
    dl = np.bincount(start.left, minlength=m)
    dr = np.bincount(start.right, minlength=n)
    edge_pos = np.searchsorted(inst.left * n + inst.right, start.left * n + start.right)
    single_host_left = (rewards.eta_l >= rewards.eta_r) if fixed is None else fixed == "left"
    host_left = (dl[start.left] >= 2) | ((dl[start.left] == 1) & (dr[start.right] == 1) & single_host_left)
    client_is_r = host_left
    if model.x_rl < 0 and client_is_r.any() or model.x_lr < 0 and (~client_is_r).any():
        raise ValueError("start matching does not fit the model's host side")
    col[model.x_rl + edge_pos[client_is_r]] = 1.0
    col[model.x_lr + edge_pos[~client_is_r]] = 1.0
    is_client = np.zeros(m + n, dtype=bool)
    is_client[m + start.right[client_is_r]] = True
    is_client[start.left[~client_is_r]] = True
    col[model.v : model.v + m + n] = (~is_client).astype(float)
    receptive = np.zeros(m + n, dtype=bool)
    receptive[start.left[client_is_r]] = True
    receptive[m + start.right[~client_is_r]] = True
    col[model.z : model.z + m + n] = receptive.astype(float)
    return col


def _greedy_starts(inst: Instance, rewards: Rewards, cfg: IlpConfig) -> list[Matching]:
    """The warm-start pool: every greedy at the ILP's own rewards, the family's own greedy first
    (it is also the fallback). The caller keeps the feasible ones (:func:`start_objective`).

    BiPoly.S alone was a weak start: on a large instance the time-limited ILP kept an incumbent
    below BiPoly.C's objective (issue 12, 9b). A greedy of another family often fits the model
    (Bipartite and Poly matchings are BiPoly matchings; a BiPoly.C result may happen to be Poly),
    and each costs one ``O(E log E)`` pass.
    """
    side = cfg.host_side
    q = cfg.quota
    pool = [bipoly_s(inst, rewards, quota=q), poly_greedy(inst, rewards, host_side=side, quota=q),
            poly_greedy(inst, rewards, host_side="right" if side == "left" else "left", quota=q),
            bipartite_greedy(inst, rewards, rule="objective", host_side=cfg.hosts_fixed),
            bipartite_greedy(inst, rewards, rule="omega"), bipoly_c(inst, rewards)]
    if cfg.family == "bipoly":
        return pool
    if cfg.family == "bipartite":
        return [pool[3], *pool[:3], *pool[4:]]
    if cfg.family == "uflp":
        return [_serve_all(inst, m, side) for m in (pool[1], pool[3])]
    return [pool[1], pool[0], *pool[2:]]


def _serve_all(inst: Instance, m: Matching, host_side: Side) -> Matching:
    """Attach every unserved reachable client to its most similar host (UFLP feasibility).

    Hosts on ``host_side`` are always open in the UFLP model, so this keeps the matching a Poly
    matching and makes it a feasible UFLP start.
    """
    n_client = inst.n_right if host_side == "left" else inst.n_left
    client = inst.right if host_side == "left" else inst.left
    host = inst.left if host_side == "left" else inst.right
    if not client.size:
        return m
    served = np.zeros(n_client, dtype=bool)
    served[m.right if host_side == "left" else m.left] = True
    order = np.lexsort((host, -inst.weight, client))  # per client: most similar host first
    first = order[np.r_[True, np.diff(client[order]) != 0]] if order.size else order
    add = first[~served[client[first]]]
    left, right = np.r_[m.left, inst.left[add]], np.r_[m.right, inst.right[add]]
    return Matching.from_pairs(left, right, method=f"{m.method}+serve_all", info=m.info)


def start_objective(inst: Instance, start: Matching, rewards: Rewards, cfg: IlpConfig) -> float:
    """F (eq. 3) of ``start`` under the model of ``cfg``, or NaN when it is not a feasible solution of
    that model (a pair outside the candidates, the wrong family, quota or host side, or an
    unserved UFLP client)."""
    left, right = np.asarray(start.left, dtype=np.int64), np.asarray(start.right, dtype=np.int64)
    m, n = inst.n_left, inst.n_right
    key = inst.left * n + inst.right
    q = left * n + right
    pos = np.minimum(np.searchsorted(key, q), max(key.size - 1, 0))
    if q.size and (key.size == 0 or np.any(key[pos] != q)):
        return float("nan")
    dl, dr = np.bincount(left, minlength=m), np.bincount(right, minlength=n)
    if cfg.family == "bipartite" and (np.any(dl > 1) or np.any(dr > 1)):
        return float("nan")
    if cfg.quota is not None and (np.any(dl > cfg.quota) or np.any(dr > cfg.quota)):
        return float("nan")
    if cfg.family == "uflp":
        client, served = (inst.right, dr) if cfg.host_side == "left" else (inst.left, dl)
        if np.any(served[np.unique(client)] == 0):
            return float("nan")
    return objective(inst, left, right, rewards, host_side=cfg.hosts_fixed)


def _highs(model: IlpModel, cfg: IlpConfig, start: np.ndarray | None) -> highspy.Highs:
    """A HiGHS instance holding the model (and the start values, when given), not yet run; the caller
    sets ``time_limit`` to what is left of the budget just before ``run``."""
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
    this model, of every family-feasible greedy (:func:`_greedy_starts`) and of ``starts``
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
        for cand in [*_greedy_starts(inst, rewards, cfg), *starts]:
            f = start_objective(inst, cand, rewards, cfg)
            if np.isfinite(f) and f > best_f + 1e-12:
                best, best_f = cand, f
        if best is not None:
            start = _start_values(inst, model, best, rewards, cfg.hosts_fixed)
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
    greedy = _greedy_starts(inst, rewards, cfg)[0]
    warnings.warn(
        f"{name}: HiGHS found no feasible solution within {cfg.time_limit:g} s (status {status}); "
        f"falling back to greedy {greedy.method}",
        RuntimeWarning,
        stacklevel=2,
    )
    return Matching(greedy.left, greedy.right, method=name, objective=start_objective(inst, greedy, rewards, cfg),
                    seconds=time.perf_counter() - t0, status=f"fallback: {greedy.method}",
                    info={**sizes, **timing, "highs_status": status, "proven_optimal": False, "returned": "fallback"})
