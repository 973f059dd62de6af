"""Each bad input fails with a clear InputError, never a raw library exception."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crossmatch.bipoly import Instance, blocking_truth, category_documents, rescale_minmax, similarity
from crossmatch.errors import InputError

ITEMS_L = pl.DataFrame({"item_id": ["l1", "l2"], "title": ["red apple phone", "green pear tablet"],
                        "fine_category": ["phones", "tablets"]})
ITEMS_R = pl.DataFrame({"item_id": ["r1", "r2"], "title": ["apple phone red", "pear tablet"],
                        "fine_category": ["mobile", "slates"]})


def test_empty_category_table() -> None:
    with pytest.raises(InputError, match="category table is empty"):
        category_documents(ITEMS_L.head(0))
    with pytest.raises(InputError, match="category table is empty"):
        category_documents(ITEMS_L, categories=[])


def test_category_with_no_items() -> None:
    with pytest.raises(InputError, match="no items: \\['watches'\\]"):
        category_documents(ITEMS_L, categories=["phones", "tablets", "watches"])


def test_all_zero_similarity() -> None:
    other = pl.DataFrame({"item_id": ["x"], "title": ["zebra"], "fine_category": ["zoo"]})
    for kind in ("jaccard", "overlap", "tfidf"):
        with pytest.raises(InputError, match="all .*similarities are zero"):
            similarity(category_documents(ITEMS_L), category_documents(other), kind)
    with pytest.raises(InputError, match="all similarities are equal"):
        rescale_minmax(np.zeros(4))


def test_nan_similarity() -> None:
    with pytest.raises(InputError, match="NaN"):
        Instance.from_dense(np.array([[0.5, np.nan], [0.1, 0.2]]))
    with pytest.raises(InputError, match="NaN"):
        rescale_minmax(np.array([0.1, np.nan]))


def test_similarity_out_of_range_or_duplicate_pairs() -> None:
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        Instance.from_dense(np.array([[2.0, 0.5]]))
    with pytest.raises(InputError, match="duplicate"):
        Instance.from_pairs(2, 2, np.array([0, 0]), np.array([1, 1]), np.array([0.5, 0.5]))


def test_ids_that_do_not_match() -> None:
    dl, dr = category_documents(ITEMS_L), category_documents(ITEMS_R)
    truth = pl.DataFrame({"item_a": ["l1", "l9"], "item_b": ["r1", "r2"]})
    with pytest.raises(InputError, match="not in the left catalogue, e.g. \\['l9'\\]"):
        blocking_truth(ITEMS_L, ITEMS_R, dl.names, dr.names, truth)
    swapped = pl.DataFrame({"item_a": ["r1"], "item_b": ["l1"]})
    with pytest.raises(InputError, match="not in the left catalogue"):
        blocking_truth(ITEMS_L, ITEMS_R, dl.names, dr.names, swapped)
