"""Shared strategies for the BiPoly tests: small random instances and reward settings."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from crossmatch.bipoly.instance import Instance, Rewards

TENTHS = st.integers(min_value=-10, max_value=10).map(lambda i: i / 10)


@st.composite
def instances(draw: st.DrawFn, max_side: int = 6) -> Instance:
    """A random sparse instance; ĥ on a 1/20 grid so exact ties occur."""
    m = draw(st.integers(1, max_side))
    n = draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**31 - 1))
    density = draw(st.sampled_from([0.3, 0.6, 1.0]))
    rng = np.random.default_rng(seed)
    h = np.round(rng.random((m, n)) * 20) / 20
    h[rng.random((m, n)) > density] = 0.0
    return Instance.from_dense(h)


rewards = st.builds(Rewards, TENTHS, TENTHS, TENTHS, TENTHS)
