"""Helpers shared by the two-sided tests: random instances from the paper's generators."""

from __future__ import annotations

import numpy as np

from crossmatch.twosided.generators import generate
from crossmatch.twosided.instance import Instance


def random_instance(dist: str, n: int, seed: int) -> Instance:
    """One instance of ``dist`` with ``n`` agents per side."""
    sa, sb = generate(dist, n, 1, np.random.default_rng(seed))
    return Instance.from_scores(sa[0], sb[0])
