"""Inference: item embeddings and eq. 10 retrieval scores for held-out evaluation (§2.9).

``score(y | x) = Σ_{y' ∈ H_x} w(x, y') / Σ w · σ(<f_anchor(y'), f_ctx(y)>)`` — a user's training
history ``H_x`` votes for every candidate item ``y`` (AU protocol, eq. 10). The item–item term
``σ(·)`` can be swapped for ``σ(γ·s)`` or ``e^{γ·s}`` (:func:`pair_scores`, defined with the blocked
and knn retrieval in :mod:`crossmatch.icpa.retrieval`). Splits, candidates,
history exclusion and metrics are in :mod:`crossmatch.icpa.evaluate`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from crossmatch.icpa.evaluate import Scorer
from crossmatch.icpa.graph import SourceGraph
from crossmatch.icpa.model import ICPAModel
from crossmatch.icpa.retrieval import EVAL_SCORES, SCORES, embedding_scorer, pair_scores

__all__ = ["EVAL_SCORES", "SCORES", "item_embeddings", "learned_scorer", "pair_scores"]


@torch.no_grad()
def item_embeddings(model: ICPAModel, graph: SourceGraph, source: int, tower: str = "anchor",
                    chunk: int = 8192) -> Tensor:
    """``[n_items, d]`` unit embeddings with the deterministic full-neighbour mean."""
    model.eval()
    n = graph.schema.n_items
    device = graph.item_category.device
    parts = [model.encode(source, graph, torch.arange(s, min(s + chunk, n), device=device), tower, full=True)
             for s in range(0, n, chunk)]
    return torch.cat(parts) if parts else torch.zeros(0, model.config.out_dim, device=device)


@torch.no_grad()
def learned_scorer(model: ICPAModel, graph: SourceGraph, source: int, *, score: str = "sigmoid",
                   retrieval: str = "exact", knn_k: int = 200) -> Scorer:
    """Eq. 10 with the model's item–item term ``pair_scores(A Cᵀ)``: history items through the
    anchor tower, candidates through the context tower, as the training pairs.

    The ``[items × items]`` matrix is never built (:mod:`crossmatch.icpa.retrieval`): ``exact``
    scores candidate blocks with a running top-k, ``knn`` keeps each item's ``knn_k`` nearest
    candidates (a sparse graph, approximate).
    """
    model.eval()
    A = item_embeddings(model, graph, source, "anchor")
    C = item_embeddings(model, graph, source, "context")
    return embedding_scorer(A, C, retrieval=retrieval, score=score, gamma=model.config.gamma, knn_k=knn_k)
