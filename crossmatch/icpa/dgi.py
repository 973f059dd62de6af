"""Deep Graph Infomax baseline (Veličković et al., ICLR 2019; ICPA paper Table 2 "DGI").

PyG's :class:`~torch_geometric.nn.DeepGraphInfomax` with a one-layer ``SAGEConv`` encoder on each
source's item–item co-occurrence graph, full batch. XMarket items have no features, so the
input is a trainable identity embedding (the corruption shuffles its rows). Item embeddings
are L2-normalised and scored by eq. 10 like every other model (``crossmatch.icpa.evaluate``).
Full-batch training holds the whole graph in memory: fine for the default preset and XMarket
(≤ 10⁵ edges per source), not meant for the ``large`` preset.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import DeepGraphInfomax, SAGEConv

from crossmatch.errors import ConfigError


class _Encoder(nn.Module):
    def __init__(self, n_items: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.identity = nn.Embedding(n_items, dim)
        self.conv = SAGEConv(dim, hidden)
        self.act = nn.PReLU(hidden)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.act(self.conv(x, edge_index))


def _summary(z: Tensor, *args: object, **kwargs: object) -> Tensor:
    return torch.sigmoid(z.mean(dim=0))


def _corruption(x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    return x[torch.randperm(x.size(0), device=x.device)], edge_index


def train_dgi(src: np.ndarray, dst: np.ndarray, n_items: int, *, dim: int = 64, hidden: int = 128, steps: int = 300,
              lr: float = 1e-3, seed: int = 0, device: torch.device | str = "cpu") -> tuple[np.ndarray, float]:
    """Train DGI on one source's item graph; returns unit embeddings ``[n_items, hidden]`` and the last loss.

    ``src``/``dst`` are the co-occurrence edges (made symmetric here). ``steps`` full-batch
    Adam steps: the trainer's step budget, so DGI gets as many updates as the joint models.
    """
    if n_items < 2 or steps < 0:
        raise ConfigError(f"dgi: need >= 2 items and steps >= 0, got {n_items} items, {steps} steps")
    torch.manual_seed(seed)
    dev = torch.device(device)
    # a copy: the edges often arrive as read-only views of a polars frame, which torch warns about sharing
    s, d = torch.tensor(src, dtype=torch.long), torch.tensor(dst, dtype=torch.long)
    edge_index = torch.unique(torch.stack([torch.cat([s, d]), torch.cat([d, s])]), dim=1).to(dev)
    encoder = _Encoder(n_items, dim, hidden)
    model = DeepGraphInfomax(hidden, encoder=encoder, summary=_summary, corruption=_corruption).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss = torch.zeros(())
    for _ in range(steps):
        model.train()
        opt.zero_grad(set_to_none=True)
        x = encoder.identity.weight
        pos, neg, summ = model(x, edge_index)
        loss = model.loss(pos, neg, summ)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        z = encoder(encoder.identity.weight, edge_index)
        z = torch.nn.functional.normalize(z, dim=1)
    return z.cpu().numpy(), float(loss.detach())
