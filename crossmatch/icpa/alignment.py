"""The alignment loss ICPA trains with (ALGORITHMS.md §2.5–2.6, eqs. 6 and 9), on one mini-batch.

:func:`category_layout` groups a batch's anchors by category (from the CPU copy of the categories, so
that no step reads the device); :func:`alignment_loss` then aligns every category between the sources
that have anchors of it — gated sliced Wasserstein (SWD) plus, optionally, sliced Gromov-Wasserstein
(SGWD) — and, when the alignment is *live*, adds the gate losses. All categories of the batch go
through one grouped sort per source (:func:`~crossmatch.icpa.sliced_grouped.grouped_sliced_alignment`,
:func:`~crossmatch.icpa.sliced_grouped.grouped_sliced_gromov_alignment`,
:func:`~crossmatch.icpa.losses.grouped_gate_terms`), not a Python loop over categories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from crossmatch.icpa.config import AlignConfig
from crossmatch.icpa.graph import MultiSourceGraph
from crossmatch.icpa.losses import grouped_gate_terms
from crossmatch.icpa.model import ICPAModel
from crossmatch.icpa.sliced import random_directions
from crossmatch.icpa.sliced_grouped import grouped_sliced_alignment, grouped_sliced_gromov_alignment


class CategoryLayout(NamedTuple):
    """A batch's anchors grouped by category, for the sources present in the batch (in ``present`` order)."""

    groups: list[Tensor]  # per present source: its anchors' group ids, on the device
    n_groups: int  # G: the distinct categories of the batch
    counts: Tensor  # [p, G] anchors per source and category, on the device
    any_pair: bool  # some category has anchors of two sources (else there is nothing to align)
    max_count: int  # the largest count


def category_layout(categories: Sequence[Tensor], present: list[int], batch: dict[int, Tensor],
                    device: torch.device) -> CategoryLayout:
    """Category groups of the batch's anchors, read from the CPU categories and CPU batch (no device reads).

    ``categories[j]``: item → category of source ``j`` (on the CPU); ``batch[j]``: source ``j``'s anchors.
    """
    cats = [categories[j][batch[j].cpu()] for j in present]
    _, inverse = torch.unique(torch.cat(cats), return_inverse=True)
    groups = list(torch.split(inverse, [c.numel() for c in cats]))
    n_groups = int(inverse.max()) + 1
    counts = torch.stack([torch.bincount(g, minlength=n_groups) for g in groups])  # [p, G]
    any_pair = bool(((counts > 0).sum(0) >= 2).any())
    return CategoryLayout([gr.to(device, non_blocking=True) for gr in groups], n_groups,
                          counts.to(device, non_blocking=True), any_pair, int(counts.max()))


def alignment_loss(model: ICPAModel, graph: MultiSourceGraph, present: list[int], z: dict[int, Tensor],
                   batch: dict[int, Tensor], layout: CategoryLayout, align: AlignConfig, generator: torch.Generator,
                   *, device: torch.device, frozen: ICPAModel | None = None) -> tuple[Tensor, Tensor]:
    """β-weighted part of the loss: gated SWD + SGWD (eq. 9) and, when live, the gate losses (eq. 6).

    Every category of the batch is aligned on its own, between the sources that have anchors of it
    (a one-category batch, the paper's layout, is the case G = 1; packed batches,
    ``pairs.pack_categories``, hold several). The per-category losses are averaged with weights =
    their anchor counts. ``z[j]``: the anchors' embeddings of source ``j`` (``model``, anchor tower).
    ``frozen``: phase 2's phase-1 model, whose gates and plans are then used (no gate loss);
    ``None``: a *live* alignment with ``model``'s gates, trained by the gate losses.

    Returns:
        ``(alignment, gate)`` scalars: the count-weighted SWD (+ SGWD) and gate-loss means.
    """
    zero = torch.zeros((), device=device)
    cols = torch.tensor(present, device=device)
    xs = [z[j] for j in present]
    p = len(present)
    groups, n_groups, counts, any_pair, max_count = layout
    has = counts > 0
    members = has.sum(0)
    if not any_pair:
        return zero, zero
    dirs = random_directions(xs[0].shape[1], align.swd_projections, generator, device)
    if frozen is not None:
        f0 = frozen
        with torch.no_grad():
            # v^0 uses the full weighted neighbour mean, so the frozen plan π^0 of a node does
            # not change with the neighbour draw of the step (the paper leaves this open).
            v0 = [f0.encode(j, graph.sources[j], batch[j], "anchor", full=True) for j in present]
            gates = [f0.node_gates(v)[:, cols] for v in v0]
        orders: list[Tensor] | None = v0

        def pair_gate_fn(i: int, r1: Tensor, r2: Tensor) -> Tensor:
            with torch.no_grad():
                return f0.pair_gates(v0[i][r1], v0[i][r2])[..., cols]
    else:
        orders = None
        gates = [model.node_gates(x)[:, cols] for x in xs]

        def pair_gate_fn(i: int, r1: Tensor, r2: Tensor) -> Tensor:
            return model.pair_gates(xs[i][r1], xs[i][r2])[..., cols]

    # Deviation: B' is capped at the largest per-source count of a category in the batch.
    # The paper's B' = 1024 equals its batch size; on small categories a longer sequence
    # only repeats the same sorted values (same quantiles) at a higher cost.
    length = min(align.interp_length, max_count)
    swd = grouped_sliced_alignment(xs, groups, n_groups, dirs, length=length, gates=gates, orders=orders,
                                   kind=align.discrepancy, reverse_min=align.reverse_min)
    loss = swd.group_losses
    pair_gates: list[Tensor] = []
    if align.sgwd_projections > 0 and align.sgwd_weight > 0:
        idx = torch.randint(length, (align.sgwd_pairs, 2), generator=generator, device=device)
        sg = grouped_sliced_gromov_alignment(xs, groups, n_groups, dirs[:, : align.sgwd_projections], idx,
                                             length=length, pair_gates=pair_gate_fn, orders=orders,
                                             kind=align.discrepancy)
        loss = loss + align.sgwd_weight * sg.group_losses
        pair_gates = sg.pair_gates
    reg = torch.zeros(n_groups, device=device)
    if frozen is None:
        opts: dict[str, Any] = {"regulariser": align.gate_regulariser,
                                "reduction": align.gate_reduction, "threshold": align.gate_threshold}
        eye = torch.eye(p, dtype=torch.bool, device=device)
        for a in range(p):
            # columns: the other sources present in the category; rows: a's nodes of it
            mask = (has & ~eye[a].unsqueeze(1)).T & has[a].unsqueeze(1)  # [G, p]
            reg = reg + (grouped_gate_terms(gates[a], groups[a], n_groups, **opts) * mask).sum(1)
            if pair_gates:
                t = pair_gates[a]  # [G, P, K, p]
                rows = torch.arange(n_groups, device=device).repeat_interleave(t.shape[1] * t.shape[2])
                reg = reg + (grouped_gate_terms(t.reshape(-1, p), rows, n_groups, **opts) * mask).sum(1)
        reg = reg / (members * (members - 1)).clamp(min=1)
    weight = counts.sum(0) * (members >= 2)
    weight = weight / weight.sum()
    return (weight * loss).sum(), (weight * reg).sum()
