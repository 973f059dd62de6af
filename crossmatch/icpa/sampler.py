"""Vectorised sampling: weighted neighbours, one random-walk step, degree negatives, batches.

PyG's ``NeighborLoader``/``LinkNeighborLoader`` need pyg-lib or torch-sparse, which we cannot
install, so sampling is done here with plain torch on the CSR of :mod:`crossmatch.icpa.graph`:
one ``torch.rand`` per draw and one ``torch.searchsorted`` over the global cumulative weights,
for all requested nodes at once (no Python loop over nodes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from crossmatch.icpa.graph import CSR, MultiSourceGraph


def sample_csr(csr: CSR, rows: Tensor, k: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Draw ``k`` neighbours of every row with replacement, ∝ edge weight (§2.3.2).

    Args:
        csr: adjacency; ``csr.cum`` holds the global cumulative edge weights.
        rows: ``[N]`` int64 row ids.
        k: draws per row.

    Returns:
        ``(neighbours [N, k] int64, has_neighbour [N] bool)``; rows without any edge get
        neighbour 0 and ``has_neighbour = False`` (callers must mask them).
    """
    if rows.dim() != 1:
        raise ValueError(f"rows must be 1-D, got shape {tuple(rows.shape)}")
    start = csr.indptr[rows]
    end = csr.indptr[rows + 1]
    has = end > start
    if csr.nnz == 0:
        return torch.zeros(rows.numel(), k, dtype=torch.long, device=rows.device), has
    # Weight of all edges before a row's first edge, read from ``cum`` in place: prepending a zero
    # to ``cum`` (an O(nnz) copy per call) made every draw cost grow with the whole graph.
    zero = torch.zeros((), dtype=csr.cum.dtype, device=csr.cum.device)
    lo = torch.where(start > 0, csr.cum[(start - 1).clamp(min=0)], zero)
    span = torch.where(end > 0, csr.cum[(end - 1).clamp(min=0)], zero) - lo
    u = torch.rand(rows.numel(), k, generator=generator, device=rows.device, dtype=csr.cum.dtype)
    target = lo.unsqueeze(1) + u * span.unsqueeze(1)
    pos = torch.searchsorted(csr.cum, target, right=True)
    # Float round-off can land one past the row; clamping keeps the draw inside [start, end).
    pos = torch.minimum(torch.maximum(pos, start.unsqueeze(1)), (end - 1).clamp(min=0).unsqueeze(1))
    pos = pos.clamp(max=csr.nnz - 1)
    return csr.indices[pos], has


def walk_step(csr: CSR, nodes: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """One node2vec step with p = q = 1, i.e. next node ∝ edge weight (§2.4.2, discrepancy 7).

    **Deviation:** anchors are items and the step runs on the item–item co-occurrence graph
    (M2GRL-style); users enter the model as a neighbour type only. The paper's walk runs on the
    whole heterogeneous graph, but eq. 10 retrieval needs item–item similarities only.
    """
    nxt, has = sample_csr(csr, nodes, 1, generator)
    return nxt[:, 0], has


def degree_negatives(category_items: CSR, categories: Tensor, k: int,
                     generator: torch.Generator | None = None) -> Tensor:
    """``k`` negatives per entry, drawn from the given category ∝ item–item degree (§2.4.2).

    ``category_items`` rows are categories, weights the degrees; a category whose items all
    have degree 0 cannot occur here because a positive always has degree >= 1.
    """
    neg, _ = sample_csr(category_items, categories, k, generator)
    return neg


def category_batches(
    graph: MultiSourceGraph,
    sources: Sequence[int],
    batch_size: int,
    generator: torch.Generator | None = None,
    pack: bool = False,
) -> list[dict[int, Tensor]]:
    """One epoch of mini-batches, grouped by category and covering every source present in it.

    §2.4.1 / paper §3.5: "nodes in a mini-batch are basically in the same category, and cover
    nodes of all the sources". For category ``c`` with ``N_c`` anchors over the given sources we
    make ``ceil(N_c / batch_size)`` batches and split every source's shuffled anchors evenly
    across them, so each anchor is used once per epoch. A source with fewer anchors than
    batches is re-drawn with replacement so that it still appears in every batch of ``c``.
    Batch order is shuffled. Runs on the CPU (a loop over categories × sources, not nodes).

    ``pack=True`` (**deviation**, option): after the split, whole category groups are merged, in
    shuffled order, into one batch while the merged batch keeps at most ``batch_size``
    anchors. With many small categories (synthetic preset: 20 categories of ~17 items per
    source) one category per batch gives steps of ~50 anchors, each paying a forward pass over
    nearly the whole catalogue for its positives and negatives; packing gives the paper's
    batch size while every anchor still shares its batch with its category's other nodes, and
    the trainer aligns each category of a packed batch separately (alignment only between
    nodes of the same category, §2.5).

    Returns:
        list of ``{source index: anchor item ids}``.
    """
    n_cat = len(graph.categories)
    per_cat: list[dict[int, Tensor]] = [{} for _ in range(n_cat)]
    for j in sources:
        g = graph.sources[j]
        anchors = g.anchors.cpu()
        cats = g.item_category.cpu()[anchors]
        order = torch.argsort(cats, stable=True)
        anchors, cats = anchors[order], cats[order]
        counts = torch.bincount(cats, minlength=n_cat).tolist()
        offset = 0
        for c, n in enumerate(counts):
            if n:
                per_cat[c][j] = anchors[offset:offset + n]
            offset += n
    batches: list[dict[int, Tensor]] = []
    for in_cat in per_cat:
        if not in_cat:
            continue
        total = sum(int(a.numel()) for a in in_cat.values())
        n_batches = max(1, math.ceil(total / batch_size))
        split: dict[int, tuple[Tensor, ...]] = {}
        for j, a in in_cat.items():
            perm = a[torch.randperm(a.numel(), generator=generator)]
            if perm.numel() < n_batches:
                extra = perm[torch.randint(perm.numel(), (n_batches - perm.numel(),), generator=generator)]
                perm = torch.cat([perm, extra])
            split[j] = torch.tensor_split(perm, n_batches)
        for b in range(n_batches):
            batches.append({j: parts[b] for j, parts in split.items()})
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    batches = [batches[i] for i in shuffle]
    if not pack:
        return batches
    packed: list[dict[int, Tensor]] = []
    sizes: list[int] = []
    for batch in batches:
        size = sum(int(a.numel()) for a in batch.values())
        if packed and sizes[-1] + size <= batch_size:
            last = packed[-1]
            for j, a in batch.items():
                last[j] = torch.cat([last[j], a]) if j in last else a
            sizes[-1] += size
        else:
            packed.append(dict(batch))
            sizes.append(size)
    return packed
