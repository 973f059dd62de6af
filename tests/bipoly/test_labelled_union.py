"""BiPoly plus the labelled category pairs, cross-fitted (crossmatch.bipoly.union; issue 12, BiPoly target).

* ``labelled_union``: the matching's pairs plus every category pair with >= m positives, nothing else;
* the cross-fitted choice scores each fold on positives its counts never saw (otherwise every union would cover
  its own fold completely), and never reads the reporting labels;
* inside the blocking: a ``<method>_plus_labelled`` row with its cross-fitted figures, the other rows unchanged.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from crossmatch.bipoly.blocking import run_blocking
from crossmatch.bipoly.config import BlockingParams
from crossmatch.bipoly.grid import grid_points, run_greedy, value_range
from crossmatch.bipoly.matching import Matching
from crossmatch.bipoly.metrics import blocking_truth
from crossmatch.bipoly.similarity import category_documents, similarity
from crossmatch.bipoly.union import UnionParams, cross_fitted_union, labelled_union
from crossmatch.errors import ConfigError, InputError
from crossmatch.truth import oriented_truth


def test_union_adds_exactly_the_pairs_with_enough_positives() -> None:
    m = Matching.from_pairs(np.array([0, 1]), np.array([0, 2]), method="bipoly_c")
    counts = sp.csr_matrix(np.array([[1, 0, 0], [0, 3, 2], [2, 0, 0]]))
    got = labelled_union(m, counts, 2)
    assert got.pairs() == {(0, 0), (1, 2), (1, 1), (2, 0)} and got.method == "bipoly_c_plus_labelled"
    assert np.isnan(got.objective) and got.info == {"bipoly_pairs": 2, "labelled_pairs": 3}
    assert labelled_union(m, counts, 1).pairs() == m.pairs() | {(1, 1), (2, 0)}
    # a filter on the labelled pairs (partition_by): (2, 0) dropped, the matching's own pairs kept
    assert labelled_union(m, counts, 2, keep=lambda a, b: a != 2).pairs() == {(0, 0), (1, 2), (1, 1)}


def test_union_params_are_checked() -> None:
    for bad in ({"methods": ["poly"]}, {"methods": []}, {"min_counts": [0]}, {"min_counts": [True]}, {"folds": 1}):
        with pytest.raises(ConfigError, match="labelled_union"):
            UnionParams(**bad)  # type: ignore[arg-type]
    # checked when the params load, not after minutes of grid: methods the blocking runs, held-out labels
    with pytest.raises(ConfigError, match=r"labelled_union.methods \['bipoly_s'\] are not in blocking.methods"):
        BlockingParams(methods=["bipoly_c"], labelled_union={"enabled": True}, tune_splits=["train"],
                       report_splits=["valid"])
    with pytest.raises(ConfigError, match="labelled_union needs held-out reporting labels"):
        BlockingParams(labelled_union={"enabled": True})


@pytest.fixture
def data(tiny_data) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:  # type: ignore[no-untyped-def]
    items = {s: pl.read_parquet(tiny_data.ingested / s / "items.parquet") for s in ("alpha", "beta")}
    truth = oriented_truth(pl.read_parquet(tiny_data.truth / "product_matches.parquet"), "alpha", "beta",
                           file="product_matches.parquet")
    truth = truth.with_columns(split=pl.when(pl.int_range(pl.len()) % 4 == 0).then(pl.lit("valid"))
                               .otherwise(pl.lit("train")))
    return items["alpha"], items["beta"], truth


def test_each_fold_is_scored_on_positives_its_counts_never_saw(data) -> None:  # type: ignore[no-untyped-def]
    left, right, truth = data
    train = truth.filter(pl.col("split") == "train").drop("split")
    dl, dr = category_documents(left, source="alpha"), category_documents(right, source="beta")
    inst = similarity(dl, dr, "tfidf", top_k=20).instance
    calls: list[set[tuple[str, str]]] = []

    def truth_of(pairs: pl.DataFrame):  # type: ignore[no-untyped-def]
        calls.append(set(zip(pairs["item_a"], pairs["item_b"], strict=True)))
        return blocking_truth(left, right, dl.names, dr.names, pairs)

    points = grid_points(value_range([-1.0, 1.0, 0.5]), value_range([-1.0, 1.0, 0.5]))
    fits = cross_fitted_union(UnionParams(methods=["bipoly_c"], min_counts=[1, 2], folds=3), instances={"tfidf": inst},
                              tune_pairs=train, truth_of=truth_of, points=points)
    everything = set(zip(train["item_a"], train["item_b"], strict=True))
    assert len(calls) == 3 * 2 + 1 and calls[-1] == everything
    for counts, held in zip(calls[0:-1:2], calls[1:-1:2], strict=True):
        assert held and not (counts & held) and counts | held == everything
    fit = fits["bipoly_c"]
    # the shipped matching: BiPoly.C at the chosen setting plus every category pair of the tuning positives (m)
    base = run_greedy("bipoly_c", inst, fit.rewards)
    assert base is not None
    full = blocking_truth(left, right, dl.names, dr.names, train)
    assert fit.matching.pairs() == labelled_union(base, full.counts(), fit.min_count).pairs()
    # its in-sample coverage is 1 at m = 1, which is why the choice is cross-fitted: the figure is below that
    if fit.min_count == 1:
        assert full.score_matching(fit.matching).coverage == 1.0
    assert 0 < fit.cv_coverage < 1 and 0 < fit.cv_tradeoff < 1
    with pytest.raises(InputError, match="tuning positives"):
        cross_fitted_union(UnionParams(folds=3), instances={"tfidf": inst}, tune_pairs=train.head(2),
                           truth_of=truth_of, points=points)


def _blocking(data, union: dict[str, object], truth: pl.DataFrame | None = None,  # type: ignore[no-untyped-def]
              held_out: bool = True):
    left, right, base_truth = data
    params = BlockingParams(left="alpha", right="beta", similarity="tfidf", runner="thread", workers=1,
                            methods=["bipoly_s", "bipoly_c"], grid={"omega": [-1.0, 1.0, 0.5], "eta": [-1.0, 1.0, 0.5]},
                            ilp={"methods": []}, scenario={"enabled": False},
                            tune_splits=["train"] if held_out else None, report_splits=["valid"] if held_out else None,
                            labelled_union=union)
    return run_blocking(params, left_items=left, right_items=right, truth_pairs=truth if truth is not None else base_truth)


def test_blocking_reports_the_union_rows_without_reading_the_reporting_labels(data) -> None:  # type: ignore[no-untyped-def]
    left, right, truth = data
    on = _blocking(data, {"enabled": True, "folds": 3})
    off = _blocking(data, {"enabled": False})
    rows = on.metrics["methods"]
    assert {"bipoly_c_plus_labelled", "bipoly_s_plus_labelled"} <= set(rows)
    for name in ("bipoly_c", "bipoly_s"):
        row = rows[f"{name}_plus_labelled"]
        assert row["similarity"] == "tfidf" and row["min_count"] in (1, 2, 3) and 0 < row["cv"]["tradeoff"] <= 1
        assert row["labelled_pairs"] > 0 and row["n_pairs"] <= row["bipoly_pairs"] + row["labelled_pairs"]
        same = {k: v for k, v in rows[name].items() if k != "seconds"}
        assert same == {k: v for k, v in off.metrics["methods"][name].items() if k != "seconds"}  # untouched
    assert "bipoly_c_plus_labelled" not in off.metrics["methods"]
    # fewer reporting labels: the same choice and the same matched pairs
    one_valid = pl.concat([truth.filter(pl.col("split") == "train"), truth.filter(pl.col("split") == "valid").head(1)])
    again = _blocking(data, {"enabled": True, "folds": 3}, truth=one_valid)
    for name in ("bipoly_c_plus_labelled", "bipoly_s_plus_labelled"):
        assert again.categories.matchings[name].pairs() == on.categories.matchings[name].pairs()
        assert again.metrics["methods"][name]["cv"] == rows[name]["cv"]
    with pytest.raises(ConfigError, match="held-out reporting labels"):
        _blocking(data, {"enabled": True, "folds": 3}, held_out=False)
