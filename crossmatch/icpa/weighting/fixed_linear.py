"""``fixed_linear``: the preference, linearly scalarised — the *w/o Pareto* ablation (§2.11).

Ambiguity 2.11-A: the weights are not given; recommended ``w = z / Σ z`` with the phase-2
preference ``z = (1, ε, …)`` (1 on the target). ``epsilon = 1`` gives the uniform variant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from crossmatch.errors import ConfigError
from crossmatch.icpa.weighting.abstract import AbsWeighting


@dataclass(frozen=True)
class FixedLinearOptions:
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.epsilon <= 1:
            raise ConfigError(f"fixed_linear.epsilon must lie in [0, 1], got {self.epsilon}")


class FixedLinearWeighting(AbsWeighting):
    name = "fixed_linear"
    Options = FixedLinearOptions

    def weights(self, losses: Tensor, present: Tensor, grads: Tensor | None,
                generator: torch.Generator | None) -> Tensor:
        z = torch.full((self.n_sources,), float(self.options.epsilon), dtype=losses.dtype, device=losses.device)
        if self.target is not None:
            z[self.target] = 1.0
        z = torch.where(present, z, torch.zeros_like(z))
        total = z.sum()
        # Only absent sources carry preference (target missing, ε = 0): fall back to equal weights.
        return z / total if total > 0 else present.to(losses.dtype) / present.sum().clamp_min(1)
