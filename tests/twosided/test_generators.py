"""Preference generators UU / DD / GG / UD / Lib (§3.2)."""

from __future__ import annotations

import numpy as np
import pytest

from crossmatch.twosided.generators import DISTRIBUTIONS, generate, libimseti_table, split_rng
from crossmatch.twosided.instance import ranks_from_satisfaction


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_shapes_grid_and_strictness(dist: str) -> None:
    sa, sb = generate(dist, 6, 50, np.random.default_rng(0), m=4)
    assert sa.shape == (50, 6, 4) and sb.shape == (50, 4, 6)
    for s in (sa, sb):
        n = s.shape[-1]
        # every row is a permutation of the linspace grid: strict preferences, no ties
        assert np.allclose(np.sort(s, axis=-1), np.linspace(0.1, 1.0, n)[None, None, :])
        assert (np.sort(ranks_from_satisfaction(s), axis=-1) == np.arange(1, n + 1)).all()


def test_seeded_reproducible_and_cells_independent() -> None:
    a = generate("Lib", 10, 5, split_rng(7, "test", "Lib", 10))
    b = generate("Lib", 10, 5, split_rng(7, "test", "Lib", 10))
    c = generate("Lib", 10, 5, split_rng(7, "val", "Lib", 10))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_popularity_structure() -> None:
    rng = np.random.default_rng(3)
    # D: the last ceil(0.4 n) candidates are popular with everyone.
    sa, _ = generate("DD", 20, 200, rng)
    assert sa[:, :, 12:].mean() > 0.75 and sa[:, :, :12].mean() < 0.45
    # G: larger candidate index = more popular on average.
    sa, _ = generate("GG", 20, 200, rng)
    col = sa.mean(axis=(0, 1))
    assert col[-1] > col[0] and np.corrcoef(np.arange(20), col)[0, 1] > 0.9
    # UD: A side uniform, B side popularity-driven.
    sa, sb = generate("UD", 20, 200, rng)
    assert np.ptp(sa.mean(axis=(0, 1))) < 0.1 and np.ptp(sb.mean(axis=(0, 1))) > 0.3


def test_libimseti_table_is_the_shared_one() -> None:
    t = libimseti_table()
    assert t.shape == (10, 10) and t[9, 9] == 53376 and t[0, 0] == 2525 and t[0, 9] == 1092


def test_unknown_distribution() -> None:
    with pytest.raises(ValueError, match="unknown distribution"):
        generate("XX", 5, 1, np.random.default_rng(0))
