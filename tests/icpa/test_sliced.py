"""Sliced alignment (§2.5, eq. 9): exact 1-D OT on small inputs, gates, frozen plans, SGWD, errors."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmatch.icpa.sliced import (
    interpolation_index,
    random_directions,
    sliced_alignment,
    sliced_gromov_alignment,
    sorted_slices,
)


def _exact_projected_w2(x: np.ndarray, y: np.ndarray, directions: np.ndarray) -> float:
    """Mean over directions of the exact squared-W2 between the uniform 1-D projections (POT's EMD)."""
    vals = []
    for k in range(directions.shape[1]):
        px, py = x @ directions[:, k], y @ directions[:, k]
        M = (px[:, None] - py[None, :]) ** 2
        vals.append(ot.emd2(np.full(len(px), 1 / len(px)), np.full(len(py), 1 / len(py)), M))
    return float(np.mean(vals))


@pytest.mark.parametrize("n_x,n_y,length", [(7, 7, 7), (7, 7, 21), (3, 5, 15), (4, 6, 12)])
def test_sliced_alignment_equals_exact_1d_ot(n_x, n_y, length):
    rng = np.random.default_rng(n_x * 10 + n_y)
    x, y = rng.normal(size=(n_x, 4)), rng.normal(size=(n_y, 4))
    d = random_directions(4, 16, torch.Generator().manual_seed(0), dtype=torch.float64)
    res = sliced_alignment([torch.tensor(x), torch.tensor(y)], d, length=length)
    assert res.loss.item() == pytest.approx(_exact_projected_w2(x, y, d.numpy()), rel=1e-9, abs=1e-12)
    assert res.pair_costs[0, 1].item() == pytest.approx(res.pair_costs[1, 0].item())


def test_interpolation_index():
    assert interpolation_index(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    assert interpolation_index(5, 2).tolist() == [0, 2]
    assert interpolation_index(1, 4).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError):
        interpolation_index(0, 4)


def test_gates_weight_the_cost_and_receive_gradients():
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(6, 5, generator=gen, requires_grad=True), torch.randn(4, 5, generator=gen, requires_grad=True)]
    d = random_directions(5, 8, gen)
    plain = sliced_alignment(xs, d, length=12).loss
    ones = [torch.ones(6, 2), torch.ones(4, 2)]
    assert sliced_alignment(xs, d, length=12, gates=ones).loss.item() == pytest.approx(plain.item(), rel=1e-6)
    half = [torch.full((6, 2), 0.5, requires_grad=True), torch.full((4, 2), 0.5, requires_grad=True)]
    res = sliced_alignment(xs, d, length=12, gates=half)
    assert res.loss.item() == pytest.approx(0.25 * plain.item(), rel=1e-6)
    res.loss.backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in xs)
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in half)


def test_frozen_order_equals_sorting_when_unchanged_and_differs_otherwise():
    gen = torch.Generator().manual_seed(1)
    xs = [torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)]
    d = random_directions(3, 4, gen)
    same = sliced_alignment(xs, d, length=5, orders=[x.clone() for x in xs]).loss
    assert same.item() == pytest.approx(sliced_alignment(xs, d, length=5).loss.item())
    shuffled = [xs[0][torch.randperm(5, generator=gen)], xs[1]]
    # a frozen plan that is no longer sorted cannot beat the optimal (sorted) one
    assert sliced_alignment(xs, d, length=5, orders=shuffled).loss.item() >= same.item() - 1e-9


def test_more_than_two_sources_average_pairs_and_one_source_is_zero():
    gen = torch.Generator().manual_seed(2)
    xs = [torch.randn(n, 4, generator=gen) for n in (4, 4, 4)]
    d = random_directions(4, 6, gen)
    res = sliced_alignment(xs, d, length=4)
    pairs = [sliced_alignment([xs[a], xs[b]], d, length=4).loss.item() for a, b in ((0, 1), (0, 2), (1, 2))]
    assert res.loss.item() == pytest.approx(sum(pairs) / 3, rel=1e-6)
    assert res.pair_costs.shape == (3, 3) and res.pair_costs.diagonal().abs().sum() == 0
    single = sliced_alignment(xs[:1], d, length=4)
    assert single.loss.item() == 0.0


def test_product_discrepancy_with_reverse_min_handles_flipped_orientation():
    gen = torch.Generator().manual_seed(3)
    x = torch.nn.functional.normalize(torch.randn(8, 4, generator=gen), dim=1)
    d = random_directions(4, 5, gen)
    fwd = sliced_alignment([x, -x], d, length=8, kind="product").loss
    rev = sliced_alignment([x, -x], d, length=8, kind="product", reverse_min=True).loss
    assert rev.item() <= fwd.item()


def test_shape_errors_are_explicit():
    d = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"\[n >= 1, 4\]"):
        sliced_alignment([torch.randn(3, 4), torch.randn(3, 5)], d, length=3)
    with pytest.raises(ValueError, match="gates"):
        sliced_alignment([torch.randn(3, 4), torch.randn(2, 4)], d, length=3, gates=[torch.ones(3, 2)])
    with pytest.raises(ValueError, match="directions"):
        sorted_slices(torch.randn(3, 4), torch.randn(5, 2), 3)
    with pytest.raises(ValueError, match="pair_index"):
        sliced_gromov_alignment([torch.randn(3, 4)], d, torch.zeros(3, 3, dtype=torch.long), length=3)


def test_sgwd_is_zero_for_isometric_copies_and_positive_otherwise():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(10, 4, generator=gen)
    d = random_directions(4, 8, gen)
    idx = torch.randint(10, (64, 2), generator=gen)
    # a reflection (x -> -x) preserves all intra-source distances: 1-D GW is solved by the reversed map
    assert sliced_gromov_alignment([x, -x], d, idx, length=10).loss.item() == pytest.approx(0.0, abs=1e-10)
    assert sliced_gromov_alignment([x, x + 3.0], d, idx, length=10).loss.item() == pytest.approx(0.0, abs=1e-9)
    y = torch.randn(10, 4, generator=gen) * 3
    assert sliced_gromov_alignment([x, y], d, idx, length=10).loss.item() > 0


def test_sgwd_pair_gates_are_called_and_weight_the_cost():
    gen = torch.Generator().manual_seed(5)
    xs = [torch.randn(6, 3, generator=gen), torch.randn(6, 3, generator=gen) * 2]
    d = random_directions(3, 2, gen)
    idx = torch.randint(6, (16, 2), generator=gen)
    plain = sliced_gromov_alignment(xs, d, idx, length=6).loss.item()

    def half(i, r1, r2):
        return torch.full((*r1.shape, 2), 0.5)

    res = sliced_gromov_alignment(xs, d, idx, length=6, pair_gates=half)
    assert res.loss.item() == pytest.approx(0.25 * plain, rel=1e-6)
    assert len(res.pair_gates) == 2 and res.pair_gates[0].shape == (16, 2, 2)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), m=st.integers(1, 12), seed=st.integers(0, 10_000))
def test_property_swd_nonnegative_and_zero_on_itself(n, m, seed):
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, generator=gen), torch.randn(m, 3, generator=gen)
    d = random_directions(3, 4, gen)
    length = n * m
    assert sliced_alignment([x, x.clone()], d, length=n).loss.item() == pytest.approx(0.0, abs=1e-12)
    val = sliced_alignment([x, y], d, length=length).loss.item()
    assert val >= 0 and math.isfinite(val)
