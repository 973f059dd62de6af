"""Ranking metrics when a source has fewer candidate items than the largest k (small catalogues)."""

from __future__ import annotations

import numpy as np
import pytest

from crossmatch.metrics.ranking import ranking_metrics


def test_k_beyond_the_candidate_list_uses_the_whole_list():
    topk = np.array([[3, 1, 2]])  # only three candidates exist
    indptr = np.array([0, 2])
    items = np.array([1, 2])
    out = ranking_metrics(topk, indptr, items, [3, 10])
    assert out[10]["recall"] == pytest.approx(1.0)
    assert out[10]["precision"] == pytest.approx(2 / 10)
    assert out[10]["ndcg"] == pytest.approx(out[3]["ndcg"])
    ideal = 1 + 1 / np.log2(3)
    assert out[3]["ndcg"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / ideal)


def test_k_must_be_positive():
    with pytest.raises(ValueError, match=">= 1"):
        ranking_metrics(np.array([[0]]), np.array([0, 1]), np.array([0]), [0])
