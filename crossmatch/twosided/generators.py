"""Seeded preference generators UU, DD, GG, UD and Lib (ALGORITHMS.md §3.2; paper §4, appendix).

Every generator returns satisfaction matrices ``S_A`` (``B × N × M``) and ``S_B`` (``B × M × N``), values
on the §3.3 grid (1.0 = top choice). Raw scores are drawn per side, then each agent's row goes through the
rank → satisfaction transform (§3.2 step 4). Instances of one call are independent; ``rng`` makes them
reproducible (``np.random.default_rng(seed)``). The paper's instance files are lost (Ambiguity 3.2-A),
so only statistics are comparable, never single instances.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

import numpy as np

from crossmatch.twosided.instance import Scaling, satisfaction_from_ranks

# dataset name → (A-side distribution, B-side distribution); §3.2 step 5.
DISTRIBUTIONS: dict[str, tuple[str, str]] = {
    "UU": ("U", "U"),
    "DD": ("D", "D"),
    "GG": ("G", "G"),
    "UD": ("U", "D"),
    "Lib": ("L", "L"),
}
SIGMA = 0.4  # spread of D (share of popular candidates) and G (std of the popularity Gaussian)
LIB_POPULAR_ROW_PROB = 0.2  # §3.2 step 3.3: share of agents whose noise is replaced by popularity


@lru_cache(maxsize=1)
def libimseti_table() -> np.ndarray:
    """The 10×10 LibimSeTi pair-frequency table (package data; provenance in ``data/PROVENANCE.md``).

    ``T[r, c]``: ``r`` = B-side rating level (tens digit of the cell id), ``c`` = A-side level (units digit).
    """
    text = resources.files("crossmatch.twosided").joinpath("data/libimseti_dist.csv").read_text()
    rows = list(csv.reader(text.splitlines()))
    table = np.array([[float(v) for v in row[1:]] for row in rows[1:]], dtype=np.float64)
    if table.shape != (10, 10) or (table < 0).any():
        raise RuntimeError(f"corrupt package data libimseti_dist.csv (shape {table.shape})")
    table.setflags(write=False)
    return table


def _side_scores(kind: str, size: int, na: int, nb: int, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Raw scores of one side (``size × na × nb``, larger = preferred), §3.2 step 2."""
    if kind == "U":
        return rng.random((size, na, nb))
    if kind == "D":
        # The reference code uses ceil(σ·nb) popular candidates, the *last* column indices (the paper
        # text says floor(0.4 N); both agree for N = 10, 20, 30, 100). We follow the code.
        n1 = int(np.ceil(sigma * nb))
        popular = np.zeros(nb, dtype=bool)
        popular[nb - n1:] = True
        u = rng.random((size, na, nb))
        return np.where(popular[None, None, :], 0.5 + 0.5 * u, 0.5 * u)
    if kind == "G":
        means = (np.arange(nb) + 1.0) / nb
        return means[None, None, :] + sigma * rng.standard_normal((size, na, nb))
    raise ValueError(f"unknown side distribution {kind!r}")


def _libimseti_scores(size: int, na: int, nb: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores of both sides for ``Lib`` (§3.2 step 3)."""
    t = libimseti_table().ravel()
    codes = rng.choice(100, size=(size, na, nb), p=t / t.sum())
    level_a = (codes % 10).astype(np.float64)  # a_i's rating of b_j
    level_b = (codes // 10).astype(np.float64).transpose(0, 2, 1)  # b_j's rating of a_i, (size, nb, na)
    pop_b = level_a.sum(axis=1) / (nb * 11.0)  # (size, nb); the divisor follows §3.2 as written
    pop_a = level_b.sum(axis=1) / (na * 11.0)  # (size, na)
    bias_a = rng.random((size, na, nb)) / 1.1
    bias_b = rng.random((size, nb, na)) / 1.1
    rows_a = rng.random((size, na)) < LIB_POPULAR_ROW_PROB
    rows_b = rng.random((size, nb)) < LIB_POPULAR_ROW_PROB
    bias_a = np.where(rows_a[:, :, None], pop_b[:, None, :], bias_a)
    bias_b = np.where(rows_b[:, :, None], pop_a[:, None, :], bias_b)
    return (level_a + bias_a) / 10.0, (level_b + bias_b) / 10.0


def to_satisfaction(scores: np.ndarray, *, scaling: Scaling = "code") -> np.ndarray:
    """Replace each row (last axis) by its rank on the §3.3 grid: the smallest score gets 0.1, the largest 1.0.

    Deviation: equal raw scores (possible in ``Lib``, whose popularity rows are sums of integer levels)
    are ordered by a stable sort (lower index = lower satisfaction) instead of numpy's default unstable
    argsort; the order of ties is arbitrary in the reference code too.
    """
    order = np.argsort(scores, axis=-1, kind="stable")
    asc = np.empty_like(order)
    n = scores.shape[-1]
    np.put_along_axis(asc, order, np.broadcast_to(np.arange(n), scores.shape).copy(), axis=-1)
    return satisfaction_from_ranks(n - asc, scaling=scaling)  # ascending position k ↔ rank p = n - k


def generate(
    dist: str,
    n: int,
    size: int,
    rng: np.random.Generator,
    *,
    m: int | None = None,
    sigma: float = SIGMA,
    scaling: Scaling = "code",
) -> tuple[np.ndarray, np.ndarray]:
    """``size`` instances of distribution ``dist`` ∈ {UU, DD, GG, UD, Lib} with ``n`` A- and ``m`` B-agents.

    Returns ``(S_A, S_B)`` of shapes ``(size, n, m)`` and ``(size, m, n)``.
    """
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {dist!r}; known: {sorted(DISTRIBUTIONS)}")
    m = n if m is None else m
    if n < 1 or m < 1 or size < 0:
        raise ValueError(f"need n, m >= 1 and size >= 0, got n={n}, m={m}, size={size}")
    da, db = DISTRIBUTIONS[dist]
    if da == "L" or db == "L":
        xa, xb = _libimseti_scores(size, n, m, rng)
    else:
        xa = _side_scores(da, size, n, m, rng, sigma)
        xb = _side_scores(db, size, m, n, rng, sigma)
    return to_satisfaction(xa, scaling=scaling), to_satisfaction(xb, scaling=scaling)


def split_rng(seed: int, split: str, dist: str, n: int) -> np.random.Generator:
    """An independent generator per (split, distribution, size), as the paper seeds once per such cell.

    The paper's seeds are 135789 (validation) and 2456 (test) on numpy's global RNG; we derive a
    ``SeedSequence`` from ``seed`` and the cell so cells never share streams.
    """
    names = sorted(DISTRIBUTIONS)
    split_id = {"train": 0, "val": 1, "test": 2}[split]
    return np.random.default_rng(np.random.SeedSequence([seed, split_id, names.index(dist), n]))
