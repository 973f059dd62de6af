"""Hypervolume under a Pareto front: exact values, invariances, and a Monte Carlo cross-check."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crossmatch.metrics.hypervolume import hypervolume_under, pareto_front


def test_single_point_is_its_box():
    assert hypervolume_under([[2.0, 3.0, 0.5]]) == pytest.approx(3.0)


def test_two_dimensional_staircase():
    # boxes [0,1]x[0,3] and [0,2]x[0,1]: union = 3 + 2 - 1 = 4
    assert hypervolume_under([[1.0, 3.0], [2.0, 1.0]]) == pytest.approx(4.0)


def test_front_mask_minimisation():
    pts = np.array([[1.0, 3.0], [2.0, 1.0], [2.0, 3.0], [1.0, 3.0]])
    assert pareto_front(pts).tolist() == [True, True, False, False]


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 7), st.integers(1, 4)), elements=st.floats(0.05, 1.0)))
def test_matches_monte_carlo(points):
    rng = np.random.default_rng(0)
    front = points[pareto_front(points)]
    upper = front.max(axis=0)
    samples = rng.random((40_000, points.shape[1])) * upper
    inside = (samples[:, None, :] <= front[None, :, :]).all(axis=2).any(axis=1)
    estimate = inside.mean() * np.prod(upper)
    assert hypervolume_under(points) == pytest.approx(estimate, abs=0.02 * np.prod(upper) + 1e-9)


def test_dominated_points_do_not_change_the_volume():
    base = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0], [2.0, 3.0, 1.0]])
    extra = np.vstack([base, [[3.0, 3.0, 3.0], [2.0, 2.0, 3.5]]])
    assert hypervolume_under(extra) == pytest.approx(hypervolume_under(base))
    better = np.vstack([base, [[0.5, 0.5, 0.5]]])  # dominates everything: the front is that point alone
    assert hypervolume_under(better) == pytest.approx(0.125)


@pytest.mark.parametrize("bad", [np.zeros((0, 2)), np.array([[1.0, np.nan]]), np.array([[-1.0, 2.0]]), np.array([1.0, 2.0])])
def test_bad_input(bad):
    with pytest.raises(ValueError):
        hypervolume_under(bad)
