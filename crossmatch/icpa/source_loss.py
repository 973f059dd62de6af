"""The per-source loss ``L_j`` of one step (ALGORITHMS.md §2.4): weighted BCE over sampled pairs.

Each anchor takes ``pairs.walks_per_anchor`` one-step walks to a positive and is scored against
same-category and global negatives drawn from the negative distribution. :func:`source_loss` draws
every pair's negatives independently; :func:`pooled_source_loss` (``pairs.negative_pool`` > 0) draws
the global negatives from one pool per step. Both return ``(L_j, anchor embeddings)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from crossmatch.icpa.config import PairConfig
from crossmatch.icpa.graph import SourceGraph
from crossmatch.icpa.losses import pair_loss_from_scores, softmax_pair_loss_from_scores
from crossmatch.icpa.model import ICPAModel
from crossmatch.icpa.sampler import degree_negatives, walk_step


def source_loss(model: ICPAModel, g: SourceGraph, j: int, anchors: Tensor, pairs: PairConfig,
                generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``L_j`` over ``walks_per_anchor`` positive pairs per anchor, and the anchors' embeddings.

    Every node is encoded once per step and tower, however often it occurs among the step's
    anchors, positives and negatives (``torch.unique``); its occurrences share that one
    neighbour draw. Each (anchor, positive, negatives) tuple is still drawn independently,
    so the loss has the same expectation as encoding every occurrence separately, at a
    fraction of the cost (with r walks per anchor and 6-8 negatives, the same few hundred
    items of a category batch recur dozens of times per step).
    """
    occ = anchors.repeat(pairs.walks_per_anchor)
    pos, _ = walk_step(g.item_item, occ, generator)  # anchors have degree >= 1
    uniform = pairs.negative_sampling == "uniform"
    by_cat = g.category_items_uniform if uniform else g.category_items
    by_all = g.all_items_uniform if uniform else g.all_items
    parts = []
    if pairs.negatives:
        parts.append(degree_negatives(by_cat, g.item_category[pos], pairs.negatives, generator))
    if pairs.global_negatives:
        parts.append(degree_negatives(by_all, torch.zeros_like(pos), pairs.global_negatives, generator))
    neg = torch.cat(parts, dim=1)
    ua, inv_a = torch.unique(anchors, return_inverse=True)
    uc, inv_c = torch.unique(torch.cat([pos, neg.reshape(-1)]), return_inverse=True)
    za_u = model.encode(j, g, ua, "anchor", generator)
    zc_u = model.encode(j, g, uc, "context", generator)
    # All scores between the step's distinct anchors and contexts in one small GEMM, then
    # gathered per pair: s(a, b) = <f_anchor(a), f_ctx(b)> exactly as per-pair dot products.
    scores = za_u @ zc_u.T
    n = occ.numel()
    rows = inv_a.repeat(pairs.walks_per_anchor)
    s_pos = scores[rows, inv_c[:n]]
    s_neg = scores[rows.unsqueeze(1), inv_c[n:].view(n, pairs.total_negatives)]
    ell = pair_loss_from_scores(s_pos, s_neg, gamma=model.config.gamma, positive_weight=pairs.positive_weight)
    return ell.mean(), za_u[inv_a]


def pooled_source_loss(model: ICPAModel, g: SourceGraph, j: int, anchors: Tensor, pairs: PairConfig,
                       generator: torch.Generator, device: torch.device) -> tuple[Tensor, Tensor]:
    """``L_j`` with shared negatives (``pairs.negative_pool`` > 0; issue 11 part 1).

    Same pairs and loss as :func:`source_loss` (§2.4: ``walks_per_anchor`` one-step walks per
    anchor, weighted BCE over the positive and its negatives), except that the global
    negatives of every pair are drawn (uniformly, with replacement) from one pool of
    ``negative_pool`` nodes drawn per step from the negative distribution: each negative is
    still distributed as before, so the loss keeps its expectation. The nodes a step encodes
    are then bounded by anchors + positives + same-category negatives + pool, independent of
    the catalogue size. On the CPU each distinct node is encoded once (``torch.unique``); on
    other devices every occurrence is encoded, which keeps all shapes fixed: no host sync.
    """
    r, pool_size = pairs.walks_per_anchor, pairs.negative_pool
    occ = anchors.repeat(r)
    n = occ.numel()
    pos, _ = walk_step(g.item_item, occ, generator)  # anchors have degree >= 1
    uniform = pairs.negative_sampling == "uniform"
    by_cat = g.category_items_uniform if uniform else g.category_items
    by_all = g.all_items_uniform if uniform else g.all_items
    kc, kg = pairs.negatives, pairs.global_negatives
    parts = [pos]
    if kc:
        parts.append(degree_negatives(by_cat, g.item_category[pos], kc, generator).reshape(-1))
    if kg:
        one_row = torch.zeros(1, dtype=torch.long, device=device)
        parts.append(degree_negatives(by_all, one_row, pool_size, generator).reshape(-1))
        pick = torch.randint(pool_size, (n, kg), generator=generator, device=device)
    ctx = torch.cat(parts)
    if device.type == "cpu":
        ua, inv_a = torch.unique(anchors, return_inverse=True)
        uc, inv_c = torch.unique(ctx, return_inverse=True)
    else:
        ua, inv_a = anchors, torch.arange(anchors.numel(), device=device)
        uc, inv_c = ctx, torch.arange(ctx.numel(), device=device)
    za_u = model.encode(j, g, ua, "anchor", generator)
    zc_u = model.encode(j, g, uc, "context", generator)
    scores = za_u @ zc_u.T
    rows = inv_a.repeat(r)
    s_pos = scores[rows, inv_c[:n]]
    negs = []
    if kc:
        negs.append(scores[rows.unsqueeze(1), inv_c[n:n + n * kc].view(n, kc)])
    pool_cols = inv_c[n + n * kc:]
    if kg and pairs.objective == "bce":
        negs.append(scores[rows.unsqueeze(1), pool_cols[pick]])
    if pairs.objective == "softmax":
        # every pool node is a negative of every pair (its scores are already in `scores`); `pick` is still
        # drawn above so the random stream is the same for both objectives
        s_neg = scores[:, pool_cols][rows]
        hit = uc[pool_cols].unsqueeze(0) == pos.unsqueeze(1)
        if kc:
            same_cat = uc[inv_c[n:n + n * kc]].view(n, kc) == pos.unsqueeze(1)
            s_neg = torch.cat([negs[0], s_neg], dim=1)
            hit = torch.cat([same_cat, hit], dim=1)
        ell = softmax_pair_loss_from_scores(s_pos, s_neg, gamma=model.config.gamma, mask=hit)
        return ell.mean(), za_u[inv_a]
    s_neg = torch.cat(negs, dim=1)
    ell = pair_loss_from_scores(s_pos, s_neg, gamma=model.config.gamma, positive_weight=pairs.positive_weight)
    return ell.mean(), za_u[inv_a]
