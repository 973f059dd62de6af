"""ICPA backbone (ALGORITHMS.md §2.3): per-source feature embeddings, one sampled GraphSAGE-style
hop with PyG aggregations, a double-tower MLP (or an MMoE tower), node and pair gates.

Encoder/decoder split in the PyG-examples style: :meth:`ICPAModel.encode` maps items of one
source to unit vectors; the decoder is the dot product ``s(a, b) = <f_anchor(a), f_ctx(b)>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MLP
from torch_geometric.nn.aggr import MeanAggregation, SumAggregation
from torch_geometric.nn.dense.linear import Linear as PygLinear

from crossmatch.icpa.config import ModelConfig
from crossmatch.icpa.graph import CSR, SourceGraph, SourceSchema
from crossmatch.icpa.sampler import sample_csr

TOWERS = ("anchor", "context")


class SourceFeatures(nn.Module):
    """Self vector of an item of one source (§2.3.1).

    Identity embedding (dim 8) ‖ one embedding (dim 8) per categorical column ‖ ELU(Linear)
    of the dense columns (width kept, as in the reference code). Sources have different
    feature columns, so the self vector is zero-padded to the widest source's width before
    the shared tower. **Deviation:** the paper does not say how sources with different
    feature spaces feed one shared tower; padding keeps every source's slots learnable
    through its own embeddings while the tower weights stay shared.
    """

    def __init__(self, schema: SourceSchema, dim: int, width: int) -> None:
        super().__init__()
        self.identity = nn.Embedding(schema.n_items, dim)
        self.categorical = nn.ModuleList(nn.Embedding(max(c, 1), dim) for c in schema.cat_cardinalities)
        self.dense = nn.Sequential(nn.Linear(schema.n_dense, schema.n_dense), nn.ELU()) if schema.n_dense else None
        self.width = width
        own = dim * (1 + len(schema.cat_cardinalities)) + schema.n_dense
        if own > width:
            raise ValueError(f"source {schema.name}: self-vector width {own} exceeds the common width {width}")

    def forward(self, nodes: Tensor, cat_features: Tensor, dense_features: Tensor) -> Tensor:
        parts = [self.identity(nodes)]
        parts += [emb(cat_features[nodes, i]) for i, emb in enumerate(self.categorical)]
        if self.dense is not None:
            parts.append(self.dense(dense_features[nodes]))
        x = torch.cat(parts, dim=1)
        return F.pad(x, (0, self.width - x.shape[1]))


def self_width(schemas: Sequence[SourceSchema], dim: int) -> int:
    return max(dim * (1 + len(s.cat_cardinalities)) + s.n_dense for s in schemas)


class MLPTower(nn.Module):
    """Dense 256 → ELU → 256 → ELU → 32 → ELU → L2 normalise (§2.3.4)."""

    def __init__(self, in_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        # plain_last=False: the reference applies ELU after the last layer too.
        self.mlp = MLP([in_dim, *hidden], act="elu", norm=None, plain_last=False)

    def forward(self, h: Tensor, source: int) -> Tensor:
        return F.normalize(self.mlp(h), dim=-1)


class MMoETower(nn.Module):
    """MMoE baseline (§2.10): one expert per source (same MLP shape), one softmax gate per source."""

    def __init__(self, in_dim: int, hidden: Sequence[int], n_sources: int) -> None:
        super().__init__()
        self.experts = nn.ModuleList(
            MLP([in_dim, *hidden], act="elu", norm=None, plain_last=False) for _ in range(n_sources)
        )
        self.gates = nn.ModuleList(nn.Linear(in_dim, n_sources) for _ in range(n_sources))

    def forward(self, h: Tensor, source: int) -> Tensor:
        mix = torch.softmax(self.gates[source](h), dim=-1)  # [N, experts]
        out = torch.stack([e(h) for e in self.experts], dim=1)  # [N, experts, d]
        return F.normalize((mix.unsqueeze(-1) * out).sum(dim=1), dim=-1)


class ICPAModel(nn.Module):
    """Shared double-tower GNN over all sources, with node gates and pair gates (§2.3).

    Embedding tables (identities, features, users, categories) are shared by both towers;
    tower MLP weights are not. Categories share one table across sources: the category
    vocabulary is the one thing the sources have in common.
    """

    def __init__(self, schemas: Sequence[SourceSchema], n_categories: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.schemas = list(schemas)
        dim = config.embedding_dim
        width = self_width(self.schemas, dim)
        self.features = nn.ModuleList(SourceFeatures(s, dim, width) for s in self.schemas)
        self.users = nn.ModuleList(nn.Embedding(max(s.n_users, 1), dim) for s in self.schemas)
        self.category = nn.Embedding(max(n_categories, 1), dim)
        in_dim = width + 3 * dim  # self ‖ mean(item nbrs) ‖ mean(user nbrs) ‖ category
        m = len(self.schemas)
        if config.tower == "mmoe":
            self.towers = nn.ModuleDict({t: MMoETower(in_dim, config.hidden, m) for t in TOWERS})
        else:
            self.towers = nn.ModuleDict({t: MLPTower(in_dim, config.hidden) for t in TOWERS})
        d = config.out_dim
        self.gate = nn.Linear(d, m)  # t(v) = sigmoid(W_g stopgrad(f(v)) + b_g), §2.3.6
        self.pair_gate = nn.Sequential(nn.Linear(3 * d, config.pair_gate_hidden), nn.ELU(),
                                       nn.Linear(config.pair_gate_hidden, m))
        self.mean_aggr = MeanAggregation()
        self.sum_aggr = SumAggregation()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """TensorFlow/Keras defaults, as in the reference code: embeddings U(−0.05, 0.05), dense
        kernels Glorot-uniform, zero biases.

        torch's defaults (N(0, 1) embeddings, Kaiming-uniform kernels, random biases) start the
        towers in a regime where the biases dominate every output, so all items get nearly the
        same unit vector; and N(0, 1) rows are ~20x larger than TF's, which Adagrad at lr 0.02
        then barely turns (alpha, ID-only model, same 400 steps: NDCG@10 0.01 vs 0.32).
        """
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                nn.init.uniform_(module.weight, -0.05, 0.05)
            elif isinstance(module, (nn.Linear, PygLinear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def n_sources(self) -> int:
        return len(self.schemas)

    def tower_parameters(self) -> list[nn.Parameter]:
        """The shared tower weights: ParetoMTL takes per-source gradients w.r.t. these (§2.7)."""
        return [p for p in self.towers.parameters() if p.requires_grad]

    def embedding_parameters(self) -> list[Tensor]:
        """Every embedding table (identities, categorical features, users, categories)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Embedding)]

    def gate_parameters(self) -> list[nn.Parameter]:
        return list(self.gate.parameters()) + list(self.pair_gate.parameters())

    def network_parameters(self) -> list[nn.Parameter]:
        """θ_n: everything except the gates."""
        gate_ids = {id(p) for p in self.gate_parameters()}
        return [p for p in self.parameters() if id(p) not in gate_ids]

    def _sampled_mean(self, csr: CSR, table: nn.Embedding, nodes: Tensor, gen: torch.Generator | None) -> Tensor:
        k = self.config.neighbours
        nbrs, has = sample_csr(csr, nodes, k, gen)
        # Rows without neighbours of this type get no message and so a zero mean.
        index = torch.arange(nodes.numel(), device=nodes.device).unsqueeze(1).expand(-1, k)[has].reshape(-1)
        x = table(nbrs[has].reshape(-1))
        return self.mean_aggr(x, index, dim_size=nodes.numel())

    def _full_mean(self, csr: CSR, table: nn.Embedding, nodes: Tensor) -> Tensor:
        # Expected value of the sampled mean: the edge-weighted mean over all neighbours.
        start, end = csr.indptr[nodes], csr.indptr[nodes + 1]
        deg = end - start
        row = torch.repeat_interleave(torch.arange(nodes.numel(), device=nodes.device), deg)
        offs = torch.arange(int(deg.sum()), device=nodes.device) - torch.repeat_interleave(
            torch.cumsum(deg, 0) - deg, deg)
        pos = torch.repeat_interleave(start, deg) + offs
        w = csr.weights[pos].unsqueeze(1)
        num = self.sum_aggr(table(csr.indices[pos]) * w, row, dim_size=nodes.numel())
        den = self.sum_aggr(w, row, dim_size=nodes.numel())
        return num / den.clamp(min=1e-12)

    def encode(self, source: int, graph: SourceGraph, nodes: Tensor, tower: str = "anchor",
               generator: torch.Generator | None = None, full: bool = False) -> Tensor:
        """Unit-norm embeddings ``[N, d]`` of items ``nodes`` of ``source``.

        ``full=False`` samples ``neighbours`` per type ∝ weight (training, §2.3.2);
        ``full=True`` uses the weighted mean over all neighbours, its expectation
        (deterministic inference; **deviation**: the paper samples at inference too).
        """
        if tower not in TOWERS:
            raise ValueError(f"tower must be one of {TOWERS}, got {tower!r}")
        feats = self.features[source](nodes, graph.cat_features, graph.dense_features)
        # ModuleList items are typed as plain Modules; __init__ fills these two lists as cast here.
        identity = cast(SourceFeatures, self.features[source]).identity
        user_table = cast(nn.Embedding, self.users[source])
        if full:
            items = self._full_mean(graph.item_item, identity, nodes)
            users = self._full_mean(graph.item_user, user_table, nodes)
        else:
            items = self._sampled_mean(graph.item_item, identity, nodes, generator)
            users = self._sampled_mean(graph.item_user, user_table, nodes, generator)
        # An item has exactly one category edge, so the mean of 5 sampled copies is that embedding.
        cat = self.category(graph.item_category[nodes])
        h = torch.cat([feats, items, users, cat], dim=1)
        # shared_tower (the GSAGE baseline): one embedding per node, as plain GraphSAGE.
        return self.towers["anchor" if self.config.shared_tower else tower](h, source)

    def node_gates(self, z: Tensor) -> Tensor:
        """``[N, m]`` gate of each node towards every source; stop-gradient on ``z`` (§2.3.6)."""
        return torch.sigmoid(self.gate(z.detach()))

    def pair_gates(self, za: Tensor, zb: Tensor) -> Tensor:
        """``[..., m]`` gates of node pairs from ``[za; zb; za ⊙ zb]`` (§2.3.6), stop-gradient."""
        za, zb = za.detach(), zb.detach()
        return torch.sigmoid(self.pair_gate(torch.cat([za, zb, za * zb], dim=-1)))
