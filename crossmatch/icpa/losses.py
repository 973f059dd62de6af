"""Per-source pair loss (§2.4.3) and the gate regularisers (§2.5, eq. 6 and the code's hinge)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_EPS = 1e-7


def pair_loss(anchor: Tensor, positive: Tensor, negatives: Tensor, *, gamma: float = 5.0,
              positive_weight: float = 2.0) -> Tensor:
    """Weighted BCE per anchor: ``w·log(1+e^{−γ s(a,p)}) + Σ_k log(1+e^{γ s(a,n_k)})`` (§2.4.3).

    Args:
        anchor: ``[N, d]`` anchor-tower embeddings.
        positive: ``[N, d]`` context-tower embeddings of the positives.
        negatives: ``[N, K, d]`` context-tower embeddings of the negatives.

    Returns:
        ``[N]`` losses (the source loss ``L_j`` is their mean over the source's anchors).
    """
    if anchor.shape != positive.shape or negatives.dim() != 3 or negatives.shape[0] != anchor.shape[0] \
            or negatives.shape[2] != anchor.shape[1]:
        raise ValueError(
            f"shapes must be anchor [N, d], positive [N, d], negatives [N, K, d]; got {tuple(anchor.shape)}, "
            f"{tuple(positive.shape)}, {tuple(negatives.shape)}"
        )
    s_pos = (anchor * positive).sum(-1)
    s_neg = torch.einsum("nd,nkd->nk", anchor, negatives)
    return pair_loss_from_scores(s_pos, s_neg, gamma=gamma, positive_weight=positive_weight)


def pair_loss_from_scores(s_pos: Tensor, s_neg: Tensor, *, gamma: float = 5.0,
                          positive_weight: float = 2.0) -> Tensor:
    """:func:`pair_loss` on precomputed scores ``s_pos [N]`` and ``s_neg [N, K]`` (cosines)."""
    # softplus(-x) = log(1 + e^{-x}): numerically stable BCE on logits γ·s.
    return positive_weight * F.softplus(-gamma * s_pos) + F.softplus(gamma * s_neg).sum(-1)


def softmax_pair_loss_from_scores(s_pos: Tensor, s_neg: Tensor, *, gamma: float = 5.0,
                                  mask: Tensor | None = None) -> Tensor:
    """Sampled-softmax loss per pair: ``−γ s(a,p) + log(e^{γ s(a,p)} + Σ_k e^{γ s(a,n_k)})``.

    The deviation ``pairs.objective: softmax`` (see :class:`~crossmatch.icpa.config.PairConfig`):
    the cross-entropy of the positive among itself and the negatives under logits ``γ·s``, the
    distribution eq. 10 ranks by. ``mask [N, K]`` (True = drop) removes negatives that are the
    positive itself (accidental hits of a shared pool).
    """
    if s_neg.dim() != 2 or s_pos.shape != s_neg.shape[:1] or (mask is not None and mask.shape != s_neg.shape):
        raise ValueError(f"shapes must be s_pos [N], s_neg [N, K], mask [N, K]; got {tuple(s_pos.shape)}, "
                         f"{tuple(s_neg.shape)}, {None if mask is None else tuple(mask.shape)}")
    logits = torch.cat([gamma * s_pos.unsqueeze(1), gamma * s_neg], dim=1)
    if mask is not None:
        logits = torch.cat([logits[:, :1], logits[:, 1:].masked_fill(mask, float("-inf"))], dim=1)
    return torch.logsumexp(logits, dim=1) - logits[:, 0]


def binary_entropy(t: Tensor) -> Tensor:
    """``H(q) = −q log q − (1−q) log(1−q)`` elementwise (clamped away from 0 and 1)."""
    q = t.clamp(_EPS, 1 - _EPS)
    return -(q * q.log() + (1 - q) * (1 - q).log())


def gate_loss(t: Tensor, reduction: str = "sum") -> Tensor:
    """Information-maximisation gate loss, eq. 6: ``Σ_i H(t_i) − H(t̄)``.

    Low individual entropy makes every gate confident; high entropy of the mean keeps the
    gates diverse, which rules out the trivial "align nothing" solution.

    Args:
        t: ``[n]`` gates in (0, 1) (one node set, one target source), or ``[n, c]`` for ``c``
            independent gate vectors (the losses are summed over ``c``).
        reduction: ``"sum"`` is eq. 6 as printed. ``"mean"`` divides the first term by ``n``
            (reference code). **Deviation (default in training):** with the sum the diversity
            term weighs O(1/n) per node against O(1) for certainty, so it cannot keep the gates
            apart at batch size 1024; the mean balances the two terms.
    """
    if t.dim() == 1:
        t = t.unsqueeze(1)
    if t.dim() != 2 or t.shape[0] == 0:
        raise ValueError(f"gates must be [n] or [n, c] with n >= 1, got shape {tuple(t.shape)}")
    ind = binary_entropy(t)
    first = ind.sum(0) if reduction == "sum" else ind.mean(0)
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    return (first - binary_entropy(t.mean(0))).sum()


def gate_hinge_loss(t: Tensor, threshold: float = 0.8) -> Tensor:
    """Reference-code gate loss: ``mean H(t_i)`` plus ``−log t̄`` when ``t̄ < threshold`` (§2.5, 2.5-A)."""
    if t.dim() == 1:
        t = t.unsqueeze(1)
    mean = t.mean(0)
    hinge = torch.where(mean < threshold, -mean.clamp_min(_EPS).log(), torch.zeros_like(mean))
    return (binary_entropy(t).mean(0) + hinge).sum()


def grouped_gate_terms(t: Tensor, group: Tensor, n_groups: int, *, regulariser: str = "infomax",
                       reduction: str = "mean", threshold: float = 0.8) -> Tensor:
    """Per group and gate column, the term that :func:`gate_loss` (``infomax``) or
    :func:`gate_hinge_loss` (``hinge``) sums over columns: ``[G, c]``.

    ``gate_loss(t[group == g][:, cols])`` equals ``grouped_gate_terms(t, group, G)[g, cols].sum()``
    (likewise for the hinge). Groups without rows give 0 for ``infomax`` with ``mean``;
    callers mask them.
    """
    if t.dim() != 2 or group.shape != (t.shape[0],):
        raise ValueError(f"gates must be [n, c] with group [n]; got {tuple(t.shape)} and {tuple(group.shape)}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    if regulariser not in ("infomax", "hinge"):
        raise ValueError(f"regulariser must be 'infomax' or 'hinge', got {regulariser!r}")
    zeros = torch.zeros(n_groups, t.shape[1], device=t.device, dtype=t.dtype)
    counts = torch.bincount(group, minlength=n_groups).clamp(min=1).to(t.dtype).unsqueeze(1)
    h_sum = zeros.index_add(0, group, binary_entropy(t))
    mean = zeros.index_add(0, group, t) / counts
    if regulariser == "hinge":
        hinge = torch.where(mean < threshold, -mean.clamp_min(_EPS).log(), torch.zeros_like(mean))
        return h_sum / counts + hinge
    first = h_sum if reduction == "sum" else h_sum / counts
    return first - binary_entropy(mean)
