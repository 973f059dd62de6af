"""Weighting methods (§2.6, 2.7, 2.10, 2.11): registry, simplex weights, ParetoMTL on toy problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmatch.errors import ConfigError
from crossmatch.icpa.weighting import WEIGHTINGS, make_weighting, pmtl_weights, preference_set


def test_registry_has_one_method_per_file_and_rejects_unknowns():
    assert set(WEIGHTINGS) == {"equal", "random_convex", "fixed_linear", "pareto_mtl", "uncertainty"}
    with pytest.raises(ConfigError, match="unknown weighting"):
        make_weighting("mgda", 3)
    with pytest.raises(ConfigError, match="unknown option"):
        make_weighting("random_convex", 3, options={"alpha": 1})
    with pytest.raises(ConfigError, match="needs a target"):
        make_weighting("pareto_mtl", 3)


@pytest.mark.parametrize("dist", ["uniform", "dirichlet"])
def test_random_convex_is_on_the_simplex_of_present_sources(dist):
    w = make_weighting("random_convex", 4, options={"distribution": dist})
    gen = torch.Generator().manual_seed(0)
    present = torch.tensor([True, False, True, True])
    draws = torch.stack([w(torch.ones(4), present, generator=gen) for _ in range(200)])
    assert torch.all(draws >= 0) and torch.allclose(draws.sum(1), torch.ones(200, dtype=draws.dtype))
    assert torch.all(draws[:, 1] == 0)
    assert draws[:, 0].std() > 0.1  # a fresh λ every step


def test_equal_and_fixed_linear():
    present = torch.tensor([True, True, False])
    assert make_weighting("equal", 3)(torch.ones(3), present).tolist() == [1.0, 1.0, 0.0]
    fl = make_weighting("fixed_linear", 3, target=1, options={"epsilon": 0.25})
    assert fl(torch.ones(3), torch.ones(3, dtype=torch.bool)).tolist() == pytest.approx([0.25 / 1.5, 1 / 1.5, 0.25 / 1.5])
    assert fl(torch.ones(3), present).tolist() == pytest.approx([0.2, 0.8, 0.0])


def test_preference_set_rows_sum_to_one_with_the_target_row():
    u, k = preference_set(3, 2, 0.1)
    assert u.shape == (4, 3) and np.allclose(u.sum(1), 1) and k == 2
    assert np.argmax(u[k]) == 2 and np.allclose(u[3], 1 / 3)


def test_pmtl_main_step_is_a_convex_combination_meeting_kkt():
    rng = np.random.default_rng(0)
    G = rng.normal(size=(3, 10))
    # target 0 already has the smallest normalised loss: no active constraint -> main step (MGDA)
    step = pmtl_weights(np.array([0.1, 1.0, 1.0]), G, preference_set(3, 0, 0.1)[0], 0)
    assert step.mode == "main" and not step.active
    assert np.all(step.weights >= 0) and step.weights.sum() == pytest.approx(1.0)
    d = step.weights @ G
    lam = float(d @ d)
    assert np.all(G @ d >= lam - 1e-8), "KKT: every task gradient has <g_i, d> >= ||d||^2"


def test_pmtl_init_step_descends_on_every_violated_constraint():
    rng = np.random.default_rng(1)
    G = rng.normal(size=(3, 8))
    U, k = preference_set(3, 0, 0.0)
    L = np.array([2.0, 0.5, 0.7])  # the target's loss is the largest: constraints are violated
    step = pmtl_weights(L, G, U, k)
    assert step.mode == "init" and step.active
    d = -step.weights @ G  # update direction
    for j in step.active:
        c = U[k] - U[j]
        assert (c @ G) @ d <= 1e-9, "the direction must not increase a violated constraint c_j^T L"
    assert step.alpha.sum() == pytest.approx(1.0) and np.all(step.alpha >= 0)


def test_pmtl_zero_loss_tasks_get_no_weight_and_all_zero_gives_zero():
    G = np.eye(3)
    step = pmtl_weights(np.array([0.0, 1.0, 1.0]), G, preference_set(3, 1, 0.1)[0], 1)
    assert step.weights[0] == pytest.approx(0.0)
    assert pmtl_weights(np.zeros(3), G, preference_set(3, 1, 0.1)[0], 1).weights.tolist() == [0, 0, 0]


def test_pmtl_toy_problem_reaches_the_target_cone_and_pareto_stationarity():
    """Two quadratic tasks L_i = ||θ − a_i||²: ParetoMTL for target 0 ends in its cone, Pareto-stationary."""
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    theta = np.array([0.2, 0.9])  # starts much closer to task 1's optimum
    U, k = preference_set(2, 0, 0.0)
    for _ in range(500):
        L = ((theta - a) ** 2).sum(1)
        G = 2 * (theta - a)
        w = pmtl_weights(L, G, U, k).weights
        theta = theta - 0.05 * (w @ G)
    L = ((theta - a) ** 2).sum(1)
    L_hat = L / np.linalg.norm(L)
    assert L_hat[0] <= L_hat[1] + 1e-3, "the target's normalised loss is the smallest (ICPA sign)"
    G = 2 * (theta - a)
    M = G @ G.T
    from crossmatch.icpa.min_norm import min_norm_simplex
    assert min_norm_simplex(M).value < 1e-3, "Pareto-stationary: 0 is (nearly) in the hull of the gradients"


def test_pareto_mtl_weighting_class_uses_present_sources_only():
    w = make_weighting("pareto_mtl", 3, target=2, options={"epsilon": 0.0})
    grads = torch.eye(3, 5, dtype=torch.float32)
    out = w(torch.tensor([1.0, 1.0, 0.1]), torch.tensor([True, False, True]), grads)
    assert out[1].item() == 0.0
    assert w.last is not None and w.last.mode in ("init", "main")
    with pytest.raises(ValueError, match="gradients"):
        w(torch.ones(3), torch.ones(3, dtype=torch.bool), None)


def test_uncertainty_weights_learn_to_down_weight_the_larger_loss():
    """Kendall et al.: the optimum of e^{-s} L + s is s = log L, so a larger loss gets a smaller weight."""
    w = make_weighting("uncertainty", 2, options={"lr": 0.1})
    present = torch.tensor([True, True])
    opt = torch.optim.SGD(w.parameters(), lr=0.1)
    L = torch.tensor([4.0, 1.0])
    for _ in range(500):
        opt.zero_grad()
        total = (w(L, present) * L).sum() + w.regulariser(present)
        total.backward()
        opt.step()
    assert torch.allclose(w.parameters()[0].detach(), torch.log(L), atol=1e-2)
    out = w(L, torch.tensor([True, False]))
    assert out[1] == 0 and out[0] > 0

