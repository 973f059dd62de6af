"""Imitation targets and loss for WeaveNet pre-training (issue 13; our addition, not in the WeaveNet paper).

The paper trains WeaveNet without labels (eq. 3–10) for 200k iterations of a WN-60 on a V100. On a CPU
budget that objective left the network's outputs mostly unstable (the WN-8 shipped before issue 13: 0.4–7 %
stable at N = 20).
Imitation gives every step a dense signal instead: cross-entropy of the network's row and column
softmaxes against a *stable* matching found by a classical algorithm (the teacher). Fine-tuning with the
paper's losses afterwards (``objective: imitation+unsupervised``) can move the network off the teacher
toward lower-SEq stable matchings.

Teachers (``Teacher``):

* ``power_balance`` — PowerBalance (ALGORITHMS.md §3.8.5), the best algorithm of Tables 2–3 in most cells.
* ``best_stable`` — per instance, the stable matching with the lowest target cost among PowerBalance,
  PolyMin (§3.8.2) and Gale–Shapley from both sides (§3.8.1); ties keep that order. Every candidate is
  stable, so the target is a stable matching whose cost is never above PowerBalance's: the network learns
  the per-instance best of the algorithms a user already has. This is the default.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from crossmatch.twosided.costs import costs_batch
from crossmatch.twosided.gale_shapley import gs_best_many
from crossmatch.twosided.instance import Instance, ranks_from_satisfaction
from crossmatch.twosided.polymin import polymin_many
from crossmatch.twosided.power_balance import power_balance_many

Teacher = Literal["power_balance", "best_stable"]
TEACHERS: tuple[str, ...] = ("power_balance", "best_stable")


def teacher_matchings(sa: np.ndarray, sb: np.ndarray, *, teacher: Teacher = "best_stable",
                      target: Literal["seq", "bal"] = "seq") -> np.ndarray:
    """Teacher matchings ``(B, N)`` (column of every A-agent) for satisfaction batches ``S_A`` ``(B, N, N)``
    and ``S_B``; every output is a stable perfect matching (the teachers are the §3.8 algorithms)."""
    if teacher not in TEACHERS:
        raise ValueError(f"teacher must be one of {TEACHERS}, got {teacher!r}")
    if sa.ndim != 3 or sa.shape[1] != sa.shape[2] or sb.shape != sa.shape:
        raise ValueError(f"expected square S_A and S_B of shape (B, N, N), got {sa.shape} and {sb.shape}")
    ra = (ranks_from_satisfaction(sa) - 1).astype(np.int32)
    rb = (ranks_from_satisfaction(sb) - 1).astype(np.int32)
    solvers = (power_balance_many,) if teacher == "power_balance" else (power_balance_many, polymin_many, gs_best_many)
    cands = np.empty((len(solvers),) + sa.shape[:2], dtype=np.int64)
    for k in range(sa.shape[0]):
        inst = Instance(ra[k], rb[k])
        for s, solve in enumerate(solvers):
            cands[s, k] = solve(inst, (target,))[target]
    if len(solvers) == 1:
        return cands[0]
    cost = np.stack([costs_batch(ra, rb, c)[target] for c in cands])  # (solvers, B)
    best = cost.argmin(axis=0)  # first minimum: PowerBalance wins ties
    return cands[best, np.arange(sa.shape[0])]


def imitation_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Per-instance cross-entropy of both softmax views of ``m̂`` (``B × N × N``) against a perfect matching
    ``target`` (``B × N``, column of each row): ``½ (CE_rows + CE_cols)`` averaged over agents. Both views
    are the two distributions the paper's head produces (§3.4), so a low loss means both sides agree on the
    teacher's partner — what Hungarian (and argmax) binarisation need."""
    if logits.ndim != 3 or logits.shape[1] != logits.shape[2] or target.shape != logits.shape[:2]:
        raise ValueError(f"expected logits (B, N, N) and target (B, N), got {tuple(logits.shape)} and {tuple(target.shape)}")
    b, n, _ = logits.shape
    inverse = torch.empty_like(target)
    inverse.scatter_(1, target, torch.arange(n, device=target.device).expand(b, n))
    ce_rows = torch.nn.functional.cross_entropy(logits.reshape(b * n, n), target.reshape(-1), reduction="none")
    ce_cols = torch.nn.functional.cross_entropy(logits.transpose(1, 2).reshape(b * n, n), inverse.reshape(-1),
                                                reduction="none")
    return 0.5 * (ce_rows + ce_cols).reshape(b, n).mean(dim=1)
