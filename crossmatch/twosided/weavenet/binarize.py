"""Binarisation of WeaveNet's soft matching (ALGORITHMS.md §3.7 steps 1–2)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

Binarize = Literal["argmax", "hungarian"]


def binarize(scores: np.ndarray, method: Binarize = "argmax") -> np.ndarray:
    """Row assignments ``(B, N)`` from a batch of ``N × M`` score matrices (``m̂`` or ``m̂^A``).

    ``argmax``: every ``a_i`` picks its best column (``N ≤ M``); may assign a B-agent twice, which the
    caller detects with ``costs.is_one_to_one_batch``. ``hungarian``: maximum-weight one-to-one assignment,
    ``linear_sum_assignment(-m̂)``, always one-to-one (``N > M`` leaves rows at ``-1``).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 2:
        s = s[None]
    if s.ndim != 3 or not np.isfinite(s).all():
        raise ValueError(f"scores must be a finite (B, N, M) array, got shape {s.shape}")
    if method == "argmax":
        return s.argmax(axis=2).astype(np.int64)
    if method != "hungarian":
        raise ValueError(f"binarize method must be 'argmax' or 'hungarian', got {method!r}")
    out = np.full(s.shape[:2], -1, dtype=np.int64)
    for k in range(s.shape[0]):
        rows, cols = linear_sum_assignment(-s[k])
        out[k, rows] = cols
    return out
