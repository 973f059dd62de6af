"""The sampled-softmax pair objective (``pairs.objective: softmax``, issue 10).

* the loss is the cross-entropy of the positive among itself and its negatives under ``γ·s``,
  checked against ``torch.nn.functional.cross_entropy``; masked negatives drop out;
* inside a step every pool node is a negative of every pair, and exactly the pool nodes that
  are the pair's own positive are masked;
* it trains deterministically and is rejected without a pool.
"""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

from crossmatch.errors import ConfigError
from crossmatch.icpa import AlignConfig, ModelConfig, PairConfig, Schedule, Trainer, build_model
from crossmatch.icpa.losses import softmax_pair_loss_from_scores
from crossmatch.icpa.methods import single_config
from tests.icpa.helpers import toy_graph

# the package re-exports the function `source_loss`, which shadows the module attribute
source_loss_module = importlib.import_module("crossmatch.icpa.source_loss")
SMALL = ModelConfig(hidden=(32, 32, 16))
ALIGN = AlignConfig(swd_projections=16, sgwd_projections=4, sgwd_pairs=16, interp_length=64)
SCHED = Schedule(phase1_epochs=3, phase2_epochs=2, optimizer="adam", lr=1e-3, embedding_lr=0.1)


def _pairs(**kw: object) -> PairConfig:
    base: dict[str, object] = dict(batch_size=32, negatives=0, global_negatives=4, negative_sampling="uniform",
                                   walks_per_anchor=4, pack_categories=True, negative_pool=64, objective="softmax")
    base.update(kw)
    return PairConfig(**base)  # type: ignore[arg-type]


def test_softmax_loss_is_cross_entropy_of_the_positive():
    g = torch.Generator().manual_seed(0)
    s_pos, s_neg = torch.rand(5, generator=g) * 2 - 1, torch.rand(5, 7, generator=g) * 2 - 1
    got = softmax_pair_loss_from_scores(s_pos, s_neg, gamma=3.0)
    want = F.cross_entropy(3.0 * torch.cat([s_pos[:, None], s_neg], 1), torch.zeros(5, dtype=torch.long),
                           reduction="none")
    torch.testing.assert_close(got, want)
    mask = torch.zeros(5, 7, dtype=torch.bool)
    mask[:, 2] = True
    kept = torch.cat([s_neg[:, :2], s_neg[:, 3:]], 1)
    torch.testing.assert_close(softmax_pair_loss_from_scores(s_pos, s_neg, gamma=3.0, mask=mask),
                               softmax_pair_loss_from_scores(s_pos, kept, gamma=3.0))
    with pytest.raises(ValueError, match="shapes"):
        softmax_pair_loss_from_scores(s_pos, s_neg[:4], gamma=3.0)


def test_softmax_needs_a_pool():
    with pytest.raises(ConfigError, match="negative_pool"):
        _pairs(negative_pool=0)
    with pytest.raises(ConfigError, match="objective"):
        _pairs(objective="hinge")


def _trainer(graph, pairs: PairConfig) -> Trainer:
    model = build_model(graph.schemas, len(graph.categories), SMALL, 0)
    return Trainer(model, graph, single_config("base", None, SCHED), pairs=pairs, align=ALIGN, seed=0,
                   device="cpu")


def test_every_pool_node_is_a_negative_and_only_accidental_hits_are_masked(monkeypatch):
    # 12 items per source and a pool of 64 draws: most pools hold the positive somewhere
    graph = toy_graph(sizes=(12, 12, 12))
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    real = source_loss_module.softmax_pair_loss_from_scores

    def spy(s_pos, s_neg, *, gamma, mask=None):
        seen.append((s_pos.detach(), s_neg.detach(), mask))
        return real(s_pos, s_neg, gamma=gamma, mask=mask)

    monkeypatch.setattr(source_loss_module, "softmax_pair_loss_from_scores", spy)
    for kc in (0, 2):  # without and with same-category negatives (they come first)
        seen.clear()
        tr = _trainer(graph, _pairs(negatives=kc))
        tr.train_epoch()
        assert seen
        for s_pos, s_neg, mask in seen:
            assert s_neg.shape == (s_pos.shape[0], kc + 64) and mask is not None and mask.any()
            # on the CPU a node is encoded once, so a negative has exactly the positive's score iff it is the
            # positive: the mask is exactly the accidental hits, in the pool and among same-category negatives
            assert torch.equal(mask, s_neg == s_pos[:, None])


def test_softmax_training_is_deterministic_and_learns():
    graph = toy_graph(sizes=(40, 30, 16))
    a, b = _trainer(graph, _pairs()), _trainer(graph, _pairs())
    a.fit()
    b.fit()
    losses = [r["total"] for r in a.log]
    assert losses == [r["total"] for r in b.log]
    assert all(x == x for x in losses)
    assert sum(losses[-3:]) < sum(losses[:3])


def test_softmax_score_is_the_row_normalised_probability_in_both_retrievals():
    import numpy as np
    import scipy.sparse as sp

    from crossmatch.icpa.retrieval import embedding_scorer, pair_scores, softmax_augment

    g = torch.Generator().manual_seed(0)
    A = F.normalize(torch.randn(60, 8, generator=g), dim=1)
    C = F.normalize(torch.randn(60, 8, generator=g), dim=1)
    # rows with very different partition functions: without the normaliser they would dominate
    A[:5] *= 3
    H = sp.random(9, 60, density=0.1, random_state=0, format="csr")
    want = H @ torch.softmax(4.0 * (A @ C.T).double(), dim=1).numpy()
    exact = embedding_scorer(A, C, score="softmax", gamma=4.0)
    np.testing.assert_allclose(exact(H), want, rtol=1e-5)
    assert not np.allclose(embedding_scorer(A, C, score="exp_gamma", gamma=4.0)(H) / want,
                           (embedding_scorer(A, C, score="exp_gamma", gamma=4.0)(H) / want)[:, :1], rtol=1e-3)
    knn = embedding_scorer(A, C, score="softmax", gamma=4.0, retrieval="knn", knn_k=60)
    np.testing.assert_array_equal(knn.topk(H, 5), exact.topk(H, 5))
    # a small block gives the same normaliser as one block
    a1, _ = softmax_augment(A, C, 4.0, block=7)
    a2, _ = softmax_augment(A, C, 4.0, block=60)
    torch.testing.assert_close(a1, a2)
    with pytest.raises(ValueError, match="softmax_augment"):
        pair_scores(torch.zeros(2), "softmax")
