"""The shared tie rule of every top-k (crossmatch.topk): best first, ties by the smaller column, on any CPU."""

from __future__ import annotations

import numpy as np
import pytest

from crossmatch.topk import best_k, best_k_entries


def test_best_k_is_a_stable_sort_of_the_scores_cut_at_k() -> None:
    rng = np.random.default_rng(0)
    S = rng.integers(0, 4, size=(50, 300)).astype(np.float64)  # heavy ties
    S[rng.random(S.shape) < 0.1] = -np.inf  # excluded entries tie too and rank last
    for k in (1, 7, 80, 299, 300, 400):
        idx, val = best_k(S, k)
        want = np.argsort(-S, axis=1, kind="stable")[:, :min(k, 300)]
        assert np.array_equal(idx, want), k
        assert np.array_equal(val, np.take_along_axis(S, want, axis=1))


def test_best_k_entries_ranks_each_rows_entries_in_any_input_order() -> None:
    rng = np.random.default_rng(1)
    n = 2_000
    rows, cols = rng.integers(0, 40, n), rng.permutation(n)  # distinct columns, shuffled
    vals = rng.integers(0, 3, n).astype(np.float64)
    pos = best_k_entries(rows, cols, vals, 5)
    got: dict[int, list[int]] = {}
    for p in pos:
        got.setdefault(int(rows[p]), []).append(int(cols[p]))
    assert list(got) == sorted(got)  # grouped by ascending row
    for r, cs in got.items():
        mine = np.flatnonzero(rows == r)
        want = sorted(mine, key=lambda i: (-vals[i], cols[i]))[:5]
        assert cs == [int(cols[i]) for i in want]


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="2-D"):
        best_k(np.zeros(3), 1)
    with pytest.raises(ValueError, match="k must be"):
        best_k(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match="one length"):
        best_k_entries(np.zeros(2, int), np.zeros(3, int), np.zeros(2), 1)
