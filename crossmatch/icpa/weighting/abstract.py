"""Base class of the loss-weighting methods (LibMTL's ``AbsWeighting`` pattern).

A weighting turns the per-source losses of one mini-batch (and, when ``needs_grads``, their
gradients w.r.t. the shared tower) into the weight vector ``w`` of ``Σ_j w_j L_j``. The
trainer logs ``w`` every step: it shows where on the Pareto front training went.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from crossmatch.errors import ConfigError


@dataclass(frozen=True)
class NoOptions:
    """Methods without options."""


class AbsWeighting:
    """Per-step weights of the source losses.

    Sources absent from a batch (a category missing from them) have ``present = False``;
    every method gives them weight 0.
    """

    name: ClassVar[str] = ""
    needs_grads: ClassVar[bool] = False
    Options: ClassVar[type] = NoOptions

    def __init__(self, n_sources: int, target: int | None = None, options: Any = None) -> None:
        if n_sources < 1:
            raise ConfigError(f"{self.name}: need at least one source, got {n_sources}")
        if target is not None and not 0 <= target < n_sources:
            raise ConfigError(f"{self.name}: target index {target} outside 0..{n_sources - 1}")
        self.n_sources = n_sources
        self.target = target
        self.options = options if options is not None else self.Options()

    def __call__(self, losses: Tensor, present: Tensor, grads: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """Weights ``[m]`` (float32, on ``losses.device``) for this step."""
        if losses.shape != (self.n_sources,) or present.shape != (self.n_sources,):
            raise ValueError(f"{self.name}: losses and present must be [{self.n_sources}], got "
                             f"{tuple(losses.shape)} and {tuple(present.shape)}")
        if self.needs_grads and (grads is None or grads.shape[0] != self.n_sources):
            raise ValueError(f"{self.name}: needs per-source gradients [{self.n_sources}, P]")
        w = self.weights(losses.detach(), present, grads, generator)
        return torch.where(present, w, torch.zeros_like(w))

    def weights(self, losses: Tensor, present: Tensor, grads: Tensor | None,
                generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    # Learned weightings (``uncertainty``) own trainable tensors; the trainer optimises them
    # and adds their regulariser to the loss. Fixed weightings have none.
    def to(self, device: torch.device) -> AbsWeighting:
        return self

    def parameters(self) -> list[Tensor]:
        return []

    def regulariser(self, present: Tensor) -> Tensor:
        return torch.zeros((), device=present.device)
