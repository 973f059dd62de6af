"""``uncertainty``: learned homoscedastic-uncertainty weights (Kendall et al., CVPR 2018), M2GRL's weighting.

M2GRL (Wang et al., KDD 2020) learns one representation per view and combines the view losses
with learned uncertainty weights: ``Σ_j e^{−s_j} L_j + s_j`` with a trainable log-variance
``s_j`` per view. Here a view is a source (issue 10: the paper's Table 2 baseline "M2GRL",
multi-view learning with learned uncertainty weighting of the per-source losses). The ``s_j``
are trained by the trainer's optimiser at their own rate ``lr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from crossmatch.errors import ConfigError
from crossmatch.icpa.weighting.abstract import AbsWeighting


@dataclass(frozen=True)
class UncertaintyOptions:
    lr: float = 0.01  # learning rate of the log-variances s_j
    init: float = 0.0  # initial s_j (0: every weight starts at 1, as Base)


class UncertaintyWeighting(AbsWeighting):
    """``w_j = e^{−s_j}`` (differentiable in ``s``) plus the regulariser ``Σ_present s_j``."""

    name = "uncertainty"
    Options = UncertaintyOptions

    def __init__(self, n_sources: int, target: int | None = None, options: Any = None) -> None:
        super().__init__(n_sources, target, options)
        if self.options.lr <= 0:
            raise ConfigError(f"uncertainty: lr must be > 0, got {self.options.lr}")
        self.log_var = torch.full((n_sources,), float(self.options.init), requires_grad=True)

    def to(self, device: torch.device) -> UncertaintyWeighting:
        self.log_var = self.log_var.detach().to(device).requires_grad_(True)
        return self

    def parameters(self) -> list[Tensor]:
        return [self.log_var]

    def regulariser(self, present: Tensor) -> Tensor:
        return torch.where(present, self.log_var, torch.zeros_like(self.log_var)).sum()

    def weights(self, losses: Tensor, present: Tensor, grads: Tensor | None,
                generator: torch.Generator | None) -> Tensor:
        return torch.exp(-self.log_var).to(losses.dtype)
