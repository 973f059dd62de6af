"""WeaveNet: feature-weaving layers with set encoders and a dual-softmax head (ALGORITHMS.md §3.4; paper §3.1).

Tensors are channels-last: stream A ``Z_A`` is ``(B, N, M, D)`` (agent ``a_i``, candidate ``b_j``, features),
stream B ``Z_B`` is ``(B, M, N, D)``. A 1×1 convolution over edges is an ``nn.Linear`` on the last axis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

Variant = Literal["sym", "asym"]


@dataclass(frozen=True)
class WeaveNetConfig:
    """Shape of a WeaveNet (§3.4 table): ``layers`` FW layers of width ``dim`` (D), ``hidden`` = D' = 2D.

    ``variant``: ``sym`` shares every unit between the streams (F(S_A,S_B) = F(S_B,S_A)^T);
    ``asym`` (paper §3.1.6) keeps separate BatchNorms per stream and adds a side-code input channel.
    """

    layers: int = 6
    dim: int = 24
    hidden: int = 48
    residual: bool = False
    variant: Variant = "asym"

    def __post_init__(self) -> None:
        if self.layers < 1 or self.dim < 1 or self.hidden < 1:
            raise ValueError(f"layers, dim and hidden must be >= 1, got {self}")
        if self.variant not in ("sym", "asym"):
            raise ValueError(f"variant must be 'sym' or 'asym', got {self.variant!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _StreamNorm(nn.Module):
    """BatchNorm over all edges of all agents, per channel (§3.4 step 2.4).

    Symmetric: one BN sees both streams *together*, so the batch statistics (training mode) and the
    running statistics treat A and B identically — needed for the symmetry property in both modes.
    Asymmetric: one BN per stream (paper §3.1.6 (a)).
    """

    def __init__(self, channels: int, separate: bool) -> None:
        super().__init__()
        self.bn_a = nn.BatchNorm1d(channels)
        self.bn_b = nn.BatchNorm1d(channels) if separate else None

    def forward(self, xa: Tensor, xb: Tensor) -> tuple[Tensor, Tensor]:
        c = xa.shape[-1]
        fa, fb = xa.reshape(-1, c), xb.reshape(-1, c)
        if self.bn_b is None:
            out = self.bn_a(torch.cat([fa, fb], dim=0))
            ya, yb = out[: fa.shape[0]], out[fa.shape[0]:]
        else:
            ya, yb = self.bn_a(fa), self.bn_b(fb)
        return ya.reshape(xa.shape), yb.reshape(xb.shape)


class SetEncoder(nn.Module):
    """DeepSet/PointNet set encoder over every agent's outgoing edges (§3.4 step 2; paper A.2).

    ``y = W1 x + b1`` (2D → D'), ``g = max over the set``, ``o = W2 x + W3 g`` (→ D, no bias), BN, PReLU.
    The set axis is axis 2 (the candidates of the agent on axis 1), so it is permutation-invariant in the
    set and size-agnostic.
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int, separate_norm: bool) -> None:
        super().__init__()
        self.lin1 = nn.Linear(d_in, d_hidden)
        self.lin_x = nn.Linear(d_in, d_out, bias=False)
        self.lin_g = nn.Linear(d_hidden, d_out, bias=False)
        self.norm = _StreamNorm(d_out, separate_norm)
        self.act = nn.PReLU(num_parameters=1, init=0.25)

    def _encode(self, x: Tensor) -> Tensor:
        g = self.lin1(x).amax(dim=2, keepdim=True)  # (B, R, 1, D'): one vector per agent
        return self.lin_x(x) + self.lin_g(g)

    def forward(self, xa: Tensor, xb: Tensor) -> tuple[Tensor, Tensor]:
        ya, yb = self.norm(self._encode(xa), self._encode(xb))
        return self.act(ya), self.act(yb)


class WeaveNet(nn.Module):
    """``L`` feature-weaving layers, residual every 2 layers, and the paper's mean-aggregator head.

    ``forward(S_A, S_B)`` returns the raw logit matrix ``m̂ = (o^A + (o^B)^T)/2`` of shape ``(B, N, M)``;
    :func:`dual_softmax` turns it into ``(m̂^A, m̂^B)``.
    """

    def __init__(self, config: WeaveNetConfig) -> None:
        super().__init__()
        self.config = config
        asym = config.variant == "asym"
        d0 = 2 if asym else 1  # asymmetric: a side-code channel (1 on stream A, 0 on stream B)
        dims = [d0] + [config.dim] * config.layers
        self.encoders = nn.ModuleList(
            SetEncoder(2 * dims[k], config.hidden, dims[k + 1], separate_norm=asym) for k in range(config.layers)
        )
        # Head: 1×1 conv D → 1 without bias, then a 1-channel BN (§3.4 "Output head"); shared when symmetric.
        self.head = nn.Linear(config.dim, 1, bias=False)
        self.head_norm = _StreamNorm(1, separate=asym)

    def forward(self, sa: Tensor, sb: Tensor) -> Tensor:
        if sa.ndim != 3 or sb.ndim != 3 or sa.shape[0] != sb.shape[0] or sa.shape[1:] != sb.shape[1:][::-1]:
            raise ValueError(f"expected S_A (B, N, M) and S_B (B, M, N), got {tuple(sa.shape)} and {tuple(sb.shape)}")
        za, zb = sa.unsqueeze(-1), sb.unsqueeze(-1)
        if self.config.variant == "asym":
            za = torch.cat([za, torch.ones_like(za)], dim=-1)
            zb = torch.cat([zb, torch.zeros_like(zb)], dim=-1)
        keep: tuple[Tensor, Tensor] | None = None
        for layer, enc in enumerate(self.encoders):
            # Cross-concatenation (§3.4 step 1): every edge sees its own and its reverse edge's features.
            ca = torch.cat([za, zb.transpose(1, 2)], dim=-1)
            cb = torch.cat([zb, za.transpose(1, 2)], dim=-1)
            za, zb = enc(ca, cb)
            if not self.config.residual:
                continue
            if layer == 0:
                keep = (za, zb)
            elif layer % 2 == 0 and keep is not None:
                # Legacy rule (§3.4 Recommendation): add the kept tensor, then keep the *post-add* value.
                za, zb = za + keep[0], zb + keep[1]
                keep = (za, zb)
        oa, ob = self.head(za).squeeze(-1), self.head(zb).squeeze(-1)
        oa, ob = self.head_norm(oa.unsqueeze(-1), ob.unsqueeze(-1))
        return 0.5 * (oa.squeeze(-1) + ob.squeeze(-1).transpose(1, 2))


def dual_softmax(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Paper recipe (§3.4): ``m̂^A`` = softmax over each row of ``m̂`` (``B×N×M``), ``m̂^B`` = softmax over
    each row of ``m̂^T`` (``B×M×N``)."""
    return torch.softmax(logits, dim=-1), torch.softmax(logits.transpose(1, 2), dim=-1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
