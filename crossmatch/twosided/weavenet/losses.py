"""WeaveNet training losses L_m, L_s, L_f, L_b and their totals (ALGORITHMS.md §3.5; paper eq. 3–10).

Shapes: ``S_A`` ``(B, N, M)``, ``S_B`` ``(B, M, N)``; soft matchings ``m̂^A`` ``(B, N, M)`` (rows sum to 1)
and ``m̂^B`` ``(B, M, N)``. Every loss returns one value per instance, shape ``(B,)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Objective = Literal["sm", "fsm", "bsm"]
LMForm = Literal["code", "printed"]


@dataclass(frozen=True)
class LossWeights:
    """Paper weights (§3.5, appendix A.4): λ_m = 1.0, λ_s = 0.7, λ_f = λ_b = 0.01."""

    m: float = 1.0
    s: float = 0.7
    f: float = 0.01
    b: float = 0.01


def matrix_constraint_loss(ma: Tensor, mb: Tensor) -> Tensor:
    """L_m, the paper's cosine form (eq. 6): ``1 - (C(m̂^A, m̂^B) + C(m̂^B, m̂^A))/2``.

    ``C(m̂^A, m̂^B)`` averages over A-agents the cosine between ``a_i``'s row of the row-softmax and its row of
    the column-softmax; ``C(m̂^B, m̂^A)`` does the same for every B-agent. Zero iff the two agree, i.e. a
    symmetric doubly-stochastic ``m̂``.
    """
    mbt = mb.transpose(1, 2)  # (B, N, M)
    c_a = torch.nn.functional.cosine_similarity(ma, mbt, dim=2, eps=1e-12).mean(dim=1)
    c_b = torch.nn.functional.cosine_similarity(ma, mbt, dim=1, eps=1e-12).mean(dim=1)
    return 1.0 - 0.5 * (c_a + c_b)


def matrix_constraint_loss_code(logits: Tensor) -> Tensor:
    """L_m as in the reference code ("normed correlation", ``constraint_p = 2``; §3.5 Ambiguity 3.5-A).

    ``E = exp(max(m̂, 1e-7))``; ``1 - (N+M)/(2NM) Σ_ij (E_ij/||E_i,:||)(E_ij/||E_:,j||)``. Provided to chase
    the published numbers, and the training default: a partner collision costs ~35× more here than under
    the printed cosine form (issue 13), so it pushes harder toward one-to-one outputs.
    """
    n, m = logits.shape[1], logits.shape[2]
    e = torch.exp(torch.clamp(logits, min=1e-7))
    corr = (e / e.norm(dim=2, keepdim=True)) * (e / e.norm(dim=1, keepdim=True))
    return 1.0 - (n + m) / (2.0 * n * m) * corr.sum(dim=(1, 2))


def envy_tensors(sa: Tensor, sb: Tensor) -> tuple[Tensor, Tensor]:
    """The preference gaps L_s multiplies (they do not depend on the matching; compute once per batch).

    ``gap_a[b, i, w, j] = max(S^A_iw - S^A_ij, 0)``; ``gap_b[b, w, i, k] = max(S^B_wi - S^B_wk, 0)``.
    Deviation: the reference code clamps at 1e-7 instead of 0; we follow the paper (eq. 7).
    """
    gap_a = torch.relu(sa.unsqueeze(3) - sa.unsqueeze(2))
    gap_b = torch.relu(sb.unsqueeze(3) - sb.unsqueeze(2))
    return gap_a, gap_b


def stability_loss(x: Tensor, gaps: tuple[Tensor, Tensor]) -> Tensor:
    """L_s, blocking-pair suppression (eq. 7, Li 2019) for a soft matching ``x`` (``B × N × M``).

    ``envyA(i,w) = Σ_j x_ij max(S^A_iw − S^A_ij, 0)``, ``envyB(w,i) = Σ_k x_kw max(S^B_wi − S^B_wk, 0)``,
    ``L_s = Σ_{i,w} envyA(i,w)·envyB(w,i)``. (The terms ``j = w`` and ``k = i`` are zero.)
    """
    gap_a, gap_b = gaps
    envy_a = torch.einsum("bij,biwj->biw", x, gap_a)
    envy_b = torch.einsum("bkw,bwik->bwi", x, gap_b)
    return (envy_a * envy_b.transpose(1, 2)).sum(dim=(1, 2))


def side_satisfaction(x: Tensor, sa: Tensor, sb: Tensor) -> tuple[Tensor, Tensor]:
    """``S(m̂; A) = Σ_ij x_ij S^A_ij`` and ``S(m̂; B) = Σ_ij x_ij S^B_ji`` (eq. 10)."""
    return (x * sa).sum(dim=(1, 2)), (x * sb.transpose(1, 2)).sum(dim=(1, 2))


def fairness_loss(x: Tensor, sa: Tensor, sb: Tensor) -> Tensor:
    """L_f = |S(m̂;A) − S(m̂;B)| / N (eq. 8), N = number of A-agents."""
    s_a, s_b = side_satisfaction(x, sa, sb)
    return (s_a - s_b).abs() / x.shape[1]


def balance_loss(x: Tensor, sa: Tensor, sb: Tensor) -> Tensor:
    """L_b = −min(S(m̂;A), S(m̂;B)) / N (eq. 9)."""
    s_a, s_b = side_satisfaction(x, sa, sb)
    return -torch.minimum(s_a, s_b) / x.shape[1]


def total_loss(
    ma: Tensor,
    mb: Tensor,
    sa: Tensor,
    sb: Tensor,
    objective: Objective = "fsm",
    weights: LossWeights | None = None,
    *,
    logits: Tensor | None = None,
    lm_form: LMForm = "code",
) -> dict[str, Tensor]:
    """Eq. 3–5: ``L = λ_m L_m + ½ Σ_{x ∈ {m̂^A, (m̂^B)^T}} (λ_s L_s(x) [+ λ_f L_f(x) | + λ_b L_b(x)])``.

    Returns per-instance components and ``total`` (all shape ``(B,)``); average over the batch to train.
    """
    weights = weights or LossWeights()
    if objective not in ("sm", "fsm", "bsm"):
        raise ValueError(f"objective must be 'sm', 'fsm' or 'bsm', got {objective!r}")
    if lm_form == "code":
        if logits is None:
            raise ValueError("lm_form='code' needs the logits")
        l_m = matrix_constraint_loss_code(logits)
    elif lm_form != "printed":
        raise ValueError(f"lm_form must be 'code' or 'printed', got {lm_form!r}")
    else:
        l_m = matrix_constraint_loss(ma, mb)
    gaps = envy_tensors(sa, sb)
    va, vb = ma, mb.transpose(1, 2)  # the two views x of eq. 3-5
    # a + b written out: sum() starts from the int 0, which types the result as Tensor | int.
    l_s = 0.5 * (stability_loss(va, gaps) + stability_loss(vb, gaps))
    out = {"m": l_m, "s": l_s}
    total = weights.m * l_m + weights.s * l_s
    if objective == "fsm":
        out["f"] = 0.5 * (fairness_loss(va, sa, sb) + fairness_loss(vb, sa, sb))
        total = total + weights.f * out["f"]
    elif objective == "bsm":
        out["b"] = 0.5 * (balance_loss(va, sa, sb) + balance_loss(vb, sa, sb))
        total = total + weights.b * out["b"]
    out["total"] = total
    return out
