"""Grouped (per-category) gated sliced alignment: every category of a packed batch at once.

A packed batch (``pairs.pack_categories``) holds whole categories of several sources; each
category is aligned on its own, between the sources that have rows of it (ALGORITHMS.md §2.5:
nodes are only compared with nodes of their own category). One grouped sort per source
replaces a Python loop over categories; group ``g``'s loss equals
:func:`crossmatch.icpa.sliced.sliced_alignment` on the rows of ``g`` (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from crossmatch.icpa.sliced import (
    PairGateFn,
    _argsort_rows,
    _check_gates_and_orders,
    _check_sources,
    discrepancy,
    pair_gate_weights,
)


def grouped_sorted_slices(x: Tensor, group: Tensor, n_groups: int, directions: Tensor, length: int,
                          order: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`crossmatch.icpa.sliced.sorted_slices` within each group of rows.

    Args:
        x: ``[n, d]`` embeddings of one source (carry the gradient).
        group: ``[n]`` group (category) of every row, in ``0..n_groups−1``.
        n_groups: ``G``.
        directions: ``[d, K]`` unit directions.
        length: common interpolation length ``B'`` of every group.
        order: ``[n, d]`` embeddings that define the sort order (frozen plan); ``x`` when None.

    Returns:
        ``(values [K, G, B'], nodes [K, G, B'], counts [G])``: per direction and group, the
        projections at the q-th sorted position of the group (index interpolation
        ``⌊q·n_g/B'⌋`` as :func:`interpolation_index`) and the rows holding them. Groups without
        rows (``counts == 0``) hold arbitrary rows; callers mask them.
    """
    if x.dim() != 2 or directions.dim() != 2 or x.shape[1] != directions.shape[0]:
        raise ValueError(f"x must be [n, d] and directions [d, K]; got {tuple(x.shape)} and {tuple(directions.shape)}")
    if group.shape != (x.shape[0],):
        raise ValueError(f"group must be [n] = [{x.shape[0]}], got {tuple(group.shape)}")
    if order is not None and order.shape != x.shape:
        raise ValueError(f"order must have the shape of x {tuple(x.shape)}, got {tuple(order.shape)}")
    n, k = x.shape[0], directions.shape[1]
    proj = directions.T @ x.T  # [K, n]
    key = proj if order is None else directions.T @ order.T
    perm = _argsort_rows(key.detach())
    # A stable sort by group keeps the projection order inside every group.
    perm = perm.gather(1, torch.argsort(group[perm], dim=1, stable=True))
    counts = torch.bincount(group, minlength=n_groups)
    starts = torch.cumsum(counts, 0) - counts
    q = torch.arange(length, device=x.device)
    offs = torch.div(q.unsqueeze(0) * counts.unsqueeze(1), length, rounding_mode="floor")
    offs = torch.minimum(offs, (counts - 1).clamp(min=0).unsqueeze(1))
    idx = (starts.unsqueeze(1) + offs).clamp(max=n - 1).reshape(-1)  # [G·B']
    values = torch.gather(proj, 1, perm)[:, idx].view(k, n_groups, length)
    nodes = perm[:, idx].view(k, n_groups, length)
    return values, nodes, counts


@dataclass
class GroupedSlicedResult:
    group_losses: Tensor  # [G] per group: mean of D_{j,j'} over the pairs of sources both present in it
    valid: Tensor  # [G] bool: at least two sources present
    pair_costs: Tensor  # [G, p, p] (0 where a source is absent and on the diagonal)
    nodes: list[Tensor]  # per source, [K, G, B']


def _check_groups(xs: Sequence[Tensor], groups: Sequence[Tensor], n_groups: int) -> None:
    if len(groups) != len(xs):
        raise ValueError(f"need one group vector per source ({len(xs)}), got {len(groups)}")
    for i, (x, g) in enumerate(zip(xs, groups, strict=True)):
        if g.shape != (x.shape[0],):
            raise ValueError(f"source {i}: group must be [{x.shape[0]}], got {tuple(g.shape)}")
        if g.numel() and (int(g.min()) < 0 or int(g.max()) >= n_groups):
            raise ValueError(f"source {i}: group ids must lie in [0, {n_groups})")


def grouped_sliced_alignment(
    xs: Sequence[Tensor],
    groups: Sequence[Tensor],
    n_groups: int,
    directions: Tensor,
    *,
    length: int,
    gates: Sequence[Tensor] | None = None,
    orders: Sequence[Tensor] | None = None,
    kind: str = "squared",
    reverse_min: bool = False,
) -> GroupedSlicedResult:
    """:func:`crossmatch.icpa.sliced.sliced_alignment` of every group (category) of a packed batch in one pass.

    Group ``g``'s loss equals :func:`sliced_alignment` on the rows of ``g`` of the sources that
    have rows in ``g`` (same directions and ``length``); nodes are only compared with nodes
    of their own group. Arguments as :func:`sliced_alignment`, plus ``groups`` (per source,
    the ``[n_j]`` group of every row) and ``n_groups``.
    """
    _check_sources(xs, directions)
    _check_groups(xs, groups, n_groups)
    p = len(xs)
    _check_gates_and_orders(xs, gates, orders)
    slices = [grouped_sorted_slices(x, groups[i], n_groups, directions, length, None if orders is None else orders[i])
              for i, x in enumerate(xs)]
    nodes = [s[1] for s in slices]
    present = torch.stack([s[2] > 0 for s in slices])  # [p, G]
    device = xs[0].device
    if p < 2:
        zero = xs[0].sum() * 0.0
        return GroupedSlicedResult(zero.expand(n_groups), torch.zeros(n_groups, dtype=torch.bool, device=device),
                                   torch.zeros(n_groups, 1, 1, device=device), nodes)
    S = torch.stack([s[0] for s in slices])  # [p, K, G, B']
    ia, ib = torch.triu_indices(p, p, offset=1, device=device)
    U = discrepancy(S[ia], S[ib], kind)  # [pairs, K, G, B']
    if gates is not None:
        Wa, Wb = pair_gate_weights(gates, nodes, ia, ib)
        pair = (Wa * Wb * U).mean(dim=(1, 3))  # [pairs, G]
    else:
        pair = U.mean(dim=(1, 3))
    if reverse_min:
        U_rev = discrepancy(S[ia], S[ib].flip(-1), kind)
        pair_rev = (Wa * Wb.flip(-1) * U_rev).mean(dim=(1, 3)) if gates is not None else U_rev.mean(dim=(1, 3))
        pair = torch.minimum(pair, pair_rev)
    both = present[ia] & present[ib]  # [pairs, G]
    pair = torch.where(both, pair, torch.zeros_like(pair))
    n_pairs = both.sum(0)
    losses = pair.sum(0) / n_pairs.clamp(min=1)
    costs = torch.zeros(p, p, n_groups, device=device, dtype=pair.dtype)
    costs = costs.index_put((ia, ib), pair).index_put((ib, ia), pair)
    return GroupedSlicedResult(losses, n_pairs > 0, costs.permute(2, 0, 1), nodes)


@dataclass
class GroupedSlicedGWResult:
    group_losses: Tensor  # [G]
    valid: Tensor  # [G] bool
    pair_costs: Tensor  # [G, p, p]
    pair_gates: list[Tensor]  # per source, [G, P, K, p] gates of the sampled node pairs (forward order)


def grouped_sliced_gromov_alignment(
    xs: Sequence[Tensor],
    groups: Sequence[Tensor],
    n_groups: int,
    directions: Tensor,
    pair_index: Tensor,
    *,
    length: int,
    pair_gates: PairGateFn | None = None,
    orders: Sequence[Tensor] | None = None,
    kind: str = "squared",
) -> GroupedSlicedGWResult:
    """:func:`crossmatch.icpa.sliced.sliced_gromov_alignment` of every group of a packed batch in one pass.

    ``pair_gates(source, rows_a [G, P, K], rows_b [G, P, K]) -> [G, P, K, p]``. Group ``g``'s
    loss equals :func:`sliced_gromov_alignment` on the sources present in ``g``.
    """
    _check_sources(xs, directions)
    _check_groups(xs, groups, n_groups)
    if pair_index.dim() != 2 or pair_index.shape[1] != 2:
        raise ValueError(f"pair_index must be [P, 2], got {tuple(pair_index.shape)}")
    if pair_index.numel() and (int(pair_index.min()) < 0 or int(pair_index.max()) >= length):
        raise ValueError(f"pair_index entries must lie in [0, {length})")
    p = len(xs)
    q, q2 = pair_index[:, 0], pair_index[:, 1]
    rq, rq2 = length - 1 - q, length - 1 - q2
    rho, rho_rev, pg, pg_rev, present = [], [], [], [], []
    for i, x in enumerate(xs):
        values, nodes, counts = grouped_sorted_slices(x, groups[i], n_groups, directions, length,
                                                      None if orders is None else orders[i])
        values, nodes = values.permute(1, 2, 0), nodes.permute(1, 2, 0)  # [G, B', K]
        present.append(counts > 0)
        rho.append(discrepancy(values[:, q], values[:, q2], kind))  # [G, P, K]
        rho_rev.append(discrepancy(values[:, rq], values[:, rq2], kind))
        if pair_gates is not None:
            pg.append(pair_gates(i, nodes[:, q], nodes[:, q2]))
            pg_rev.append(pair_gates(i, nodes[:, rq], nodes[:, rq2]))
    device = xs[0].device
    if p < 2:
        zero = xs[0].sum() * 0.0
        return GroupedSlicedGWResult(zero.expand(n_groups), torch.zeros(n_groups, dtype=torch.bool, device=device),
                                     torch.zeros(n_groups, 1, 1, device=device), pg)
    R, R_rev = torch.stack(rho), torch.stack(rho_rev)  # [p, G, P, K]

    def rel(a: Tensor, b: Tensor) -> Tensor:
        return (a - b) ** 2 if kind == "squared" else 1 - a * b

    U = rel(R.unsqueeze(1), R.unsqueeze(0))  # [p, p, G, P, K]
    U_rev = rel(R.unsqueeze(1), R_rev.unsqueeze(0))
    if pair_gates is not None:
        A = torch.stack(pg).permute(0, 4, 1, 2, 3)  # [a, b, G, P, K]
        A_rev = torch.stack(pg_rev).permute(0, 4, 1, 2, 3)
        U = A * A.transpose(0, 1) * U
        U_rev = A * A_rev.transpose(0, 1) * U_rev
    costs = torch.minimum(U.mean(dim=(3, 4)), U_rev.mean(dim=(3, 4)))  # [p, p, G]
    pres = torch.stack(present)  # [p, G]
    off = ~torch.eye(p, dtype=torch.bool, device=device)
    valid = pres.unsqueeze(1) & pres.unsqueeze(0) & off.unsqueeze(2)
    costs = torch.where(valid, costs, torch.zeros_like(costs))
    n_pairs = valid.sum(dim=(0, 1))
    losses = costs.sum(dim=(0, 1)) / n_pairs.clamp(min=1)
    return GroupedSlicedGWResult(losses, n_pairs > 0, costs.permute(2, 0, 1), pg)
