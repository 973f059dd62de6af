"""Gated sliced alignment between sources (ALGORITHMS.md §2.5, paper eq. 5 and 9).

Pure functions in the style of POT's ``ot.sliced``: embeddings in, a scalar loss out, shapes
checked with explicit messages. Projecting on a random unit direction and sorting gives the
optimal 1-D transport plan (a monotone assignment), so the plan ``π`` of eq. 5 is never
materialised; sources of different sizes are brought to a common length ``B'`` by index
interpolation. ``orders`` lets phase 2 sort by the frozen phase-1 embeddings (fixed plan
``π^0``, §2.6) while the loss is taken on the current embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

PairGateFn = Callable[[int, Tensor, Tensor], Tensor]


def interpolation_index(n: int, length: int, device: torch.device | str | None = None) -> Tensor:
    """``idx(q) = min(n − 1, ⌊q·n / B'⌋)`` for ``q = 0..B'−1`` (§2.5 SWD step 3, recommended form).

    Paper: 1-based indices divided by 1024 and rounded; code: length 512, truncated. With
    ``B'`` a common multiple of the source sizes this reproduces exact 1-D OT between
    uniform measures (each sorted value repeated ``B'/n`` times).
    """
    if n < 1 or length < 1:
        raise ValueError(f"need n >= 1 and length >= 1, got n={n}, length={length}")
    q = torch.arange(length, device=device)
    return torch.clamp(torch.div(q * n, length, rounding_mode="floor"), max=n - 1)


def random_directions(dim: int, n: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``[dim, n]`` directions ``ξ_k ~ N(0, I)`` normalised to unit length (fresh every step)."""
    xi = torch.randn(dim, n, generator=generator, device=device, dtype=dtype)
    return xi / xi.norm(dim=0, keepdim=True).clamp_min(1e-12)


def discrepancy(a: Tensor, b: Tensor, kind: str = "squared") -> Tensor:
    """``u(a, b)``: ``(a − b)²`` (standard SWD/SGW) or ``1 − a·b`` (reference code)."""
    if kind == "squared":
        return (a - b) ** 2
    if kind == "product":
        return 1 - a * b
    raise ValueError(f"discrepancy must be 'squared' or 'product', got {kind!r}")


def _argsort_rows(key: Tensor) -> Tensor:
    """Row-wise ascending argsort. On CPU NumPy's introsort is ~2.5x faster than ``torch.argsort``
    for [128, 1024] (the sort dominates the alignment step); elsewhere torch's own sort."""
    if key.device.type == "cpu":
        return torch.from_numpy(np.argsort(key.numpy(), axis=1))
    return torch.argsort(key, dim=1)


def sorted_slices(x: Tensor, directions: Tensor, length: int, order: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Sorted, interpolated projections of one source.

    Args:
        x: ``[n, d]`` embeddings (carry the gradient).
        directions: ``[d, K]`` unit directions.
        length: common length ``B'``.
        order: ``[n, d]`` embeddings that define the sort order (frozen phase-1 plan); ``x`` when None.

    Returns:
        ``(values [K, B'], nodes [K, B'])``: per direction, the projection of ``x`` at the q-th sorted
        position and the row of ``x`` that holds it. (Direction-major so that every sort runs
        over a contiguous row: sorting a strided column is several times slower on CPU.)
    """
    if x.dim() != 2 or directions.dim() != 2 or x.shape[1] != directions.shape[0]:
        raise ValueError(f"x must be [n, d] and directions [d, K]; got {tuple(x.shape)} and {tuple(directions.shape)}")
    if order is not None and order.shape != x.shape:
        raise ValueError(f"order must have the shape of x {tuple(x.shape)}, got {tuple(order.shape)}")
    proj = directions.T @ x.T  # [K, n]
    key = proj if order is None else directions.T @ order.T
    perm = _argsort_rows(key.detach())
    values = torch.gather(proj, 1, perm)
    n = x.shape[0]
    if length == n:
        return values, perm
    idx = interpolation_index(n, length, x.device)
    return values[:, idx], perm[:, idx]


@dataclass
class SlicedResult:
    loss: Tensor  # scalar: mean of the pair costs over ordered pairs j ≠ j'
    pair_costs: Tensor  # [p, p] cost D_{j,j'} (diagonal 0)
    nodes: list[Tensor]  # per source, [K, B'] rows at the sorted positions


def _check_sources(xs: Sequence[Tensor], directions: Tensor) -> None:
    if len(xs) == 0:
        raise ValueError("need at least one source")
    d = directions.shape[0]
    for i, x in enumerate(xs):
        if x.dim() != 2 or x.shape[1] != d or x.shape[0] < 1:
            raise ValueError(f"source {i}: embeddings must be [n >= 1, {d}], got {tuple(x.shape)}")


def _check_gates_and_orders(xs: Sequence[Tensor], gates: Sequence[Tensor] | None,
                            orders: Sequence[Tensor] | None) -> None:
    p = len(xs)
    if gates is not None and (len(gates) != p or any(g.shape != (x.shape[0], p) for g, x in zip(gates, xs, strict=True))):
        raise ValueError(f"gates must be one [n_j, {p}] tensor per source, got "
                         f"{[tuple(g.shape) for g in gates]} for sizes {[x.shape[0] for x in xs]}")
    if orders is not None and len(orders) != p:
        raise ValueError(f"orders must have one tensor per source ({p}), got {len(orders)}")


def pair_gate_weights(gates: Sequence[Tensor], nodes: Sequence[Tensor], ia: Tensor, ib: Tensor) -> tuple[Tensor, Tensor]:
    """Gates at the sorted positions for every source pair ``(a, b)``: a's node towards b and
    b's node towards a, stacked over pairs (``nodes[j]`` of any shape, e.g. ``[K, B']``)."""
    pairs = list(zip(ia.tolist(), ib.tolist(), strict=True))
    wa = torch.stack([gates[a][:, b][nodes[a]] for a, b in pairs])
    wb = torch.stack([gates[b][:, a][nodes[b]] for a, b in pairs])
    return wa, wb


def _off_diagonal_mean(costs: Tensor) -> Tensor:
    p = costs.shape[0]
    mask = ~torch.eye(p, dtype=torch.bool, device=costs.device)
    return costs[mask].mean()


def sliced_alignment(
    xs: Sequence[Tensor],
    directions: Tensor,
    *,
    length: int,
    gates: Sequence[Tensor] | None = None,
    orders: Sequence[Tensor] | None = None,
    kind: str = "squared",
    reverse_min: bool = False,
) -> SlicedResult:
    """Gated sliced-Wasserstein term of eq. 9 for the ``p`` sources of one category.

    ``D_{j,j'} = mean_{q,k} t_{j→j'}(r_{j,q,k}) · t_{j'→j}(r_{j',q,k}) · u(s_j[q,k], s_{j'}[q,k])``
    and the loss is ``1/(p(p−1)) Σ_{j≠j'} D_{j,j'}`` (eq. 9's ``1/(m(m−1))`` over the sources present).

    Args:
        xs: per source ``[n_j, d]`` embeddings.
        directions: ``[d, K]`` unit directions (K = 128 for SWD).
        length: interpolation length ``B'``.
        gates: per source ``[n_j, p]``: column ``b`` is the gate of each node towards source ``b``
            (same order as ``xs``); all ones when None.
        orders: per source ``[n_j, d]`` embeddings defining the plan (phase 2: frozen ``v^0``).
        kind: discrepancy ``u``.
        reverse_min: also evaluate source ``j'`` sorted descending and keep the smaller cost
            (reference code; useful with ``kind="product"``).

    Returns:
        :class:`SlicedResult`; the loss is 0 (with a graph) when fewer than two sources.
    """
    _check_sources(xs, directions)
    p = len(xs)
    _check_gates_and_orders(xs, gates, orders)
    slices = [sorted_slices(x, directions, length, None if orders is None else orders[i]) for i, x in enumerate(xs)]
    nodes = [n for _, n in slices]
    if p < 2:
        return SlicedResult(xs[0].sum() * 0.0, torch.zeros(1, 1, device=xs[0].device), nodes)
    S = torch.stack([v for v, _ in slices])  # [p, K, B']
    # D_{j,j'} is symmetric (also with gates and the reversed order), so only pairs a < b are
    # computed; their mean equals the mean over ordered pairs j ≠ j'.
    ia, ib = torch.triu_indices(p, p, offset=1, device=S.device)
    U = discrepancy(S[ia], S[ib], kind)  # [pairs, K, B']
    if gates is not None:
        # gate of a's node towards b, and of b's node towards a, at the sorted positions
        Wa, Wb = pair_gate_weights(gates, nodes, ia, ib)
        pair = (Wa * Wb * U).mean(dim=(1, 2))
    else:
        pair = U.mean(dim=(1, 2))
    if reverse_min:
        U_rev = discrepancy(S[ia], S[ib].flip(2), kind)
        pair_rev = (Wa * Wb.flip(2) * U_rev).mean(dim=(1, 2)) if gates is not None else U_rev.mean(dim=(1, 2))
        pair = torch.minimum(pair, pair_rev)
    costs = torch.zeros(p, p, device=S.device, dtype=pair.dtype)
    costs = costs.index_put((ia, ib), pair).index_put((ib, ia), pair)
    return SlicedResult(pair.mean(), costs, nodes)


@dataclass
class SlicedGWResult:
    loss: Tensor
    pair_costs: Tensor  # [p, p]
    pair_gates: list[Tensor]  # per source, [P, K, p] gates of the sampled node pairs (forward order)


def sliced_gromov_alignment(
    xs: Sequence[Tensor],
    directions: Tensor,
    pair_index: Tensor,
    *,
    length: int,
    pair_gates: PairGateFn | None = None,
    orders: Sequence[Tensor] | None = None,
    kind: str = "squared",
) -> SlicedGWResult:
    """Gated sliced Gromov–Wasserstein term (§2.5 SGWD) for the ``p`` sources of one category.

    Intra-source relations ``ρ_j(q, q') = u(s_j[q], s_j[q'])`` on sampled index pairs are
    compared across sources with ``u'(ρ, ρ') = (ρ − ρ')²`` (``1 − ρρ'`` for ``kind="product"``),
    weighted by the pair gates of both sides. 1-D GW is solved by the monotone or the
    anti-monotone map, so the cost is the minimum over the identity and the reversed order.

    Args:
        xs: per source ``[n_j, d]`` embeddings.
        directions: ``[d, K]`` unit directions (K = 8).
        pair_index: ``[P, 2]`` positions ``(q, q')`` in ``0..B'−1`` (uniform; §2.5 SGWD step 4).
        length: interpolation length ``B'``.
        pair_gates: ``fn(source, rows_a [P, K], rows_b [P, K]) -> [P, K, p]`` gates of node pairs
            towards each source; all ones when None.
        orders: as in :func:`sliced_alignment`.
        kind: discrepancy for positions and relations.
    """
    _check_sources(xs, directions)
    if pair_index.dim() != 2 or pair_index.shape[1] != 2:
        raise ValueError(f"pair_index must be [P, 2], got {tuple(pair_index.shape)}")
    if pair_index.numel() and (int(pair_index.min()) < 0 or int(pair_index.max()) >= length):
        raise ValueError(f"pair_index entries must lie in [0, {length})")
    p = len(xs)
    q, q2 = pair_index[:, 0], pair_index[:, 1]
    rq, rq2 = length - 1 - q, length - 1 - q2
    rho, rho_rev, pg, pg_rev = [], [], [], []
    for i, x in enumerate(xs):
        values, nodes = sorted_slices(x, directions, length, None if orders is None else orders[i])
        values, nodes = values.T, nodes.T  # [B', K]: rows are positions
        rho.append(discrepancy(values[q], values[q2], kind))
        rho_rev.append(discrepancy(values[rq], values[rq2], kind))
        if pair_gates is not None:
            pg.append(pair_gates(i, nodes[q], nodes[q2]))
            pg_rev.append(pair_gates(i, nodes[rq], nodes[rq2]))
    if p < 2:
        return SlicedGWResult(xs[0].sum() * 0.0, torch.zeros(1, 1, device=xs[0].device), pg)
    R = torch.stack(rho)  # [p, P, K]
    R_rev = torch.stack(rho_rev)

    def rel(a: Tensor, b: Tensor) -> Tensor:
        return (a - b) ** 2 if kind == "squared" else 1 - a * b

    U = rel(R.unsqueeze(1), R.unsqueeze(0))  # [p, p, P, K]
    U_rev = rel(R.unsqueeze(1), R_rev.unsqueeze(0))
    if pair_gates is not None:
        A = torch.stack(pg).permute(0, 3, 1, 2)  # [a, b, P, K]
        A_rev = torch.stack(pg_rev).permute(0, 3, 1, 2)
        U = A * A.transpose(0, 1) * U
        U_rev = A * A_rev.transpose(0, 1) * U_rev
    costs = torch.minimum(U.mean(dim=(2, 3)), U_rev.mean(dim=(2, 3)))
    costs = costs * (1 - torch.eye(p, device=costs.device, dtype=costs.dtype))
    return SlicedGWResult(_off_diagonal_mean(costs), costs, pg)
