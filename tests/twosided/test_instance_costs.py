"""Instances, rank ↔ satisfaction (§3.3), costs and blocking pairs (§3.1), bad input."""

from __future__ import annotations

import numpy as np
import pytest

from crossmatch.errors import InputError
from crossmatch.twosided.costs import blocking_pairs, blocking_pairs_batch, costs, costs_batch, is_stable
from crossmatch.twosided.instance import Instance, ranks_from_satisfaction, satisfaction_from_ranks
from tests.twosided.helpers import random_instance


@pytest.mark.parametrize("scaling", ["code", "paper"])
@pytest.mark.parametrize("n", [1, 2, 7, 30])
def test_rank_satisfaction_roundtrip(scaling: str, n: int) -> None:
    ranks = np.arange(1, n + 1)
    s = satisfaction_from_ranks(ranks, scaling=scaling)  # type: ignore[arg-type]
    assert np.array_equal(ranks_from_satisfaction(s, scaling=scaling), ranks)  # type: ignore[arg-type]
    if scaling == "code" and n > 1:
        assert s[0] == pytest.approx(1.0) and s[-1] == pytest.approx(0.1)
    if scaling == "paper":
        assert s[0] == pytest.approx(0.1 + 0.9 * (n - 1) / n) and s[-1] == pytest.approx(0.1)


def test_known_costs_and_blocking_pairs() -> None:
    # 1-based ranks; A: a0 likes b0 > b1, a1 likes b0 > b1; B: b0 likes a1 > a0, b1 likes a0 > a1.
    inst = Instance.from_ranks(np.array([[1, 2], [1, 2]]), np.array([[2, 1], [1, 2]]))
    m_bad = np.array([0, 1])  # a1-b1 and b0-a0: (a1, b0) blocks
    m_good = np.array([1, 0])
    assert blocking_pairs(inst, m_bad) == 1 and not is_stable(inst, m_bad)
    assert blocking_pairs(inst, m_good) == 0 and is_stable(inst, m_good)
    c = costs(inst, m_good)  # a0-b1 (2 for a0, 1 for b1), a1-b0 (1 for a1, 1 for b0)
    assert (c.p_a, c.p_b, c.seq, c.egal, c.bal, c.regret) == (3, 2, 1, 5, 3, 2)
    assert costs(inst, m_good, one_based=False).bal == 3 - 2  # 0-based Bal is N lower


def test_bal_identity_and_batch_agree() -> None:
    rng = np.random.default_rng(0)
    insts = [random_instance("UU", 9, s) for s in range(20)]
    matches = np.array([rng.permutation(9) for _ in insts])
    ra = np.stack([i.rank_a for i in insts])
    rb = np.stack([i.rank_b for i in insts])
    batch = costs_batch(ra, rb, matches)
    bp = blocking_pairs_batch(ra, rb, matches)
    for k, inst in enumerate(insts):
        c = costs(inst, matches[k])
        assert 2 * c.bal == c.seq + c.egal
        assert (batch["seq"][k], batch["bal"][k], batch["egal"][k], batch["regret"][k]) == (c.seq, c.bal, c.egal, c.regret)
        assert bp[k] == blocking_pairs(inst, matches[k])


def test_bad_input_non_square() -> None:
    with pytest.raises(InputError, match="not square"):
        Instance.from_scores(np.random.rand(3, 4), np.random.rand(4, 3))
    with pytest.raises(InputError, match="M×N"):
        Instance.from_scores(np.random.rand(3, 3), np.random.rand(2, 3))


def test_bad_input_nan_and_empty() -> None:
    sa = np.random.rand(4, 4)
    sa[2, 1] = np.nan
    with pytest.raises(InputError, match="NaN") as exc:
        Instance.from_scores(sa, np.random.rand(4, 4))
    assert exc.value.rows == [3]
    with pytest.raises(InputError, match="empty"):
        Instance.from_scores(np.zeros((0, 0)), np.zeros((0, 0)))


def test_ties_error_or_documented_break() -> None:
    sa = np.array([[0.5, 0.5, 0.1], [0.3, 0.2, 0.1], [0.1, 0.2, 0.3]])
    sb = np.random.default_rng(1).random((3, 3))
    with pytest.raises(InputError, match="tied") as exc:
        Instance.from_scores(sa, sb)
    assert exc.value.rows == [1]
    inst = Instance.from_scores(sa, sb, ties="break")  # lower candidate index first
    assert inst.rank_a[0].tolist() == [0, 1, 2]


def test_from_ranks_rejects_non_permutations() -> None:
    with pytest.raises(InputError, match="permutations"):
        Instance.from_ranks(np.array([[1, 1], [1, 2]]), np.array([[1, 2], [1, 2]]))


def test_single_agent_is_trivially_stable() -> None:
    inst = Instance.from_scores(np.array([[0.3]]), np.array([[0.9]]))
    assert is_stable(inst, np.array([0]))
    assert costs(inst, np.array([0])).egal == 2
