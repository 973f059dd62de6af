"""Min-norm point on the simplex (§2.7): a valid convex combination meeting the KKT conditions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from crossmatch.icpa.min_norm import min_norm_simplex


def _kkt(M: np.ndarray, alpha: np.ndarray, tol: float) -> None:
    v = M @ alpha
    lam = float(alpha @ v)
    assert np.all(v >= lam - tol), "some vertex improves on the solution (not optimal)"
    support = alpha > 1e-7
    assert np.all(np.abs(v[support] - lam) <= tol), "support vertices must share the value"


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 7), dim=st.integers(1, 9), seed=st.integers(0, 100_000))
def test_property_valid_convex_combination_and_kkt(n, dim, seed):
    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(n, dim)) * rng.uniform(0.1, 10.0)
    M = Q @ Q.T
    res = min_norm_simplex(M)
    assert res.weights.shape == (n,)
    assert np.all(res.weights >= 0) and res.weights.sum() == pytest.approx(1.0, abs=1e-12)
    scale = max(1.0, float(np.max(np.diag(M))))
    _kkt(M, res.weights, 1e-6 * scale)
    assert res.value == pytest.approx(float(res.weights @ M @ res.weights))


def test_matches_a_generic_qp_solver():
    rng = np.random.default_rng(7)
    Q = rng.normal(size=(5, 3))
    M = Q @ Q.T
    res = min_norm_simplex(M)
    cons = ({"type": "eq", "fun": lambda a: a.sum() - 1},)
    ref = minimize(lambda a: a @ M @ a, np.full(5, 0.2), bounds=[(0, 1)] * 5, constraints=cons, method="SLSQP",
                   options={"ftol": 1e-14, "maxiter": 500})
    assert res.value <= ref.fun + 1e-9


def test_two_vectors_closed_form_and_degenerate_cases():
    q1, q2 = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    M = np.array([[q1 @ q1, q1 @ q2], [q2 @ q1, q2 @ q2]])
    res = min_norm_simplex(M)
    # min ||g q1 + (1-g) q2||^2  ->  g = 4/5
    assert res.weights[0] == pytest.approx(0.8, abs=1e-9)
    assert min_norm_simplex(np.zeros((3, 3))).weights == pytest.approx(np.full(3, 1 / 3))
    assert min_norm_simplex(np.array([[2.0]])).weights.tolist() == [1.0]
    # a vector inside the hull of the others' span: zero is reachable
    Q = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    assert min_norm_simplex(Q @ Q.T).value == pytest.approx(0.0, abs=1e-10)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="square"):
        min_norm_simplex(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        min_norm_simplex(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="symmetric"):
        min_norm_simplex(np.array([[1.0, 2.0], [0.0, 1.0]]))


# ---------------------------------------------------------------- torch solver (issue 11 part 5)
@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 7), dim=st.integers(1, 9), seed=st.integers(0, 100_000))
def test_torch_solver_matches_numpy(n, dim, seed):
    """The device solver reaches the NumPy solver's optimum (value; weights where the optimum is unique)."""
    import torch

    from crossmatch.icpa.min_norm import min_norm_simplex_torch

    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(n, dim)) * rng.uniform(0.1, 10.0)
    M = Q @ Q.T
    ref = min_norm_simplex(M)
    got = min_norm_simplex_torch(torch.from_numpy(M)).numpy()
    assert np.all(got >= 0) and got.sum() == pytest.approx(1.0, abs=1e-12)
    scale = max(1.0, float(np.max(np.diag(M))))
    assert float(got @ M @ got) == pytest.approx(ref.value, abs=1e-8 * scale)
    if n <= dim:  # Q of full row rank: M is positive definite, the minimiser is unique
        np.testing.assert_allclose(got, ref.weights, atol=1e-5)


def test_torch_solver_mask_equals_the_sub_problem():
    import torch

    from crossmatch.icpa.min_norm import min_norm_simplex_torch

    rng = np.random.default_rng(3)
    Q = rng.normal(size=(6, 8))
    M = Q @ Q.T
    keep = np.array([True, False, True, True, False, True])
    ref = min_norm_simplex(M[np.ix_(keep, keep)]).weights
    got = min_norm_simplex_torch(torch.from_numpy(M), torch.from_numpy(keep)).numpy()
    assert np.all(got[~keep] == 0)
    np.testing.assert_allclose(got[keep], ref, atol=1e-8)
    one = np.zeros(6, dtype=bool)
    one[4] = True
    assert min_norm_simplex_torch(torch.from_numpy(M), torch.from_numpy(one)).tolist() == [0, 0, 0, 0, 1, 0]
    assert min_norm_simplex_torch(torch.zeros(3, 3)).tolist() == pytest.approx([1 / 3] * 3)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(2, 5), seed=st.integers(0, 100_000), zero=st.integers(-1, 4))
def test_torch_pmtl_matches_numpy(m, seed, zero):
    """ParetoMTL weights (init and main steps, zero-loss protection) agree between the two solvers."""
    import torch

    from crossmatch.icpa.weighting.pareto_mtl import pmtl_weights, pmtl_weights_torch, preference_set

    rng = np.random.default_rng(seed)
    L = rng.uniform(0.1, 2.0, m)
    if 0 <= zero < m:
        L[zero] = 0.0
    G = rng.normal(size=(m, 3 * m + 2))
    for target in range(m):
        U, k = preference_set(m, target, 0.1)
        for sign in ("icpa", "original"):
            ref = pmtl_weights(L, G, U, k, sign=sign).weights
            got = pmtl_weights_torch(torch.from_numpy(L), torch.from_numpy(G @ G.T), torch.from_numpy(U), k,
                                     sign=sign).numpy()
            # The NumPy solver stops at a duality gap of 1e-10 relative to the squared norms, so its
            # weights are exact to ~sqrt(1e-10) = 1e-5; the torch solver's support enumeration is exact.
            np.testing.assert_allclose(got, ref, atol=1e-4)


def test_torch_solver_iterative_path_for_many_vectors():
    """Above ``exact_max`` vectors the device solver iterates; on a well-conditioned problem it agrees."""
    import torch

    from crossmatch.icpa.min_norm import min_norm_simplex_torch

    rng = np.random.default_rng(11)
    Q = rng.normal(size=(10, 40))
    M = Q @ Q.T
    ref = min_norm_simplex(M)
    got = min_norm_simplex_torch(torch.from_numpy(M), exact_max=8, iterations=400).numpy()
    assert float(got @ M @ got) == pytest.approx(ref.value, rel=1e-6)
