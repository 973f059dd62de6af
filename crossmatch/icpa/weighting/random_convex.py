"""``random_convex``: a fresh random convex combination λ every step (phase 1, §2.6).

Minimising random convex combinations of the source losses approximately minimises the
hypervolume under the Pareto front and pushes every front point to have a supporting
hyperplane (paper §3.3). Ambiguity 2.6-A: the main text says Dirichlet, the supplement and
code normalise i.i.d. U(0, 1) draws; the default follows the code, Dirichlet(1, …, 1) is an
option (a different distribution: normalised Exp(1) draws).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from crossmatch.errors import ConfigError
from crossmatch.icpa.weighting.abstract import AbsWeighting


@dataclass(frozen=True)
class RandomConvexOptions:
    distribution: str = "uniform"  # uniform: λ_j = U_j / Σ U_k | dirichlet: Dir(1, …, 1)

    def __post_init__(self) -> None:
        if self.distribution not in ("uniform", "dirichlet"):
            raise ConfigError(f"random_convex.distribution must be 'uniform' or 'dirichlet', got {self.distribution!r}")


class RandomConvexWeighting(AbsWeighting):
    """λ on the simplex over the sources present in the batch."""

    name = "random_convex"
    Options = RandomConvexOptions

    def weights(self, losses: Tensor, present: Tensor, grads: Tensor | None,
                generator: torch.Generator | None) -> Tensor:
        u = torch.rand(self.n_sources, generator=generator, device=losses.device, dtype=torch.float64)
        if self.options.distribution == "dirichlet":
            u = -torch.log1p(-u)  # Exp(1) draws; normalised they are Dirichlet(1, …, 1)
        u = torch.where(present, u, torch.zeros_like(u))
        return (u / u.sum().clamp_min(1e-300)).to(losses.dtype)
