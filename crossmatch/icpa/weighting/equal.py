"""``equal``: fixed equal weights, ``Σ_j L_j`` (the *Base*, *SOO* and *MMoE* baselines, §2.10)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from crossmatch.icpa.weighting.abstract import AbsWeighting


@dataclass(frozen=True)
class EqualOptions:
    normalise: bool = False  # True: 1/|present| instead of 1 (the same direction, other scale)


class EqualWeighting(AbsWeighting):
    """Every present source weighs 1 (the paper's "fixed equal-weight sum of L_j")."""

    name = "equal"
    Options = EqualOptions

    def weights(self, losses: Tensor, present: Tensor, grads: Tensor | None,
                generator: torch.Generator | None) -> Tensor:
        w = present.to(losses.dtype)
        if self.options.normalise:
            w = w / w.sum().clamp_min(1.0)
        return w
