"""The robust BiPoly integer program as arrays, and its special cases (paper eq. 3–11; ALGORITHMS.md §1.3).

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

Solving it is :mod:`crossmatch.bipoly.ilp`; its warm starts are :mod:`crossmatch.bipoly.ilp_start`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np
import scipy.sparse as sp

from crossmatch.bipoly.instance import Instance, Rewards, Side
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
