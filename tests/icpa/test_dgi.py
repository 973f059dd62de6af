"""DGI (crossmatch.icpa.dgi): read-only edge arrays, as polars hands them out, train without a warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from crossmatch.errors import ConfigError
from crossmatch.icpa.dgi import train_dgi


def test_read_only_edges_train_silently_and_deterministically() -> None:
    src, dst = np.array([0, 1, 2, 3, 4]), np.array([1, 2, 3, 4, 0])
    src.flags.writeable = False
    dst.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "non-writable NumPy array" UserWarning fails the test
        first, loss = train_dgi(src, dst, 5, dim=4, hidden=8, steps=3, seed=1)
    again, _ = train_dgi(src, dst, 5, dim=4, hidden=8, steps=3, seed=1)
    assert first.shape == (5, 8) and np.isfinite(loss)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)


def test_too_few_items_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="need >= 2 items"):
        train_dgi(np.array([0]), np.array([0]), 1)
