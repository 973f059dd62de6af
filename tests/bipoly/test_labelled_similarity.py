"""The cross-fitted ``labels`` category similarity (crossmatch.bipoly.labelled; issue 12, BiPoly target).

* ``label_instance``: the base similarity plus α · log-scaled positive counts, rescaled to a maximum of 1;
  α = 0 is the base instance's ranking; labelled pairs outside the base's candidates are added;
* the cross-fitted grid never scores a fold on counts that include that fold's own positives;
* inside the blocking: the chosen setting does not depend on the reporting labels, and meta-blocking keeps
  the rewards tuned without the labels kind.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

import crossmatch.bipoly.labelled as labelled_module
from crossmatch.bipoly.blocking import run_blocking
from crossmatch.bipoly.config import BlockingParams
from crossmatch.bipoly.grid import grid_points, value_range
from crossmatch.bipoly.instance import Instance
from crossmatch.bipoly.labelled import LabelParams, cross_fitted_labels, label_instance
from crossmatch.bipoly.metrics import blocking_truth
from crossmatch.bipoly.similarity import category_documents, similarity
from crossmatch.errors import ConfigError
from crossmatch.truth import oriented_truth


def test_label_instance_adds_log_counts_and_rescales() -> None:
    base = Instance.from_dense(np.array([[0.5, 0.0, 0.25], [0.0, 1.0, 0.0]]))
    counts = sp.csr_matrix(np.array([[0, 3, 0], [0, 0, 0]]))
    got = label_instance(base, counts, 1.0).dense()
    want = np.array([[0.5, 1.0, 0.25], [0.0, 1.0, 0.0]])  # log1p(3)/log1p(3) = 1 at (0, 1): a new candidate
    np.testing.assert_allclose(got, want / want.max())
    got2 = label_instance(base, counts * 3, 2.0).dense()  # one count only: the scaled rate is 1 whatever c
    np.testing.assert_allclose(got2, np.array([[0.5, 2.0, 0.25], [0.0, 1.0, 0.0]]) / 2.0)
    np.testing.assert_allclose(label_instance(base, counts, 0.0).dense()[base.dense() > 0], base.dense()[base.dense() > 0])
    with pytest.raises(ValueError, match="counts must be"):
        label_instance(base, sp.csr_matrix((3, 3)), 1.0)


def test_label_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="alphas"):
        LabelParams(alphas=[])
    with pytest.raises(ConfigError, match="folds"):
        LabelParams(folds=1)
    with pytest.raises(ConfigError, match="labels.base"):
        # the base kind must be one the blocking computes
        _blocking({"enabled": True, "base": "overlap"}, similarity="tfidf")


def _data(tiny_data) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    items = {s: pl.read_parquet(tiny_data.ingested / s / "items.parquet") for s in ("alpha", "beta")}
    truth = oriented_truth(pl.read_parquet(tiny_data.truth / "product_matches.parquet"), "alpha", "beta",
                           file="product_matches.parquet")
    return items["alpha"], items["beta"], truth


_STATE: dict[str, object] = {}


def _blocking(labels: dict[str, object], similarity: str = "tfidf", truth: pl.DataFrame | None = None,
              ilp: bool = False):
    left, right, base_truth = _STATE["data"]  # type: ignore[misc]
    params = BlockingParams(left="alpha", right="beta", similarity=similarity, runner="thread", workers=1,
                            methods=["bipoly_s", "bipoly_c"], grid={"omega": [-1.0, 1.0, 0.5], "eta": [-1.0, 1.0, 0.5]},
                            ilp={"methods": ["bipoly"], "time_limit": 5, "mip_gap": 0.0} if ilp else {"methods": []},
                            scenario={"enabled": False}, tune_splits=["train"],
                            report_splits=["valid"], labels=labels)
    return run_blocking(params, left_items=left, right_items=right, truth_pairs=truth if truth is not None else base_truth)


@pytest.fixture(autouse=True)
def _tiny(tiny_data):
    left, right, truth = _data(tiny_data)
    truth = truth.with_columns(split=pl.when(pl.int_range(pl.len()) % 4 == 0).then(pl.lit("valid"))
                               .otherwise(pl.lit("train")))
    _STATE["data"] = (left, right, truth)
    yield
    _STATE.clear()


def test_each_fold_is_scored_on_positives_its_counts_never_saw(tiny_data, monkeypatch) -> None:
    left, right, truth = _STATE["data"]  # type: ignore[misc]
    train = truth.filter(pl.col("split") == "train").drop("split")
    dl, dr = category_documents(left, source="alpha"), category_documents(right, source="beta")
    base = similarity(dl, dr, "tfidf", top_k=20).instance
    calls: list[set[tuple[str, str]]] = []

    def truth_of(pairs: pl.DataFrame):
        calls.append(set(zip(pairs["item_a"], pairs["item_b"], strict=True)))
        return blocking_truth(left, right, dl.names, dr.names, pairs)

    built: list[sp.csr_matrix] = []
    real_instance = labelled_module.label_instance

    def spy_instance(base_inst, counts, alpha):
        built.append(sp.csr_matrix(counts))
        return real_instance(base_inst, counts, alpha)

    monkeypatch.setattr(labelled_module, "label_instance", spy_instance)
    points = grid_points(value_range([-1.0, 1.0, 1.0]), value_range([-1.0, 1.0, 1.0]))
    fit = cross_fitted_labels(LabelParams(alphas=[0.0, 1.0], folds=3), base=base, tune_pairs=train, truth_of=truth_of,
                              methods=["bipoly_c"], points=points)
    everything = set(zip(train["item_a"], train["item_b"], strict=True))
    # per fold (shared by every α): (counts, held-out) — disjoint, together every tuning positive; then the final fit
    assert len(calls) == 3 * 2 + 1 and calls[-1] == everything
    for counts, held in zip(calls[0:-1:2], calls[1:-1:2], strict=True):
        assert held and not (counts & held) and counts | held == everything
    assert set(fit.best) == {"bipoly_c"}
    # every fold's instance was built from the counts of the *other* folds (never the held-out part's)
    complements = [blocking_truth(left, right, dl.names, dr.names,
                                  train.filter(pl.Series([(a, b) in c for a, b in zip(train["item_a"], train["item_b"],
                                                                                       strict=True)]))).counts()
                   for c in calls[0:-1:2]]
    assert len(built) == 2 * 3 + 1
    for k, counts in enumerate(built[:-1]):
        assert (counts != complements[k % 3]).nnz == 0


def test_blocking_with_labels_ignores_report_labels_and_keeps_meta_rewards() -> None:
    left, right, truth = _STATE["data"]  # type: ignore[misc]
    on = _blocking({"enabled": True, "base": "tfidf", "alphas": [0.0, 1.0, 4.0], "folds": 3})
    info = on.metrics["similarity"]["labels"]
    assert info["base"] == "tfidf" and info["alpha"] in (0.0, 1.0, 4.0) and info["folds"] == 3
    assert "labels" in on.metrics["by_similarity"]
    # flipping which pairs are reported (valid) changes nothing that was chosen
    one_valid = pl.concat([truth.filter(pl.col("split") == "train"), truth.filter(pl.col("split") == "valid").head(1)])
    again = _blocking({"enabled": True, "base": "tfidf", "alphas": [0.0, 1.0, 4.0], "folds": 3}, truth=one_valid)
    assert again.metrics["similarity"]["labels"]["cv_tradeoff"] == info["cv_tradeoff"]
    assert {m: r[1].rewards for m, r in again.categories.best.items()} == \
        {m: r[1].rewards for m, r in on.categories.best.items()}
    # the labels kind off: best without labels is the same as best
    off = _blocking({"enabled": False})
    assert off.categories.best_without_labels == off.categories.best
    assert on.categories.best_without_labels == off.categories.best


def test_labels_need_held_out_reporting_labels_and_keep_ilps_out_of_sample(monkeypatch) -> None:
    left, right, truth = _STATE["data"]  # type: ignore[misc]
    params = BlockingParams(left="alpha", right="beta", similarity="tfidf", runner="thread", workers=1,
                            methods=["bipoly_c"], grid={"omega": [-1.0, 1.0, 1.0], "eta": [-1.0, 1.0, 1.0]},
                            ilp={"methods": []}, scenario={"enabled": False}, labels={"enabled": True})
    with pytest.raises(ConfigError, match="held-out"):
        run_blocking(params, left_items=left, right_items=right, truth_pairs=truth.drop("split"))
    import dataclasses

    import crossmatch.bipoly.tuning as tuning_module
    real_fit = tuning_module.cross_fitted_labels

    def winning(*args, **kwargs):  # the labels kind wins every method (a cross-fitted figure of 1)
        fit = real_fit(*args, **kwargs)
        return dataclasses.replace(fit, best={mt: dataclasses.replace(r, tradeoff=1.0) for mt, r in fit.best.items()})

    monkeypatch.setattr(tuning_module, "cross_fitted_labels", winning)
    on = _blocking({"enabled": True, "base": "tfidf", "alphas": [4.0], "folds": 3}, ilp=True)
    ilp = on.metrics["methods"]["ilp_bipoly"]
    assert on.categories.best["bipoly_c"][0] == "labels" and ilp["similarity"] == "labels"
    # built from the tuning positives, the labels instance is never graded on them: the ILP stays at the
    # counterpart's cross-fitted setting instead of the max-weight solution
    assert ilp["tuned_from"] != "max-weight" and ilp["n_settings"] > 1
