"""The per-source loss of the deviation ``pairs.objective: history``: leave one out of a user's history.

Eq. 10 scores an item for a user by ``Σ_h exp(γ s(h, i))`` over the user's history ``h``: an
additive item–item model, as EASE (Steck 2019) is. The pair objectives (§2.4.3 BCE, or the
pool softmax) fit ``s(a, ·)`` to one anchor's co-occurrence neighbours, i.e. a co-occurrence /
item-kNN model; EASE fits each item of a user from the *other* items of the same user, jointly.
This objective does the same in eq. 10's own form: a target item of a user, its logit
``log Σ_h exp(γ s(h, target))`` over the user's other items, softmax against the step's shared
pool scored the same way. So the model is trained on the function it is evaluated with.
"""

from __future__ import annotations

import torch
from torch import Tensor

from crossmatch.icpa.config import PairConfig
from crossmatch.icpa.graph import SourceGraph
from crossmatch.icpa.model import ICPAModel
from crossmatch.icpa.sampler import degree_negatives, walk_step


def interaction_targets(g: SourceGraph, anchors: Tensor, generator: torch.Generator | None) -> Tensor:
    """The end of one walk anchor → user → item per anchor, each step ∝ interaction weight
    (``history_targets: interaction``); an anchor with no user keeps itself.

    From uniform anchors this favours popular items (an item's chance grows with its users and
    theirs with their items) without being exactly the interaction distribution.
    """
    via, has_via = walk_step(g.item_user, anchors, generator)
    return torch.where(has_via, walk_step(g.user_item, via, generator)[0], anchors)


def interaction_edges(g: SourceGraph, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """``n`` (item, user) pairs, each an interaction drawn ∝ its weight over the whole source
    (``history_targets: edge``): the item marginal is exactly the interaction distribution.

    One uniform draw in the total weight and a binary search in ``item_user.cum`` per pair; the
    item is the row of the drawn edge, the user its column.
    """
    adj = g.item_user
    if adj.nnz == 0:
        raise ValueError(f"source {g.name!r} has no interaction to draw a target from")
    u = torch.rand(n, generator=generator, device=adj.cum.device, dtype=adj.cum.dtype) * adj.cum[-1]
    e = torch.searchsorted(adj.cum, u, right=True).clamp(max=adj.nnz - 1)
    item = torch.searchsorted(adj.indptr, e, right=True) - 1
    return item, adj.indices[e]


def history_source_loss(model: ICPAModel, g: SourceGraph, j: int, anchors: Tensor, pairs: PairConfig,
                        generator: torch.Generator, device: torch.device) -> tuple[Tensor, Tensor]:
    """``L_j`` and the anchors' embeddings for ``pairs.objective: history``.

    There are ``walks_per_anchor`` targets per anchor. With ``history_targets: anchor`` or
    ``interaction`` each target comes from its anchor and a user who holds it is then drawn ∝ the
    interaction weight (``item_user``): the target is the anchor itself (``anchor``: targets uniform
    over items) or the end of a walk anchor → user → item, each step ∝ weight (``interaction``,
    :func:`interaction_targets`: targets weighted towards popular items, as evaluation targets are;
    an anchor with no user keeps itself and drops out). With ``edge`` (:func:`interaction_edges`)
    the target and its user are one interaction drawn ∝ weight over the whole source, so targets
    follow the interaction distribution exactly and the anchors only feed the alignment terms.
    Then ``history_length`` items of the user ∝ weight, with replacement (``user_item``).
    Draws equal to the target are left out (leave one out). A row drops out of the mean when every
    draw is the target (always so for a user with no other item) or, in the first two modes, when
    the target has no user at all. The ``negative_pool`` nodes of the step are the negatives of every target, pool copies of
    the target masked (and, with ``interaction`` or ``edge``, of every item drawn into the row's history: the
    user holds them). Loss per target:
    ``−ℓ(t) + log(e^{ℓ(t)} + Σ_k e^{ℓ(n_k)})`` with ``ℓ(i) = log Σ_l exp(γ s(h_l, i))``.

    Why ``interaction`` (validation, issue 10): with anchor targets the model learns ``p(h | t)``
    under a uniform prior on ``t`` instead of ``p(t | h)``, which drops item popularity; XMarket
    mean valid NDCG@10 (Base) 0.2881 with anchor targets (one seed, 16 walks), 0.3794 with
    interaction targets (3 seeds, 4 walks; the pool softmax 0.3779). ``edge`` (XMarket's setting),
    with ``schedule.ema_decay`` 0.99: 0.3933 against 0.3804 for ``interaction`` with the same
    average; on the default preset ``interaction`` is better (README, "Edge targets").
    """
    r, length, pool_size = pairs.walks_per_anchor, pairs.history_length, pairs.negative_pool
    target = anchors.repeat(r)
    n = target.numel()
    if pairs.history_targets == "edge":
        target, users = interaction_edges(g, n, generator)
        has_user = torch.ones(n, dtype=torch.bool, device=target.device)
    else:
        if pairs.history_targets == "interaction":
            target = interaction_targets(g, target, generator)
        users, has_user = walk_step(g.item_user, target, generator)  # an item with no user has no history to draw
    hist, _ = walk_step(g.user_item, users.repeat_interleave(length), generator)
    hist = hist.view(n, length)
    by_all = g.all_items_uniform if pairs.negative_sampling == "uniform" else g.all_items
    pool = degree_negatives(by_all, torch.zeros(1, dtype=torch.long, device=device), pool_size, generator).reshape(-1)
    left = torch.cat([anchors, hist.reshape(-1)])
    right = torch.cat([target, pool])
    if device.type == "cpu":
        ua, inv_a = torch.unique(left, return_inverse=True)
        uc, inv_c = torch.unique(right, return_inverse=True)
    else:  # fixed shapes, no host sync (as pooled_source_loss)
        ua, inv_a = left, torch.arange(left.numel(), device=device)
        uc, inv_c = right, torch.arange(right.numel(), device=device)
    za_u = model.encode(j, g, ua, "anchor", generator)
    zc_u = model.encode(j, g, uc, "context", generator)
    # [n, L, d] history embeddings against the target's and the pool's: two batched products, not a gather from
    # an all-pairs score matrix (whose backward would scatter n·L·P entries)
    zh = za_u[inv_a[anchors.numel():]].view(n, length, -1)
    s_target = (zh * zc_u[inv_c[:n]].unsqueeze(1)).sum(-1, keepdim=True)  # [n, L, 1]
    s_pool = zh @ zc_u[inv_c[n:]].T  # [n, L, P]
    logits = model.config.gamma * torch.cat([s_target, s_pool], dim=2)  # [n, L, 1 + P]
    other = hist != target.unsqueeze(1)
    keep = other.any(dim=1) & has_user
    # a row drops out of the mean when its target has no user or every draw is the target (always so when the user
    # holds no other item); it keeps every draw so that no logsumexp runs over -inf only (NaN gradient even times 0)
    logits = logits.masked_fill(~(other | ~keep.unsqueeze(1)).unsqueeze(2), float("-inf"))
    per_item = torch.logsumexp(logits, dim=1)  # [n, 1 + P]: ℓ(target), ℓ(pool nodes)
    hit = pool.unsqueeze(0) == target.unsqueeze(1)
    if pairs.history_targets != "anchor":
        hit = hit | (pool.view(1, 1, -1) == hist.unsqueeze(2)).any(dim=1)
    per_item = torch.cat([per_item[:, :1], per_item[:, 1:].masked_fill(hit, float("-inf"))], dim=1)
    ell = torch.logsumexp(per_item, dim=1) - per_item[:, 0]
    loss = (ell * keep).sum() / keep.sum().clamp(min=1)
    return loss, za_u[inv_a[:anchors.numel()]]
