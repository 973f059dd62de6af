"""Pair loss (§2.4.3) and gate losses (eq. 6 and the reference-code hinge)."""

from __future__ import annotations

import math

import pytest
import torch

from crossmatch.icpa.losses import binary_entropy, gate_hinge_loss, gate_loss, pair_loss


def test_pair_loss_matches_formula_and_has_gradients():
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(4, 8, generator=gen), dim=1).requires_grad_()
    p = torch.nn.functional.normalize(torch.randn(4, 8, generator=gen), dim=1)
    n = torch.nn.functional.normalize(torch.randn(4, 6, 8, generator=gen), dim=2)
    got = pair_loss(a, p, n, gamma=5.0, positive_weight=2.0)
    for i in range(4):
        want = 2 * math.log1p(math.exp(-5 * float(a[i].detach() @ p[i])))
        want += sum(math.log1p(math.exp(5 * float(a[i].detach() @ n[i, k]))) for k in range(6))
        assert got[i].item() == pytest.approx(want, rel=1e-5)
    got.sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_pair_loss_rejects_bad_shapes():
    with pytest.raises(ValueError, match="negatives"):
        pair_loss(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 4))


def _eq6(t: list[float]) -> float:
    """Eq. 6 written out: −Σ[t log t + (1−t) log(1−t)] + t̄ log t̄ + (1−t̄) log(1−t̄)."""
    tb = sum(t) / len(t)
    first = -sum(x * math.log(x) + (1 - x) * math.log(1 - x) for x in t)
    return first + tb * math.log(tb) + (1 - tb) * math.log(1 - tb)


@pytest.mark.parametrize("t", [[0.1, 0.9, 0.5, 0.3], [0.99, 0.98], [0.2]])
def test_gate_loss_equals_eq6(t):
    assert gate_loss(torch.tensor(t, dtype=torch.float64), "sum").item() == pytest.approx(_eq6(t), rel=1e-9, abs=1e-12)
    ent = sum(-(x * math.log(x) + (1 - x) * math.log(1 - x)) for x in t)
    mean_form = _eq6(t) + ent * (1 / len(t) - 1)
    assert gate_loss(torch.tensor(t, dtype=torch.float64), "mean").item() == pytest.approx(mean_form, rel=1e-9)


def test_gate_loss_prefers_confident_diverse_gates_and_sums_columns():
    confident_diverse = torch.tensor([0.001, 0.999, 0.001, 0.999])
    all_closed = torch.tensor([0.001, 0.001, 0.001, 0.001])
    undecided = torch.tensor([0.5, 0.5, 0.5, 0.5])
    assert gate_loss(confident_diverse) < gate_loss(all_closed) < gate_loss(undecided)
    two = torch.stack([confident_diverse, undecided], dim=1)
    assert gate_loss(two).item() == pytest.approx(gate_loss(confident_diverse).item() + gate_loss(undecided).item())
    with pytest.raises(ValueError):
        gate_loss(torch.zeros(0))


def test_gate_hinge_loss_only_penalises_a_low_mean():
    high = torch.tensor([0.9, 0.95])
    low = torch.tensor([0.1, 0.2])
    assert gate_hinge_loss(high, 0.8).item() == pytest.approx(binary_entropy(high).mean().item())
    assert gate_hinge_loss(low, 0.8).item() == pytest.approx(binary_entropy(low).mean().item() - math.log(0.15),
                                                             rel=1e-6)
