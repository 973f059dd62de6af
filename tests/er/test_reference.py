"""The reference classifier: the nothing-tuned floor every pair scorer is reported against."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from crossmatch.er import MatchConfig, block, make_benchmark, match, pipeline
from crossmatch.er.blocking import BlockingConfig
from crossmatch.er.candidates import swap_candidates
from crossmatch.er.reference import RATIOS, RECORD, THRESHOLD, reference_classifier, reference_features
from crossmatch.er.report import benchmark_table
from crossmatch.er.scorer import ScorerConfig
from tests.er.helpers import synthetic_tables


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    left, right, train, valid = synthetic_tables()
    return make_benchmark(left=left, right=right, train=train, valid=valid)


def test_features_per_attribute_and_record_nan_where_a_value_is_empty(bench) -> None:  # type: ignore[no-untyped-def]
    l, r = np.array([0, 0, 1]), np.array([0, 1, 0])
    X, names = reference_features(bench, l, r)
    per = 1 + len(RATIOS)
    assert X.shape == (3, per * (len(bench.attributes) + 1)) and len(names) == X.shape[1]
    assert names[:per] == ["title:tfidf_cosine", *(f"title:{n}" for n in RATIOS)] and names[-per].startswith(RECORD)
    assert np.nanmax(X) <= 1.0 + 1e-9 and np.nanmin(X) >= 0.0
    X2, names2 = reference_features(bench, l, r, record=False)
    assert np.array_equal(X2, X[:, :-per], equal_nan=True) and names2 == names[:-per]
    # a record against itself: every similarity is 1; an empty price on one side: that attribute's five are NaN
    same = make_benchmark(left=bench.left.head(3), right=bench.left.head(3).with_columns(
        pl.when(pl.col("id") == "a1").then(pl.lit("")).otherwise(pl.col("price")).alias("price")), train=None, valid=None)
    Xs, _ = reference_features(same, np.array([0, 1]), np.array([0, 1]))
    price = [i for i, n in enumerate(names) if n.startswith("price:")]
    assert np.allclose(Xs[0], 1.0) and np.isnan(Xs[1, price]).all()
    assert np.allclose(np.delete(Xs[1], price)[:per], 1.0)  # the title still agrees
    # the ratios read a value's first fuzzy_max_chars characters (the scorer's cost bound), the TF-IDF all of it
    two = make_benchmark(left=pl.DataFrame({"id": ["a"], "title": ["acme camera x100 black"]}),
                         right=pl.DataFrame({"id": ["b"], "title": ["acme camera x100 silver"]}), train=None, valid=None)
    full, _ = reference_features(two, np.array([0]), np.array([0]))
    cut, _ = reference_features(two, np.array([0]), np.array([0]), fuzzy_max_chars=16)
    assert cut[0, 0] == full[0, 0] < 1.0 and np.all(cut[0, 1:per] == 1.0) and np.all(full[0, 1:per] < 1.0)
    with pytest.raises(ValueError, match="1-d of one length"):
        reference_features(bench, np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="fuzzy_max_chars"):
        reference_features(bench, l, r, fuzzy_max_chars=0)


def test_trained_on_train_only_scored_at_one_half(bench) -> None:  # type: ignore[no-untyped-def]
    res = reference_classifier(bench, {"valid": bench.valid})
    assert res["threshold"] == THRESHOLD == 0.5 and res["train_pairs"] == bench.train.height
    assert res["features"] == (1 + len(RATIOS)) * (len(bench.attributes) + 1)
    assert res["valid"]["f1"] >= 0.9  # noisy copies of titles: easy, a broken feature or model falls below
    # valid's labels only score: flipping them moves the figures but not what is predicted (precision and recall
    # are computed from the same predicted set)
    flipped = bench.valid.with_columns((1 - pl.col("label")).alias("label"))
    both = reference_classifier(bench, {"valid": bench.valid, "flipped": flipped})
    assert both["valid"] == res["valid"] and both["flipped"]["f1"] < 0.2
    # and train's do choose: a train with its labels flipped learns the opposite
    bad = type(bench)(bench.left, bench.right, bench.attributes,
                      bench.train.with_columns((1 - pl.col("label")).alias("label")), bench.valid)
    assert reference_classifier(bad, {"valid": bench.valid})["valid"]["f1"] < 0.2
    for train in (None, bench.train.filter(pl.col("label") == 1)):
        with pytest.raises(ValueError, match="reference classifier needs"):
            reference_classifier(type(bench)(bench.left, bench.right, bench.attributes, train, bench.valid), {})


def test_match_reports_the_reference_beside_the_scorer_and_not_without_labels(bench, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    cfg = MatchConfig(context_k=0, scorer=ScorerConfig(max_iter=50, folds=3))
    res = match(bench, cands, config=cfg)
    assert res.metrics["reference"] == reference_classifier(bench, {"valid": bench.valid})
    table = benchmark_table("x", {"k": 3, "candidate_pairs": cands.height, "recall_valid": 1.0}, res.metrics)
    ref = res.metrics["reference"]["valid"]
    assert "| reference classifier (the floor: TF-IDF cosine + 4 rapidfuzz ratios" in table
    assert f"| {ref['precision']:.3f} | {ref['recall']:.3f} | {ref['f1']:.3f} |" in table
    # the stage's cost bound reaches it, and which table is A does not matter
    seen: list[dict[str, object]] = []
    monkeypatch.setattr(pipeline, "reference_classifier", lambda *a, **k: seen.append(k) or reference_classifier(*a, **k))
    match(bench, cands, config=replace(cfg, fuzzy_max_chars=8))
    assert seen == [{"seed": cfg.scorer.seed, "fuzzy_max_chars": 8}]
    monkeypatch.undo()
    assert match(bench.swapped(), swap_candidates(cands), config=cfg).metrics["reference"] == res.metrics["reference"]
    unlabelled = type(bench)(bench.left, bench.right, bench.attributes, None, bench.valid)
    assert "reference" not in match(unlabelled, cands, config=cfg).metrics


def test_readme_headline_puts_the_reference_right_after_the_scorer() -> None:
    from crossmatch.report.readme import results_rows

    m = {"scorer": {"valid": {"f1": 0.912}}, "reference": {"valid": {"f1": 0.8125}}}
    rows = [(r["data"], r["metric"], r["value"]) for r in results_rows({"real_er_match_amazon_google": m})]
    at = rows.index(("Amazon–Google", "feature scorer: valid F1", "0.912"))
    assert rows[at + 1] == ("Amazon–Google", "reference classifier (nothing tuned): valid F1", "0.812")
    older = results_rows({"real_er_match_amazon_google": {"scorer": {"valid": {"f1": 0.9}}}})  # before the floor
    assert not any("reference" in r["metric"] for r in older)


def test_an_attribute_empty_in_both_tables_is_held_constant_not_fatal(bench) -> None:  # type: ignore[no-untyped-def]
    """The booster's binning stops on a column with no value (found by the scorer's own empty-attribute test)."""
    empty = pl.lit(None, pl.Utf8).alias("notes")
    left, right, train, valid = synthetic_tables()
    with_empty = make_benchmark(left=left.with_columns(empty), right=right.with_columns(empty), train=train, valid=valid)
    res = reference_classifier(with_empty, {"valid": with_empty.valid})
    plain = reference_classifier(bench, {"valid": bench.valid})
    assert res["features"] == plain["features"] + 1 + len(RATIOS) and res["valid"] == plain["valid"]
