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
