"""Warm starts of the BiPoly ILP: greedy matchings as first incumbents, checked against the model.

* :func:`greedy_starts` — every greedy at the ILP's own rewards, the family's own greedy first;
* :func:`serve_all` — a Poly matching made UFLP-feasible (every reachable client served);
* :func:`start_objective` — F (eq. 3) of a matching under the configured model, NaN when infeasible there;
* :func:`start_values` — a matching as the model's column values (what HiGHS is given).
"""

from __future__ import annotations

import numpy as np

from crossmatch.bipoly.baselines import bipartite_greedy
from crossmatch.bipoly.center import bipoly_c
from crossmatch.bipoly.greedy import bipoly_s, poly_greedy
from crossmatch.bipoly.ilp_model import IlpConfig, IlpModel
from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.matching import Matching, objective


def start_values(inst: Instance, model: IlpModel, start: Matching, rewards: Rewards, fixed: Side | None) -> np.ndarray:
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


def greedy_starts(inst: Instance, rewards: Rewards, cfg: IlpConfig) -> list[Matching]:
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
        return [serve_all(inst, m, side) for m in (pool[1], pool[3])]
    return [pool[1], pool[0], *pool[2:]]


def serve_all(inst: Instance, m: Matching, host_side: Side) -> Matching:
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
