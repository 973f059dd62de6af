"""Grouped (per-category) sliced alignment equals the per-category functions (packed batches)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmatch.icpa.losses import gate_hinge_loss, gate_loss, grouped_gate_terms
from crossmatch.icpa.sliced import random_directions, sliced_alignment, sliced_gromov_alignment
from crossmatch.icpa.sliced_grouped import grouped_sliced_alignment, grouped_sliced_gromov_alignment


def _world(seed: int, sizes: list[list[int]], dim: int = 4):
    """Per source, rows of every group (sizes[source][group]), shuffled so groups interleave."""
    gen = torch.Generator().manual_seed(seed)
    xs, groups = [], []
    for per_group in sizes:
        g = torch.cat([torch.full((n,), k) for k, n in enumerate(per_group)]).long()
        g = g[torch.randperm(g.numel(), generator=gen)]
        xs.append(torch.randn(g.numel(), dim, generator=gen, dtype=torch.float64))
        groups.append(g)
    return xs, groups, gen


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), reverse=st.booleans(), kind=st.sampled_from(["squared", "product"]),
       sizes=st.lists(st.lists(st.integers(0, 7), min_size=3, max_size=3).filter(lambda s: sum(s) > 0),
                             min_size=2, max_size=4))
def test_grouped_swd_equals_per_group_swd(seed, reverse, kind, sizes):
    xs, groups, gen = _world(seed, sizes)
    d = random_directions(4, 5, gen, dtype=torch.float64)
    length = 9
    res = grouped_sliced_alignment(xs, groups, 3, d, length=length, kind=kind, reverse_min=reverse)
    for g in range(3):
        members = [i for i, grp in enumerate(groups) if bool((grp == g).any())]
        assert bool(res.valid[g]) == (len(members) >= 2)
        if len(members) < 2:
            assert res.group_losses[g].item() == 0.0
            continue
        want = sliced_alignment([xs[i][groups[i] == g] for i in members], d, length=length, kind=kind,
                                reverse_min=reverse)
        assert res.group_losses[g].item() == pytest.approx(want.loss.item(), rel=1e-9, abs=1e-12)


def test_grouped_swd_with_gates_and_frozen_orders_equals_per_group():
    xs, groups, gen = _world(3, [[5, 3], [4, 6], [2, 2]])
    p = len(xs)
    d = random_directions(4, 6, gen, dtype=torch.float64)
    gates = [torch.rand(x.shape[0], p, generator=gen, dtype=torch.float64, requires_grad=True) for x in xs]
    orders = [x + 0.3 * torch.randn(x.shape, generator=gen, dtype=torch.float64) for x in xs]
    res = grouped_sliced_alignment(xs, groups, 2, d, length=7, gates=gates, orders=orders)
    for g in range(2):
        m = [grp == g for grp in groups]
        want = sliced_alignment([x[k] for x, k in zip(xs, m, strict=True)], d, length=7,
                                gates=[t[k] for t, k in zip(gates, m, strict=True)],
                                orders=[o[k] for o, k in zip(orders, m, strict=True)])
        assert res.group_losses[g].item() == pytest.approx(want.loss.item(), rel=1e-9)
        assert torch.allclose(res.pair_costs[g], want.pair_costs)
    res.group_losses.sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in gates)


def test_grouped_sgwd_equals_per_group_sgwd_with_pair_gates():
    xs, groups, gen = _world(11, [[6, 4], [5, 8], [3, 5]])
    p = len(xs)
    d = random_directions(4, 3, gen, dtype=torch.float64)
    idx = torch.randint(8, (20, 2), generator=gen)
    w = torch.randn(4, p, generator=gen, dtype=torch.float64)

    def gate_of(rows_a: torch.Tensor, rows_b: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid((rows_a - rows_b).abs() @ w)

    grouped = grouped_sliced_gromov_alignment(xs, groups, 2, d, idx, length=8,
                                              pair_gates=lambda i, r1, r2: gate_of(xs[i][r1], xs[i][r2]))
    for g in range(2):
        sub = [x[grp == g] for x, grp in zip(xs, groups, strict=True)]
        want = sliced_gromov_alignment(sub, d, idx, length=8,
                                       pair_gates=lambda i, r1, r2, sub=sub: gate_of(sub[i][r1], sub[i][r2]))
        assert grouped.group_losses[g].item() == pytest.approx(want.loss.item(), rel=1e-9)
        assert torch.allclose(grouped.pair_costs[g], want.pair_costs)


@pytest.mark.parametrize("regulariser,reduction", [("infomax", "mean"), ("infomax", "sum"), ("hinge", "mean")])
def test_grouped_gate_terms_sum_to_the_gate_loss_of_each_group(regulariser, reduction):
    gen = torch.Generator().manual_seed(2)
    t = torch.rand(30, 3, generator=gen, dtype=torch.float64)
    group = torch.randint(4, (30,), generator=gen)
    terms = grouped_gate_terms(t, group, 4, regulariser=regulariser, reduction=reduction)
    for g in range(4):
        rows = t[group == g]
        if rows.shape[0] == 0:
            continue
        want = gate_hinge_loss(rows) if regulariser == "hinge" else gate_loss(rows, reduction)
        assert terms[g].sum().item() == pytest.approx(want.item(), rel=1e-9)


def test_grouped_shape_errors_are_explicit():
    xs = [torch.randn(4, 3), torch.randn(5, 3)]
    d = random_directions(3, 2)
    with pytest.raises(ValueError, match="one group vector per source"):
        grouped_sliced_alignment(xs, [torch.zeros(4, dtype=torch.long)], 1, d, length=4)
    with pytest.raises(ValueError, match="group ids must lie"):
        grouped_sliced_alignment(xs, [torch.zeros(4, dtype=torch.long), torch.full((5,), 2)], 2, d, length=4)
    with pytest.raises(ValueError, match="regulariser"):
        grouped_gate_terms(torch.rand(3, 2), torch.zeros(3, dtype=torch.long), 1, regulariser="x")
