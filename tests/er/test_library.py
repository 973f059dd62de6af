"""crossmatch.er: tables, blocking, features, scorer, post-processing, unsupervised rule, end to end."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from crossmatch.er import BlockingConfig, MatchConfig, block, make_benchmark, match
from crossmatch.er.blocking import candidates, choose_k, recall_curve
from crossmatch.er.evaluate import (
    end_to_end,
    end_to_end_bounds,
    end_to_end_estimate,
    labelled_metrics,
    output_metrics,
)
from crossmatch.er.features import PairFeaturizer, _codes, _prefix_found
from crossmatch.er.postprocess import greedy_one_to_one, select
from crossmatch.er.scorer import PairScorer, ScorerConfig, best_f1_threshold
from crossmatch.er.tables import numeric_attributes, positives
from crossmatch.er.unsupervised import mixture_threshold
from crossmatch.errors import ConfigError, InputError
from crossmatch.twosided.sparse_market import SparseMarket, is_stable_incomplete
from tests.er.helpers import synthetic_tables


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    left, right, train, valid = synthetic_tables()
    return make_benchmark(left=left, right=right, train=train, valid=valid)


def test_tables_normalise_and_find_numeric(bench) -> None:  # type: ignore[no-untyped-def]
    assert bench.attributes == ("title", "brand", "price")
    assert numeric_attributes(bench) == ("price",)
    assert bench.has_labels and len(positives(bench.train)) + len(positives(bench.valid)) == 80


def test_numbers_written_with_currency_thousands_or_percent_are_numeric() -> None:
    """Prices as catalogues write them ("$ 1,299.00", "12.99 gbp") and strengths ("4.5 %") get the numeric
    ratio features; model codes ("5d"), times ("3:41"), dates and "infinity" stay text."""
    from crossmatch.er.tables import parse_numbers

    raw = ["$ 1,299.00", "12.99 gbp", "4.5 %", "usd 10", "0.99$", ".5", "-3", "5d", "3:41", "17-jan-14", "1,2",
           "1.2.3", "infinity", "nan", ""]
    got = parse_numbers(pl.Series(raw)).to_list()
    assert got == [1299.0, 12.99, 4.5, 10.0, 0.99, 0.5, -3.0] + [None] * 8
    left = pl.DataFrame({"id": ["a0", "a1", "a2"], "name": ["acme cam", "acme tv", "globex pc"],
                         "price": ["$ 1,299.00", "$ 5.00", ""]})
    right = pl.DataFrame({"id": ["b0", "b1", "b2"], "name": ["acme cam", "acme tv", "globex pc"],
                          "price": ["1299 usd", "$ 10", "$ 7"]})
    b = make_benchmark(left=left, right=right)
    assert numeric_attributes(b) == ("price",)
    f = PairFeaturizer(b)
    X = f.transform(np.array([0, 1, 2]), np.array([0, 1, 2]))
    ratio = X[:, f.names.index("price:ratio")]
    assert ratio[:2].tolist() == [1.0, 0.5] and np.isnan(ratio[2])


@pytest.mark.parametrize(("change", "message"), [
    (lambda L, R, P: (L.drop("id"), R, P), "no 'id' column"),
    (lambda L, R, P: (pl.concat([L, L.head(1)]), R, P), "duplicate ids"),
    (lambda L, R, P: (L, R, P.with_columns(pl.lit("zz").alias("rtable_id"))), "id not found in tableB"),
    (lambda L, R, P: (L, R, P.with_columns(pl.lit(2).alias("label"))), "label must be 0 or 1"),
    (lambda L, R, P: (L, R, P.drop("label")), "missing column"),
    (lambda L, R, P: (L.select("id", pl.col("title").alias("name")), R.select("id", "price"), P), "no attribute column"),
])
def test_bad_tables_name_file_column_rows(change, message: str) -> None:  # type: ignore[no-untyped-def]
    left, right, train, _ = synthetic_tables(20)
    L, R, P = change(left, right, train)
    with pytest.raises(InputError, match=message) as err:
        make_benchmark(left=L, right=R, train=P)
    assert err.value.file in ("tableA", "tableB", "train")


def test_blocking_finds_the_duplicates_and_k_is_chosen_on_train(bench) -> None:  # type: ignore[no-untyped-def]
    cfg = BlockingConfig(k_left=3, k_grid=(1, 2, 3, 5))
    c = candidates(bench, cfg)
    assert c.height == 80 * 3 and c.get_column("rank_left").min() == 1
    truths = {"train": positives(bench.train), "valid": positives(bench.valid)}
    curve = recall_curve(candidates(bench, cfg, k_left=5), truths, cfg.k_grid)
    assert curve.get_column("pairs").to_list() == [80, 160, 240, 400]
    assert np.all(np.diff(curve.get_column("recall_train").to_numpy()) >= 0)
    res = block(bench, config=cfg)
    assert res.metrics["k"] == choose_k(curve, target=cfg.target_recall)
    assert res.metrics["recall_valid"] >= 0.95 and res.metrics["k_chosen_on"] == "train"


def test_features_are_nan_for_missing_values_and_high_for_duplicates(bench) -> None:  # type: ignore[no-untyped-def]
    f = PairFeaturizer(bench)
    pos = bench.train.filter(pl.col("label") == 1)
    neg = bench.train.filter(pl.col("label") == 0)
    Xp = f.transform(pos.get_column("l").to_numpy(), pos.get_column("r").to_numpy())
    Xn = f.transform(neg.get_column("l").to_numpy(), neg.get_column("r").to_numpy())
    assert Xp.shape[1] == Xn.shape[1] == len(f.names)
    j = f.names.index("title:tfidf_char_wb")
    assert np.nanmean(Xp[:, j]) > np.nanmean(Xn[:, j]) + 0.3
    # distractors have no price: the price features of pairs with them are NaN, not 0
    k = f.names.index("price:ratio")
    distractor = neg.get_column("r").to_numpy() >= 80
    assert distractor.any() and np.isnan(Xn[distractor, k]).all()
    with pytest.raises(ValueError, match="equal length"):
        f.transform(np.array([0, 1]), np.array([0]))


def _code_view(bench):  # type: ignore[no-untyped-def]
    import re

    from sklearn.feature_extraction.text import TfidfVectorizer

    # the spec, written independently: word TF-IDF over the record's tokens that contain a digit
    codes = lambda s: [t for t in re.findall(r"[a-z0-9]+", s) if re.search(r"[0-9]", t)]  # noqa: E731
    left, right = bench.text("left"), bench.text("right")
    vec = TfidfVectorizer(analyzer=codes, sublinear_tf=True).fit(left + right)
    return vec.transform(left), vec.transform(right)


@pytest.mark.parametrize("view", ["context", "context_title", "context_brand", "context_codes"])
def test_context_features_match_a_brute_force_neighbour_scan(bench, view: str) -> None:  # type: ignore[no-untyped-def]
    from crossmatch.er.blocking import tfidf_matrices

    k = 5
    f = PairFeaturizer(bench, context_k=k, context_attributes=True, context_codes=True)
    A, B = {"context": lambda: tfidf_matrices(bench, BlockingConfig()), "context_codes": lambda: _code_view(bench),
            "context_title": lambda: f.tfidf[("title", "char_wb")],
            "context_brand": lambda: f.tfidf[("brand", "char_wb")]}[view]()
    S = (A @ B.T).toarray().astype(np.float64)  # the full matrix: fine at 80 x 120, never in the library
    rng = np.random.default_rng(0)
    l = np.r_[np.arange(20), rng.integers(0, S.shape[0], 30)]
    r = np.r_[S[:20].argmax(axis=1), rng.integers(0, S.shape[1], 30)]  # 20 row-best pairs, 30 random ones
    X = f.transform(l, r)
    assert {n.split(":")[0] for n in f.names if n.startswith("context")} == {
        "context", "context_title", "context_brand", "context_codes"}  # price is numeric
    assert f.context_names == {n for n in f.names if n.startswith("context")}
    col = {n: X[:, f.names.index(f"{view}:{n}")] for n in ("cosine", "rank_left", "gap_left", "margin_left",
                                                          "rank_right", "gap_right", "margin_right")}
    for i, (a, b) in enumerate(zip(l.tolist(), r.tolist(), strict=True)):
        s = S[a, b]
        assert col["cosine"][i] == pytest.approx(s, abs=1e-5)
        for side, row, me in (("left", S[a], b), ("right", S[:, b], a)):
            above = int((row > s + 1e-6).sum())
            assert col[f"rank_{side}"][i] == min(above, k) + 1
            assert col[f"gap_{side}"][i] == pytest.approx(row.max() - s, abs=1e-5)
            others = np.delete(row, me)
            assert col[f"margin_{side}"][i] == pytest.approx(s - others.max(), abs=1e-5)
    assert (col["rank_left"][:20] == 1).all() and (col["gap_left"][:20] == pytest.approx(0, abs=1e-5))
    plain = PairFeaturizer(bench)
    plain.transform(l[:2], r[:2])
    assert plain.names and not any(n.startswith("context") for n in plain.names)
    with pytest.raises(ValueError, match="context_k"):
        PairFeaturizer(bench, context_k=-1)
    # no record has a token with a digit: no code view, no error
    letters = make_benchmark(left=pl.DataFrame({"id": ["a0", "a1"], "title": ["red pen", "blue cup"]}),
                             right=pl.DataFrame({"id": ["b0", "b1"], "title": ["red pen x", "cup"]}))
    g = PairFeaturizer(letters, context_k=2, context_codes=True)
    Xg = g.transform(np.array([0, 1]), np.array([0, 1]))
    assert np.isfinite(Xg[:, [g.names.index(n) for n in g.context_names]]).all()
    assert "context:cosine" in g.names and not any(n.startswith("context_codes") for n in g.names)
    with pytest.raises(ConfigError, match="context_k"):
        MatchConfig(context_k=-1)


def test_token_features_are_the_presence_states_of_the_most_frequent_tokens(bench) -> None:  # type: ignore[no-untyped-def]
    import re
    from collections import Counter

    m = 12
    f = PairFeaturizer(bench, token_vocab=m)
    toks = [[set(re.findall(r"[a-z0-9]+", t)) for t in bench.text(side)] for side in ("left", "right")]
    df = Counter(t for side in toks for s in side for t in s)
    vocab = sorted(df, key=lambda t: (-df[t], t))[:m]  # ties by the token: the same vocabulary on any machine
    assert f.vocab == vocab and len(set(df[t] for t in vocab)) < m  # the fixture has ties to break
    rng = np.random.default_rng(1)
    l, r = rng.integers(0, bench.left.height, 40), rng.integers(0, bench.right.height, 40)
    X = f.transform(l, r)
    assert f.token_names == {f"token:{t}" for t in vocab}
    for i, (a, b) in enumerate(zip(l.tolist(), r.tolist(), strict=True)):
        for t in vocab:
            want = (t in toks[0][a]) + 2 * (t in toks[1][b])  # 0 neither, 1 left only, 2 right only, 3 both
            assert X[i, f.names.index(f"token:{t}")] == want
    assert {0.0, 1.0, 2.0, 3.0} <= set(X[:, [f.names.index(n) for n in f.token_names]].ravel().tolist())
    plain = PairFeaturizer(bench)
    assert np.array_equal(plain.transform(l, r), X[:, [f.names.index(n) for n in plain.names]], equal_nan=True)
    with pytest.raises(ValueError, match="token_vocab"):
        PairFeaturizer(bench, token_vocab=-1)
    for bad in ((-1,), (), (True,), [64]):
        with pytest.raises(ConfigError, match="token_vocab"):
            MatchConfig(token_vocab=bad)  # type: ignore[arg-type]


def test_token_vocab_is_chosen_by_train_out_of_fold_f1(bench) -> None:  # type: ignore[no-untyped-def]
    from crossmatch.er.token_vocab import choose_token_vocab, token_columns

    f = PairFeaturizer(bench, token_vocab=20)
    l, r = bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy()
    y = bench.train.get_column("label").to_numpy()
    X = f.transform(l, r)
    cols = {m: token_columns(f, m) for m in (0, 5, 20)}
    assert len(cols[20]) == X.shape[1] and len(cols[0]) == X.shape[1] - 20
    assert [f.names[i] for i in cols[5] if f.names[i] in f.token_names] == [f"token:{t}" for t in f.vocab[:5]]
    cfg = ScorerConfig(max_iter=30)
    oof = {m: PairScorer(cfg).fit(X[:, c], y).oof_f1 for m, c in cols.items()}
    keep, scorer, info = choose_token_vocab(X, y, f, (20, 0, 5), cfg)
    best = min(oof, key=lambda m: (-oof[m], m))  # ties: the smaller vocabulary
    assert info["chosen"] == best and np.array_equal(keep, cols[best])
    assert info["oof_f1_train"] == {str(m): round(oof[m], 6) for m in (0, 5, 20)}
    assert scorer.oof_f1 == oof[best]
    # equal scores: the smaller size wins
    same = X.copy()
    same[:, [f.names.index(n) for n in f.token_names]] = 0.0  # the token columns carry nothing: equal fits
    keep, _, info = choose_token_vocab(same, y, f, (20, 5), cfg)
    assert info["chosen"] == 5 and np.array_equal(keep, cols[5])


def test_token_vocabulary_from_text_attributes_only(bench) -> None:  # type: ignore[no-untyped-def]
    import re
    from collections import Counter

    m = 200  # more than the text tokens: every text token is in, no price token may be
    f = PairFeaturizer(bench, token_vocab=m, token_text_only=True)
    text = [[set(re.findall(r"[a-z0-9]+", t)) for t in bench.text(side, ("title", "brand"))] for side in ("left", "right")]
    df = Counter(t for side in text for s in side for t in s)
    assert f.vocab == sorted(df, key=lambda t: (-df[t], t))[:m]
    prices = {t for side in ("left", "right") for v in getattr(bench, side).get_column("price").to_list()
              for t in re.findall(r"[a-z0-9]+", v)}
    only_price = prices - set(df)
    assert only_price and not only_price & set(f.vocab)  # the fixture has price-only tokens; none is a feature
    assert only_price & set(PairFeaturizer(bench, token_vocab=m).vocab)  # the all-attribute vocabulary holds them
    rng = np.random.default_rng(2)
    l, r = rng.integers(0, bench.left.height, 30), rng.integers(0, bench.right.height, 30)
    X = f.transform(l, r)
    for i, (a, b) in enumerate(zip(l.tolist(), r.tolist(), strict=True)):
        for t in f.vocab[:15]:  # presence is read from the same text-only tokens
            assert X[i, f.names.index(f"token:{t}")] == (t in text[0][a]) + 2 * (t in text[1][b])
    from stages._er import ERParams

    assert ERParams(match={"token_text_only": True}).match_config().token_text_only


def test_token_vocab_choice_averages_fold_splits_and_demands_a_minimum_gain(bench) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from crossmatch.er.token_vocab import choose_token_vocab, token_columns

    f = PairFeaturizer(bench, token_vocab=20)
    y = bench.train.get_column("label").to_numpy()
    f.transform(bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy())
    # the real features separate this fixture perfectly at every size; here only the tokens carry the label,
    # the 5 most frequent strongly and the next 15 weakly, so the three sizes score apart (by unequal gaps)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(y), len(f.names)))
    tok = [f.names.index(f"token:{t}") for t in f.vocab]
    X[:, tok[:5]] = y[:, None] + rng.normal(scale=0.8, size=(len(y), 5))
    X[:, tok[5:]] = y[:, None] + rng.normal(scale=2.5, size=(len(y), 15))
    cfg = ScorerConfig(max_iter=30, seed=4)
    sizes = (0, 5, 20)
    mean = {m: float(np.mean([PairScorer(dataclasses.replace(cfg, seed=4 + i)).fit(X[:, token_columns(f, m)], y).oof_f1
                              for i in range(3)])) for m in sizes}
    assert mean[0] < mean[5] < mean[20]
    keep, scorer, info = choose_token_vocab(X, y, f, sizes, cfg, seeds=3)
    assert info["oof_f1_train"] == {str(m): round(mean[m], 6) for m in sizes} and info["seeds"] == 3
    assert info["chosen"] == 20 and np.array_equal(keep, token_columns(f, 20))
    assert scorer.config.seed == 4  # the scorer shipped is the one of the configured seed
    gaps = sorted({mean[5] - mean[0], mean[20] - mean[5], mean[20] - mean[0]})
    chosen = set()
    for gain in (0.0, *[g - 1e-9 for g in gaps], *[g + 1e-9 for g in gaps], 1.0):
        best = 0  # brute force of the rule: replace the best so far only on a gain >= min_gain
        for m in sizes[1:]:
            if mean[m] > mean[best] and mean[m] - mean[best] >= gain:
                best = m
        keep, _, info = choose_token_vocab(X, y, f, sizes, cfg, seeds=3, min_gain=gain)
        assert info["chosen"] == best and info["min_gain"] == gain and np.array_equal(keep, token_columns(f, best))
        chosen.add(best)
    assert chosen == {0, 5, 20}  # the gains above reach every outcome of the rule
    with pytest.raises(ValueError, match="seeds"):
        choose_token_vocab(X, y, f, sizes, cfg, seeds=0)
    with pytest.raises(ConfigError, match="token_min_gain"):
        MatchConfig(token_min_gain=-0.1)


def test_text_only_token_presence_ignores_a_price_that_holds_the_token() -> None:
    left = pl.DataFrame({"id": ["a0", "a1", "a2"], "title": ["widget 99 pack", "gadget", "gizmo"],
                         "price": ["5", "99", "7"]})
    right = pl.DataFrame({"id": ["b0", "b1"], "title": ["widget pack", "gadget 99"], "price": ["99", "3"]})
    b = make_benchmark(left=left, right=right)
    text, full = PairFeaturizer(b, token_vocab=50, token_text_only=True), PairFeaturizer(b, token_vocab=50)
    pairs = (np.array([1, 0, 2]), np.array([0, 1, 0]))
    Xt, Xf = text.transform(*pairs), full.transform(*pairs)
    at = text.names.index("token:99"), full.names.index("token:99")
    assert Xt[:, at[0]].tolist() == [0.0, 3.0, 0.0]  # a1 and b0 hold "99" only in their prices
    assert Xf[:, at[1]].tolist() == [3.0, 3.0, 2.0]
    assert "5" not in text.vocab and "5" in full.vocab
    numeric = make_benchmark(left=left.select("id", "price"), right=right.select("id", "price"))
    none = PairFeaturizer(numeric, token_vocab=50, token_text_only=True)  # no text attribute: no word token
    assert none.vocab == [] and PairFeaturizer(numeric, token_vocab=50).vocab
    assert not none.token_names and none.transform(*pairs).shape[0] == 3


def test_best_f1_threshold_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(60).round(2)
    y = (rng.random(60) < p).astype(int)
    t, f1 = best_f1_threshold(p, y)
    brute = max(labelled_metrics(p >= c, y)["f1"] for c in np.unique(p))
    assert f1 == pytest.approx(brute) and labelled_metrics(p >= t, y)["f1"] == pytest.approx(brute)


def test_scorer_learns_and_threshold_comes_from_train_only(bench) -> None:  # type: ignore[no-untyped-def]
    f = PairFeaturizer(bench)
    X = f.transform(bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy())
    y = bench.train.get_column("label").to_numpy()
    s = PairScorer(ScorerConfig(max_iter=50, folds=3)).fit(X, y)
    Xv = f.transform(bench.valid.get_column("l").to_numpy(), bench.valid.get_column("r").to_numpy())
    p = s.predict_proba(Xv)
    assert ((p >= 0) & (p <= 1)).all()
    assert labelled_metrics(p >= s.threshold, bench.valid.get_column("label").to_numpy())["f1"] >= 0.9
    again = PairScorer(ScorerConfig(max_iter=50, folds=3)).fit(X, y)
    assert again.threshold == s.threshold and np.array_equal(again.predict_proba(Xv), p)
    with pytest.raises(ConfigError, match="positives"):
        PairScorer(ScorerConfig(folds=3)).fit(X[:5], np.zeros(5))


def test_scorer_bag_averages_members_that_differ(bench) -> None:  # type: ignore[no-untyped-def]
    from sklearn.ensemble import HistGradientBoostingClassifier

    f = PairFeaturizer(bench)
    X = f.transform(bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy())
    y = bench.train.get_column("label").to_numpy()
    one = PairScorer(ScorerConfig(max_iter=30, folds=3, seed=2, refit="full")).fit(X, y)
    # one member with every feature is the plain booster with the config's own seed
    plain = HistGradientBoostingClassifier(max_iter=30, learning_rate=0.05, max_leaf_nodes=31, random_state=2).fit(X, y)
    assert np.array_equal(one.members[0][0][0].predict_proba(X), plain.predict_proba(X))
    bag = PairScorer(ScorerConfig(max_iter=30, folds=3, seed=2, ensemble=3, max_features=0.5, refit="full")).fit(X, y)
    members = [m.predict_proba(X)[:, 1] for m in bag.members[0][0]]
    assert len(members) == 3 and not np.array_equal(members[0], members[1])  # feature subsampling makes them differ
    assert np.array_equal(bag.calibrator.predict(np.mean(members, axis=0)), bag.predict_proba(X))
    again = PairScorer(ScorerConfig(max_iter=30, folds=3, seed=2, ensemble=3, max_features=0.5, refit="full")).fit(X, y)
    assert again.threshold == bag.threshold and np.array_equal(again.predict_proba(X), bag.predict_proba(X))
    assert isinstance(ScorerConfig(max_features=1).max_features, float)  # YAML's `1`: the share 1.0, not one feature
    for bad in ({"ensemble": 0}, {"max_features": 0.0}, {"max_features": 1.5}):
        with pytest.raises(ConfigError, match="ensemble"):
            ScorerConfig(**bad)  # type: ignore[arg-type]


def test_scorer_averages_calibrated_member_scores_each_on_its_own_columns() -> None:
    class Fake:  # a member whose probability is one input column; records what it was given
        def __init__(self, col: int) -> None:
            self.col, self.seen = col, np.zeros(0)

        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            self.seen = X.copy()
            return np.c_[1 - X[:, self.col], X[:, self.col]]

    class Square:  # a nonlinear calibration map: mean of calibrated != calibrated mean
        def predict(self, x: np.ndarray) -> np.ndarray:
            return np.asarray(x) ** 2

    s = PairScorer(ScorerConfig())
    a, b = Fake(0), Fake(1)
    s.calibrator, s.empty = Square(), np.zeros(2, dtype=bool)  # type: ignore[assignment]
    s.members = [([a], np.array([False, True])), ([b], np.array([True, False]))]  # type: ignore[list-item]
    X = np.array([[0.2, 0.6], [0.8, 0.4]])
    # member a: column 0 -> 0.04, 0.64; member b: column 1 -> 0.36, 0.16; their mean, not (mean of raw)^2
    assert np.allclose(s.predict_proba(X), [0.2, 0.4])
    # each member sees its own fold's empty columns set to 0, and the caller's array is untouched
    assert np.array_equal(a.seen, [[0.2, 0.0], [0.8, 0.0]]) and np.array_equal(b.seen, [[0.0, 0.6], [0.0, 0.4]])
    assert np.array_equal(X, [[0.2, 0.6], [0.8, 0.4]])


def test_scorer_refit_folds_scores_with_the_fold_models(bench) -> None:  # type: ignore[no-untyped-def]
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    f = PairFeaturizer(bench)
    X = f.transform(bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy())
    y = bench.train.get_column("label").to_numpy()
    Xv = f.transform(bench.valid.get_column("l").to_numpy(), bench.valid.get_column("r").to_numpy())
    full = PairScorer(ScorerConfig(max_iter=30, folds=3, seed=1, refit="full")).fit(X, y)
    folds = PairScorer(ScorerConfig(max_iter=30, folds=3, seed=1)).fit(X, y)  # the default
    # the out-of-fold scores, so the calibration map and the threshold, do not depend on the refit
    assert folds.threshold == full.threshold and folds.oof_f1 == full.oof_f1
    assert len(full.members) == 1 and len(folds.members) == 3
    # the score of a new pair: the mean of the three fold models' calibrated probabilities, each model
    # fitted on its own fold's training pairs (what StratifiedKFold with the config's seed gives)
    expect = []
    for tr, _ in StratifiedKFold(3, shuffle=True, random_state=1).split(X, y):
        m = HistGradientBoostingClassifier(max_iter=30, learning_rate=0.05, max_leaf_nodes=31, random_state=1)
        expect.append(folds.calibrator.predict(m.fit(X[tr], y[tr]).predict_proba(Xv)[:, 1]))
    p = folds.predict_proba(Xv)
    assert np.allclose(p, np.mean(expect, axis=0))
    # the fold models are not the full refit (on this easy toy both calibrate to the same 0 / 1 decisions)
    raw = [bag[0].predict_proba(Xv)[:, 1] for bag, _ in folds.members + full.members]
    assert not any(np.array_equal(raw[i], raw[3]) for i in range(3))
    assert ((p >= 0) & (p <= 1)).all()
    with pytest.raises(ConfigError, match="refit"):
        ScorerConfig(refit="some")


def _brute_max_weight(W: np.ndarray) -> float:
    n, m = W.shape
    best = 0.0
    for perm in itertools.permutations(range(m), n) if n <= m else []:
        best = max(best, sum(W[i, perm[i]] for i in range(n)))
    return best


def test_postprocess_one_to_one_variants() -> None:
    rng = np.random.default_rng(0)
    W = rng.random((4, 5))
    l, r = np.repeat(np.arange(4), 5), np.tile(np.arange(5), 4)
    prob = W.ravel()
    hung = select(l, r, prob, method="hungarian", threshold=0.0)
    assert prob[hung.keep].sum() == pytest.approx(_brute_max_weight(W)) and hung.solvers == {"hungarian": 9}
    for method in ("hungarian", "greedy", "stable"):
        keep = select(l, r, prob, method=method, threshold=0.0).keep
        assert len(set(l[keep])) == len(keep) == len(set(r[keep]))
    # above the dense limit the named greedy rule runs and is reported
    assert select(l, r, prob, method="hungarian", threshold=0.0, dense_max=3).solvers == {"greedy": 9}
    st = select(l, r, prob, method="stable", threshold=0.0, dense_max=3)
    assert st.solvers == {"gs_best": 9}
    best_l, best_r = W.max(1), W.max(0)
    market = SparseMarket(4, 5, l, r, prob / best_l[l], prob / best_r[r])
    assert is_stable_incomplete(market, l[st.keep], r[st.keep])
    thr = select(l, r, prob, method="threshold", threshold=0.5)
    assert set(thr.keep.tolist()) == set(np.flatnonzero(prob >= 0.5).tolist())
    g = greedy_one_to_one(l, r, prob)
    assert prob[g[0]] == prob.max() or prob.max() in prob[g]


def test_clusters_close_small_components_only() -> None:
    l = np.array([0, 1, 2, 3])
    r = np.array([0, 0, 1, 2])
    prob = np.array([0.9, 0.8, 0.9, 0.1])
    sel = select(l, r, prob, method="clusters", threshold=0.5)
    assert sel.pairs(l, r) == {(0, 0), (1, 0), (2, 1)}
    l2, r2 = np.array([0, 0, 1]), np.array([0, 1, 1])
    closed = select(l2, r2, np.ones(3), method="clusters", threshold=0.5)
    assert closed.pairs(l2, r2) == {(0, 0), (0, 1), (1, 1), (1, 0)} and closed.extra == [(1, 0)]
    assert select(l2, r2, np.ones(3), method="clusters", threshold=0.5, max_cluster=3).extra == []


def test_mixture_threshold_separates_two_modes() -> None:
    rng = np.random.default_rng(1)
    s = np.r_[rng.normal(0.2, 0.05, 300), rng.normal(0.8, 0.05, 100)]
    m = mixture_threshold(s)
    assert 0.35 < m.threshold < 0.65 and m.means[0] < m.means[1]
    with pytest.raises(ValueError, match="at least 4"):
        mixture_threshold(np.ones(3))


def test_metrics_protocols() -> None:
    pairs = pl.DataFrame({"l": [0, 1, 2], "r": [0, 1, 2], "label": [1, 0, 1]})
    assert output_metrics({(0, 0), (1, 1)}, pairs) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    e = end_to_end({(0, 0), (5, 5)}, {(0, 0), (2, 2)})
    assert e["precision"] == 0.5 and e["recall"] == 0.5 and e["pairs"] == 2
    # output: a labelled positive, a labelled negative, two pairs nobody labelled; truth: 2 pairs
    b = end_to_end_bounds({(0, 0), (1, 1), (5, 5), (6, 6)}, {(0, 0), (2, 2)}, {(0, 0), (1, 1), (2, 2)})
    assert (b["labelled_positive"], b["labelled_negative"], b["unlabelled"]) == (1, 1, 2)
    assert b["f1"] == pytest.approx(2 * 0.25 * 0.5 / 0.75)  # P 1/4, R 1/2: the unlabelled pairs count as errors
    # counted as matches instead: P 3/4, R 3/4 (they join the truth)
    assert b["f1_if_unlabelled_true"] == pytest.approx(0.75)


def test_end_to_end_estimate_counts_withheld_positives_found_at_the_valid_recall() -> None:
    # output: a labelled positive, a labelled negative, two pairs nobody labelled; truth: 2 pairs; 4 withheld
    out, truth, labelled = {(0, 0), (1, 1), (5, 5), (6, 6)}, {(0, 0), (2, 2)}, {(0, 0), (1, 1), (2, 2)}
    e = end_to_end_estimate(out, truth, labelled, withheld_positives=4, valid_recall=0.5, valid_positives=100)
    # 0.5 * 4 = 2 withheld positives found among the 2 unlabelled pairs: P 3/4, R 3/(2 + 4)
    assert (e["precision"], e["recall"], e["withheld_found"], e["capped"]) == (0.75, 0.5, 2.0, 0.0)
    assert e["f1"] == pytest.approx(0.6)
    assert e["f1_low"] < e["f1"] and e["f1_high"] == pytest.approx(0.6)  # above: capped by the 2 unlabelled pairs
    low = end_to_end_estimate(out, truth, labelled, withheld_positives=4, valid_recall=0.25, valid_positives=100)
    assert low["f1_low"] < low["f1"] < low["f1_high"] and low["withheld_found"] == 1.0
    # a perfect valid recall still has a range below it (Wilson, not the normal interval's zero width)
    top = end_to_end_estimate(out, truth, labelled, withheld_positives=2, valid_recall=1.0, valid_positives=20)
    assert top["capped"] == 0.0 and top["withheld_found"] == 2.0 and top["f1_low"] < top["f1"] == top["f1_high"]
    # 3 found are more than the 2 unlabelled pairs can hold: capped
    cap = end_to_end_estimate(out, truth, labelled, withheld_positives=3, valid_recall=1.0, valid_positives=20)
    assert cap["capped"] == 1.0 and cap["withheld_found"] == 2.0
    # nothing withheld: the labelled figure
    none = end_to_end_estimate(out, truth, labelled, withheld_positives=0, valid_recall=0.5, valid_positives=10)
    assert none["f1"] == pytest.approx(end_to_end(out, truth)["f1"])
    for bad in ({"valid_recall": 1.5}, {"valid_positives": 0}, {"withheld_positives": -1}):
        with pytest.raises(ValueError, match="valid_recall"):
            end_to_end_estimate(out, truth, labelled, **{"withheld_positives": 4, "valid_recall": 0.5,
                                                         "valid_positives": 10, **bad})


def test_match_supervised_and_unsupervised(bench) -> None:  # type: ignore[no-untyped-def]
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    cfg = MatchConfig(scorer=ScorerConfig(max_iter=50, folds=3))
    sup = match(bench, cands, config=cfg, withheld_positives=7)
    assert sup.metrics["mode"] == "supervised" and sup.metrics["scorer"]["valid"]["f1"] >= 0.9
    for row in [*sup.metrics["postprocess"].values(), sup.metrics["unsupervised"]]:
        est, lab = row["end_to_end_estimate"], row["end_to_end"]
        assert est["withheld_positives"] == 7 and est["f1_low"] <= est["f1"] <= est["f1_high"]
        assert est["withheld_found"] == pytest.approx(min(row["valid"]["recall"] * 7, lab["unlabelled"]), abs=1e-5)
    assert set(sup.metrics["postprocess"]) == {"threshold", "hungarian", "greedy", "stable", "clusters"}
    assert sup.pr is not None and sup.pr.height > 0
    # output: auto -- the chosen post-processing writes the decision, its estimates are in the metrics
    chosen = sup.metrics["output"]
    assert sup.metrics["output_choice"]["chosen"] == chosen
    assert set(sup.metrics["output_choice"]["train_end_to_end"]) == set(sup.metrics["postprocess"])
    assert sup.pairs.get_column("decision").to_list() == sup.pairs.get_column(f"in_{chosen}").to_list()
    n_truth = len(positives(bench.train) | positives(bench.valid))
    for e in [v["end_to_end"] for v in sup.metrics["postprocess"].values()] + [sup.metrics["unsupervised"]["end_to_end"]]:
        assert e["labelled_positive"] + e["labelled_negative"] + e["unlabelled"] == e["pairs"]
        assert e["labelled_positive"] == pytest.approx(e["recall"] * n_truth)
        hits = e["labelled_positive"] + e["unlabelled"]  # the unlabelled pairs counted as matches, truth grown by them
        assert e["f1_if_unlabelled_true"] == pytest.approx(2 * hits / (e["pairs"] + n_truth + e["unlabelled"]), abs=1e-6)
    unlabelled = make_benchmark(left=bench.left, right=bench.right)
    un = match(unlabelled, cands, config=cfg)
    assert un.metrics["mode"] == "unsupervised" and "scorer" not in un.metrics
    assert "end_to_end_estimate" not in un.metrics["unsupervised"]  # no valid labels, no recall to estimate from
    out = un.pairs.filter(pl.col("decision"))
    truth = positives(bench.train) | positives(bench.valid)
    got = set(zip(out.get_column("l").to_list(), out.get_column("r").to_list(), strict=True))
    assert len(got & truth) / len(got) >= 0.8 and len(got & truth) >= 40
    with pytest.raises(ConfigError, match="supervised"):
        match(unlabelled, cands, config=MatchConfig(mode="supervised"))
    with pytest.raises(ConfigError, match="withheld_positives"):
        match(bench, cands, config=cfg, withheld_positives=-1)


def test_an_attribute_empty_in_both_tables_is_ignored_not_fatal() -> None:
    """Found running an unseen layout: a column with no value anywhere made every feature of it NaN, and
    scikit-learn's binning stops on a column it has seen no value of (``window shape cannot be larger``)."""
    left, right, train, valid = synthetic_tables()
    empty = pl.lit(None, pl.Utf8).alias("notes")
    bench = make_benchmark(left=left.with_columns(empty), right=right.with_columns(empty), train=train, valid=valid)
    assert "notes" in bench.attributes
    X = PairFeaturizer(bench).transform(bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy())
    dead = np.isnan(X).all(axis=0)
    assert dead.any()
    y = bench.train.get_column("label").to_numpy()
    s = PairScorer(ScorerConfig(max_iter=50, folds=3)).fit(X, y)
    alive = PairScorer(ScorerConfig(max_iter=50, folds=3)).fit(X[:, ~dead], y)
    assert s.threshold == alive.threshold and np.allclose(s.predict_proba(X), alive.predict_proba(X[:, ~dead]))
    # a column with a few values only is ignored too: early stopping (> 10,000 rows) bins a random 90 % of them
    sparse = X.copy()
    live = int(np.flatnonzero(~dead)[0])
    sparse[3:, live] = np.nan
    few = PairScorer(ScorerConfig(max_iter=50, folds=3)).fit(sparse, y)
    keep = ~dead
    keep[live] = False
    without = PairScorer(ScorerConfig(max_iter=50, folds=3)).fit(X[:, keep], y)
    assert np.allclose(few.predict_proba(sparse), without.predict_proba(X[:, keep]))
    with pytest.raises(ValueError, match="feature columns"):
        s.predict_proba(X[:, :-1])
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    res = match(bench, cands, config=MatchConfig(scorer=ScorerConfig(max_iter=50, folds=3)))
    assert res.metrics["scorer"]["valid"]["f1"] >= 0.9


def test_output_auto_takes_the_best_train_estimate_and_falls_back_with_few_labels(bench, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import crossmatch.er.pipeline as pipeline

    calls: list[tuple[str, ...]] = []

    def fake(feats, bench, cands, *, methods, **kw):  # type: ignore[no-untyped-def]
        calls.append(methods)
        return {m: {"precision": 0.5, "recall": 0.5, "f1": 0.9 if m == "greedy" else 0.5, "pairs": 1.0} for m in methods}

    monkeypatch.setattr(pipeline, "grouped_end_to_end_by_method", fake)
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    cfg = MatchConfig(scorer=ScorerConfig(max_iter=30, folds=3), postprocess=("threshold", "greedy", "clusters"))
    res = match(bench, cands, config=cfg)
    assert calls == [("threshold", "greedy", "clusters")] and res.metrics["output"] == "greedy"
    assert res.pairs.get_column("decision").to_list() == res.pairs.get_column("in_greedy").to_list()
    fixed = match(bench, cands, config=MatchConfig(scorer=ScorerConfig(max_iter=30, folds=3), output="clusters"))
    assert len(calls) == 1 and fixed.metrics["output"] == "clusters" and "output_choice" not in fixed.metrics
    # fewer than 4 x folds train positives: threshold, nothing estimated; its low threshold lets the pair that
    # valid.csv lists twice through to the one-to-one solvers, which need it once (it used to crash them)
    assert bench.valid.height == bench.valid.select("l", "r").unique().height + 1
    few = make_benchmark(left=bench.left, right=bench.right, train=_pairs_frame(bench, bench.train.head(14)),
                         valid=_pairs_frame(bench, bench.valid))
    small = match(few, cands, config=MatchConfig(scorer=ScorerConfig(max_iter=30, folds=3)))
    assert len(calls) == 1 and small.metrics["output"] == "threshold"
    assert small.metrics["output_choice"]["train_end_to_end"] == {}
    with pytest.raises(ConfigError, match="unknown post-processing"):
        MatchConfig(output="best")
    with pytest.raises(ConfigError, match="unknown post-processing"):
        MatchConfig(postprocess=("auto",))
    with pytest.raises(ConfigError, match="at least one"):
        MatchConfig(postprocess=())
    # a tie goes to the earlier method of the list
    monkeypatch.setattr(pipeline, "grouped_end_to_end_by_method", lambda *a, methods, **k: {
        m: {"precision": 0.5, "recall": 0.5, "f1": 0.7, "pairs": 1.0} for m in methods})
    tie = match(bench, cands, config=MatchConfig(scorer=ScorerConfig(max_iter=30, folds=3),
                                                 postprocess=("clusters", "greedy", "threshold")))
    assert tie.metrics["output"] == "clusters"


def _pairs_frame(bench, frame):  # type: ignore[no-untyped-def]
    ids_l, ids_r = bench.left.get_column("id").to_list(), bench.right.get_column("id").to_list()
    return pl.DataFrame({"ltable_id": [ids_l[i] for i in frame.get_column("l").to_list()],
                         "rtable_id": [ids_r[j] for j in frame.get_column("r").to_list()],
                         "label": frame.get_column("label").to_list()})


@pytest.fixture
def self_training_columns(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Spy on the self-training rule: the number of feature columns of each call."""
    import crossmatch.er.pipeline as pipeline

    seen: list[int] = []
    real = pipeline.self_trained_scores

    def spy(X, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(X.shape[1])
        return real(X, *args, **kwargs)

    monkeypatch.setattr(pipeline, "self_trained_scores", spy)
    return seen


def test_self_training_never_sees_the_neighbourhood_features(bench, self_training_columns) -> None:  # type: ignore[no-untyped-def]
    seen = self_training_columns
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    unlabelled = make_benchmark(left=bench.left, right=bench.right)
    runs = [match(unlabelled, cands, config=MatchConfig(context_k=k)) for k in (0, 5)]
    plain = PairFeaturizer(bench)
    plain.transform(np.array([0]), np.array([0]))
    assert seen == [len(plain.names)] * 2  # with context_k 5 too: the context columns are dropped
    assert runs[0].pairs.get_column("decision").to_list() == runs[1].pairs.get_column("decision").to_list()


def test_self_training_never_sees_the_token_features_with_labels_either(bench, self_training_columns) -> None:  # type: ignore[no-untyped-def]
    seen = self_training_columns
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    runs = [match(bench, cands, config=MatchConfig(context_k=0, token_vocab=(v,), output="threshold", code_prefix=False))
            for v in (0, 10)]
    assert seen[0] == seen[1] and runs[1].metrics["scorer"]["features"] == seen[0] + 10
    u = [run.metrics["unsupervised"] for run in runs]
    assert u[0] == u[1]  # the unsupervised baseline beside a labelled run does not move with token_vocab


def test_self_training_never_sees_the_code_prefix_features_with_labels_either(bench, self_training_columns) -> None:  # type: ignore[no-untyped-def]
    seen = self_training_columns
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    runs = [match(bench, cands, config=MatchConfig(context_k=0, code_prefix=cp, output="threshold")) for cp in (False, True)]
    assert seen[0] == seen[1]
    # two per text attribute (title, brand) and four per record
    assert runs[1].metrics["scorer"]["features"] == seen[0] + 2 * 2 + 4
    assert runs[0].metrics["unsupervised"] == runs[1].metrics["unsupervised"]


def test_prefix_found_is_the_longest_prefix_contained() -> None:
    for code, text in [("dcb309black", "caselogicdcb309slr"), ("abc", "xyz"), ("abc", "zabcz"), ("", "abc"),
                       ("m552pink", "kodakm552digital"), ("aaab", "aaaab")]:
        want = max((k for k in range(len(code) + 1) if code[:k] in text), default=0)
        assert _prefix_found(code, text) == want, (code, text)
    assert _codes("Case Logic dcb-309black slr 12 rc-534-kkn2-gp x1") == ["dcb309black", "rc534kkn2gp"]


def test_code_prefix_features_read_a_codes_stem_and_are_nan_without_a_value() -> None:
    left = pl.DataFrame({"id": ["a0", "a1"], "title": ["case logic dcb-309black backpack", "plain bag"],
                         "modelno": ["dcb-309black", ""]})
    right = pl.DataFrame({"id": ["b0", "b1"], "title": ["case logic dcb-309 slr backpack", "other bag"],
                          "modelno": ["dcb-309", "zz"]})
    b = make_benchmark(left=left, right=right)
    f = PairFeaturizer(b, code_prefix=True)
    X = f.transform(np.array([0, 1, 0]), np.array([0, 1, 1]))
    col = {n: X[:, i] for i, n in enumerate(f.names)}
    assert {"modelno:left_prefix_in_right_compact", "record:code_prefix_left"} <= f.code_names <= set(f.names)
    assert col["modelno:left_prefix_in_right_compact"][0] == pytest.approx(6 / 11)  # "dcb309" of "dcb309black"
    assert col["modelno:right_prefix_in_left_compact"][0] == 1.0
    assert np.isnan(col["modelno:left_prefix_in_right_compact"][1])  # a1 has no model number
    assert col["record:code_prefix_left"][0] == pytest.approx(6 / 11) and col["record:code_prefix_chars_left"][0] == 6
    assert np.isnan(col["record:code_prefix_left"][1])  # "plain bag": no code
    assert col["record:code_prefix_left"][2] == 0.0  # "dcb309black" against "otherbagzz": not even its first letter
    plain = PairFeaturizer(b)
    plain.transform(np.array([0]), np.array([0]))
    assert not plain.code_names and len(plain.names) == len(f.names) - len(f.code_names)


def test_pseudo_labels_take_confident_matches_and_their_runner_ups() -> None:
    from crossmatch.er.unsupervised import pseudo_labels

    l = np.array([0, 0, 1, 1, 2, 2])
    r = np.array([0, 1, 1, 2, 2, 0])
    s = np.array([0.9, 0.5, 0.8, 0.3, 0.2, 0.1])
    pos, neg = pseudo_labels(l, r, s, 0.5, confident_quantile=0.5)
    # matches above 0.5 one-to-one: (0,0) 0.9 and (1,1) 0.8; the confident half is (0,0)
    assert pos.tolist() == [0]
    assert sorted(neg.tolist()) == [1, 5]  # every other pair touching left 0 or right 0
    # the shipped setting (quantile 0): every one-to-one match above the cut is a pseudo-positive
    pos, neg = pseudo_labels(l, r, s, 0.5, confident_quantile=0.0)
    assert pos.tolist() == [0, 2] and sorted(neg.tolist()) == [1, 3, 5]
    empty, none = pseudo_labels(l, r, s, 2.0, confident_quantile=0.5)
    assert len(empty) == 0 and len(none) == 0


def test_self_training_beats_the_raw_similarity_rule(bench) -> None:  # type: ignore[no-untyped-def]
    from crossmatch.er.unsupervised import self_trained_scores

    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    l, r, s = (cands.get_column(c).to_numpy() for c in ("l", "r", "similarity"))
    X = PairFeaturizer(bench).transform(l, r)
    p, th, mix = self_trained_scores(X, l, r, s, scorer=ScorerConfig(max_iter=50, folds=3))
    truth = positives(bench.train) | positives(bench.valid)
    got = {(int(a), int(b)) for a, b in zip(l[p >= th], r[p >= th], strict=True)}
    assert len(got & truth) / max(len(got), 1) >= 0.8 and len(got & truth) >= 60
    with pytest.raises(ValueError, match="rounds"):
        self_trained_scores(X, l, r, s, rounds=0)


def test_self_training_cross_fit_scores_pseudo_labelled_pairs_out_of_fold(bench) -> None:  # type: ignore[no-untyped-def]
    from crossmatch.er.unsupervised import pseudo_labels, self_trained_scores

    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    l, r, s = (cands.get_column(c).to_numpy() for c in ("l", "r", "similarity"))
    X = PairFeaturizer(bench).transform(l, r)
    cfg = ScorerConfig(max_iter=50, folds=3)
    plain, th, _ = self_trained_scores(X, l, r, s, scorer=cfg)
    crossed, th2, _ = self_trained_scores(X, l, r, s, scorer=cfg, cross_fit=True)
    # the same pseudo-labels and scorer: one threshold; the pairs nobody pseudo-labelled keep their scores
    kept = greedy_one_to_one(l, r, s)
    pos, neg = pseudo_labels(l, r, s, mixture_threshold(s[kept]).threshold, confident_quantile=0.0)
    idx = np.r_[pos, neg]
    rest = np.setdiff1d(np.arange(len(l)), idx)
    assert th == th2 and len(rest) and np.array_equal(plain[rest], crossed[rest])
    fitted = PairScorer(cfg).fit(X[idx], np.r_[np.ones(len(pos)), np.zeros(len(neg))])
    assert np.array_equal(crossed[idx], fitted.oof_scores) and not np.array_equal(crossed[idx], plain[idx])


def test_the_pipeline_passes_the_cross_fit_setting_to_self_training(bench, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import crossmatch.er.pipeline as pipeline

    seen: list[bool] = []
    real = pipeline.self_trained_scores

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["cross_fit"])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "self_trained_scores", spy)
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    unlabelled = make_benchmark(left=bench.left, right=bench.right)
    for flag in (True, False):
        match(unlabelled, cands, config=MatchConfig(self_training_cross_fit=flag))
    assert seen == [True, False]


def test_self_training_falls_back_to_the_mixture_rule_without_negatives(bench) -> None:  # type: ignore[no-untyped-def]
    from crossmatch.er.unsupervised import self_trained_scores

    one = block(bench, config=BlockingConfig(k_left=1, k_grid=(1,))).candidates  # no runner-up candidates
    l, r, s = (one.get_column(c).to_numpy() for c in ("l", "r", "similarity"))
    assert self_trained_scores(PairFeaturizer(bench).transform(l, r), l, r, s) is None
    un = match(make_benchmark(left=bench.left, right=bench.right), one, config=MatchConfig())
    assert un.metrics["unsupervised"]["self_training_rounds"] == 0
    assert un.metrics["unsupervised"]["pairs"] == un.metrics["unsupervised_mixture"]["pairs"] > 0


def test_grouped_end_to_end_holds_out_whole_left_records(bench, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The train-only end-to-end estimate: every fold's scorer is fitted without any pair of the left records
    whose candidates it then decides, every candidate is decided once, and valid.csv is never read."""
    from crossmatch.er import selection

    feats = PairFeaturizer(bench)

    class Tagged:  # the left row rides along as the last column, so the spy can see it
        def transform(self, l: np.ndarray, r: np.ndarray) -> np.ndarray:
            return np.column_stack([feats.transform(l, r), l])

    calls: list[dict[str, set[int]]] = []

    class Spy(PairScorer):
        def fit(self, X: np.ndarray, y: np.ndarray) -> PairScorer:
            calls.append({"fit": set(X[:, -1].astype(int).tolist())})
            return super().fit(X[:, :-1], y)

        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            calls[-1]["pred"] = set(X[:, -1].astype(int).tolist())
            return super().predict_proba(X[:, :-1])

    monkeypatch.setattr(selection, "PairScorer", Spy)
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    out = selection.grouped_end_to_end(Tagged(), bench, cands, scorer=ScorerConfig(max_iter=50, folds=3),  # type: ignore[arg-type]
                                       folds=4)
    assert len(calls) == 4
    for c in calls:
        assert c["pred"] and not c["fit"] & c["pred"]
    assert set().union(*(c["pred"] for c in calls)) == set(cands.get_column("l").to_list())
    train_pos = bench.train.filter(pl.col("label") == 1).get_column("l").unique().to_list()
    assert out["f1"] >= 0.9 and out["pairs"] >= 0.9 * len(train_pos)
    monkeypatch.undo()
    flipped = make_benchmark(left=bench.left, right=bench.right, train=_pairs_frame(bench, bench.train),
                             valid=_pairs_frame(bench, bench.valid.with_columns(1 - pl.col("label"))))
    kw = {"scorer": ScorerConfig(max_iter=50, folds=3), "folds": 4}
    both = [selection.grouped_end_to_end_by_method(feats, b, cands, methods=("threshold", "greedy"), **kw)  # type: ignore[arg-type]
            for b in (bench, flipped)]
    assert both[0] == both[1]
    # features the caller already has give the same estimate (the pipeline passes its own)
    tl, tr = bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy()
    cl, cr = cands.get_column("l").to_numpy(), cands.get_column("r").to_numpy()
    given = selection.grouped_end_to_end_by_method(feats, bench, cands, methods=("threshold", "greedy"),  # type: ignore[arg-type]
                                                   train_features=feats.transform(tl, tr),
                                                   cand_features=feats.transform(cl, cr), **kw)
    assert given == both[0]
    with pytest.raises(ValueError, match="one row per"):
        selection.grouped_end_to_end_by_method(feats, bench, cands, methods=("threshold",),
                                               cand_features=feats.transform(cl[:3], cr[:3]))
    # one-to-one output never has more pairs than the thresholded one
    assert both[0]["greedy"]["pairs"] <= both[0]["threshold"]["pairs"]
    with pytest.raises(ValueError, match="folds"):
        selection.grouped_end_to_end(feats, bench, cands, folds=1)


def test_report_names_the_token_vocabulary_chosen_on_train() -> None:
    from crossmatch.er.report import benchmark_table

    block = {"k": 5, "k_chosen_on": "train", "candidate_pairs": 10, "reduction": 0.9, "recall_train": 1.0,
             "recall_valid": 1.0}
    v = {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    grid = {"scorer": {"threshold": 0.4, "valid": v, "token_vocab": {"chosen": 64, "oof_f1_train": {
        "0": 0.71, "128": 0.74, "64": 0.75}}}}  # as the metrics JSON sorts them
    assert "64 token features, chosen by train OOF F1 0: 0.7100, 64: 0.7500, 128: 0.7400" in benchmark_table("x", block, grid)
    assert "Blocking: k = 5 (chosen on train), 10 candidate pairs" in benchmark_table("x", block, grid)
    tried = {**block, "view": "name", "views_tried": {"all": {"k": 60, "recall_train": 0.7, "pairs": 9},
                                                      "name": {"k": 5, "recall_train": 0.995, "pairs": 10}}}
    assert ("k = 5 (chosen on train; view name, views tried on train: all recall 0.7000 at k 60, name recall 0.9950 "
            "at k 5), 10 candidate pairs") in benchmark_table("x", tried, grid)
    grid["scorer"]["token_vocab"].update(seeds=3, min_gain=0.005)  # type: ignore[index, attr-defined]
    assert "chosen by train OOF F1 (mean of 3 fold splits; a larger size must gain ≥ 0.005) 0: 0.7100" \
        in benchmark_table("x", block, grid)
    grid["scorer"]["token_vocab"].update(seeds=1)  # type: ignore[index, attr-defined]
    assert "chosen by train OOF F1 (a larger size must gain ≥ 0.005) 0: 0.7100" in benchmark_table("x", block, grid)
    one = {"scorer": {"threshold": 0.4, "valid": v, "token_vocab": {"chosen": 0, "oof_f1_train": {"0": 0.71}}}}
    assert "token features" not in benchmark_table("x", block, one)  # a fixed size: nothing was chosen
    assert "hard negatives" not in benchmark_table("x", block, one)
    one["scorer"]["hard_negatives"] = {"per_record": 2, "pairs": 1075}
    assert "trained with 1,075 hard negatives (2 per record with a train positive)" in benchmark_table("x", block, one)
    # the end-to-end column: against the labels, then with every unlabelled output pair counted as a match
    one["postprocess"] = {"greedy": {"pairs": 9, "solvers": {"greedy": 4}, "valid": v,
                                     "end_to_end": {"f1": 0.4321, "f1_if_unlabelled_true": 0.9876}}}
    one["unsupervised"] = {"pairs": 7, "valid": v, "self_training_rounds": 1, "end_to_end": {"f1": 0.25}}
    table = benchmark_table("x", block, one)
    assert "| 9 | 0.432 / 0.988 |" in table and "| 7 | 0.250 |" in table  # an older metrics file: one figure


def test_token_vocab_from_params_and_bad_calls() -> None:
    from crossmatch.er.token_vocab import choose_token_vocab
    from stages._er import ERParams

    assert ERParams(match={"token_vocab": 64}).match_config().token_vocab == (64,)
    assert ERParams(match={"token_vocab": [0, 64]}).match_config().token_vocab == (0, 64)
    left, right, train, valid = synthetic_tables()
    b = make_benchmark(left=left, right=right, train=train, valid=valid)
    f = PairFeaturizer(b, token_vocab=5)
    with pytest.raises(ValueError, match="feats.transform"):
        choose_token_vocab(np.zeros((4, 3)), np.zeros(4), f, (0,), ScorerConfig())  # names not filled yet
    X = f.transform(np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="exceed"):
        choose_token_vocab(X, np.array([0, 1]), f, (0, 10), ScorerConfig())


def test_attribute_names_and_column_order_do_not_matter() -> None:
    """An unseen benchmark names and orders its attributes its own way: the features follow the names, not the
    positions (tableB's columns in another order, every attribute renamed)."""
    left, right, train, valid = synthetic_tables()
    names = {"title": "Beer_Name", "brand": "Brew_Factory_Name", "price": "ABV"}
    a = make_benchmark(left=left, right=right, train=train, valid=valid)
    b = make_benchmark(left=left.rename(names), right=right.rename(names).select("id", "ABV", "Beer_Name",
                                                                                  "Brew_Factory_Name"),
                       train=train, valid=valid)
    assert b.attributes == ("Beer_Name", "Brew_Factory_Name", "ABV")
    l, r = a.train.get_column("l").to_numpy(), a.train.get_column("r").to_numpy()
    Xa, Xb = PairFeaturizer(a).transform(l, r), PairFeaturizer(b).transform(l, r)
    assert np.array_equal(np.isnan(Xa), np.isnan(Xb)) and np.allclose(np.nan_to_num(Xa), np.nan_to_num(Xb))


def test_auto_mode_runs_unsupervised_when_train_has_too_few_positives(bench) -> None:  # type: ignore[no-untyped-def]
    """A user with a handful of labelled pairs gets a matching, not a refusal; labels then only evaluate."""
    tr = bench.train
    few = pl.concat([tr.filter(pl.col("label") == 1).head(3), tr.filter(pl.col("label") == 0)])
    pairs = pl.DataFrame({"ltable_id": bench.left.get_column("id").gather(few.get_column("l")),
                          "rtable_id": bench.right.get_column("id").gather(few.get_column("r")),
                          "label": few.get_column("label")})
    small = make_benchmark(left=bench.left, right=bench.right, train=pairs)
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    cfg = MatchConfig(scorer=ScorerConfig(max_iter=50, folds=5))
    res = match(small, cands, config=cfg)
    assert res.metrics["mode"] == "unsupervised" and "3 positive" in res.metrics["mode_reason"]
    assert res.metrics["unsupervised"]["train"]["recall"] > 0 and res.pairs.get_column("decision").sum() > 0
    with pytest.raises(ConfigError, match="positives"):
        match(small, cands, config=MatchConfig(mode="supervised", scorer=ScorerConfig(max_iter=50, folds=5)))
    enough = match(bench, cands, config=cfg)
    assert enough.metrics["mode"] == "supervised" and "mode_reason" not in enough.metrics


def test_hard_negatives_are_each_positive_records_nearest_other_candidates() -> None:
    from crossmatch.er.selection import hard_negatives

    cands = pl.DataFrame({"l": [0, 0, 0, 0, 1, 1, 2, 2], "r": [5, 6, 7, 8, 5, 6, 7, 9],
                          "similarity": [0.9, 0.8, 0.8, 0.1, 0.7, 0.6, 0.9, 0.8]})
    train = pl.DataFrame({"l": [0, 0, 1], "r": [5, 8, 6], "label": [1, 0, 0]})
    hl, hr = hard_negatives(cands, train, 2)
    # left 0 has a positive: its two most similar candidates that are not train pairs (ties by right row);
    # left 1 has only a negative in train and left 2 none: nothing is drawn for them
    assert list(zip(hl.tolist(), hr.tolist(), strict=True)) == [(0, 6), (0, 7)]
    assert list(zip(*hard_negatives(cands, train, 5), strict=True)) == [(0, 6), (0, 7)]  # (0, 8) is a train pair
    assert len(hard_negatives(cands, train, 0)[0]) == 0
    with pytest.raises(ValueError, match="per_record"):
        hard_negatives(cands, train, -1)


def test_hard_negatives_join_the_scorer_and_stay_in_their_records_fold(bench, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The pipeline trains on them (and says how many); the train-only output estimate fits each fold's scorer
    on the hard negatives of the other folds' records only, never on those of the records it then decides."""
    from crossmatch.er import selection, token_vocab
    from crossmatch.er.selection import hard_negatives

    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    hl, hr = hard_negatives(cands, bench.train, 2)
    rows: list[int] = []

    class Counting(PairScorer):
        def fit(self, X: np.ndarray, y: np.ndarray) -> PairScorer:
            rows.append(X.shape[0])
            return super().fit(X, y)

    monkeypatch.setattr(token_vocab, "PairScorer", Counting)
    cfg = MatchConfig(context_k=0, scorer=ScorerConfig(max_iter=50, folds=3))
    runs = [match(bench, cands, config=replace(cfg, hard_negatives=n, output=o))
            for n, o in ((0, "threshold"), (2, "threshold"), (2, "auto"))]
    assert rows == [bench.train.height, bench.train.height + len(hl), bench.train.height + len(hl)] and len(hl) > 0
    monkeypatch.undo()
    assert runs[0].metrics["scorer"]["hard_negatives"] == {"per_record": 0, "pairs": 0}
    assert runs[1].metrics["scorer"]["hard_negatives"] == {"per_record": 2, "pairs": len(hl)}
    assert runs[1].metrics["scorer"]["valid"]["f1"] >= 0.9 and runs[2].metrics["output_choice"]["train_end_to_end"]
    for bad in (-1, True, 1.5):
        with pytest.raises(ConfigError, match="hard_negatives"):
            MatchConfig(hard_negatives=bad)  # type: ignore[arg-type]

    feats = PairFeaturizer(bench)
    fits: list[tuple[set[int], set[int]]] = []  # per fold: left rows of its labelled pairs, of its hard negatives

    class Spy(PairScorer):
        def fit(self, X: np.ndarray, y: np.ndarray) -> PairScorer:
            tag = X[:, -1].astype(int)  # >= 0: a train pair's left row; < 0: -(left row + 1) of a hard negative
            fits.append((set(tag[tag >= 0].tolist()), set((-tag[tag < 0] - 1).tolist())))
            return super().fit(X[:, :-1], y)

        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            fits[-1] = (*fits[-1], set(X[:, -1].astype(int).tolist()))  # type: ignore[assignment]
            return super().predict_proba(X[:, :-1])

    class Tagged:
        def transform(self, l: np.ndarray, r: np.ndarray) -> np.ndarray:
            return np.column_stack([feats.transform(l, r), l])

    Xh = np.column_stack([feats.transform(hl, hr), -(hl + 1)])
    monkeypatch.setattr(selection, "PairScorer", Spy)
    selection.grouped_end_to_end_by_method(Tagged(), bench, cands, methods=("threshold",),  # type: ignore[arg-type]
                                           scorer=ScorerConfig(max_iter=50, folds=3), folds=4, hard=(Xh, hl))
    assert len(fits) == 4
    for fit_rows, hard_rows, decided in fits:  # type: ignore[misc]
        assert decided and not (fit_rows | hard_rows) & decided  # nothing of a record it then decides
        assert hard_rows == set(hl.tolist()) - decided  # every other record's hard negatives are in
    with pytest.raises(ValueError, match="hard negatives"):
        selection.grouped_end_to_end_by_method(feats, bench, cands, methods=("threshold",), hard=(np.zeros((2, 3)), hl))


def test_held_out_pair_f1_draws_hard_negatives_without_the_held_out_pairs(bench, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The pair-level check of hard negatives: each fold draws them knowing only its fitting pairs, so a held-out
    true partner may be drawn (as a valid.csv partner may in the pipeline), and trains on exactly those candidate
    rows' features; every train pair is held out once."""
    from crossmatch.er import selection

    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    feats = PairFeaturizer(bench)
    X = np.column_stack([feats.transform(bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy()),
                         np.full(bench.train.height, -1)])
    Xc = np.column_stack([feats.transform(cands.get_column("l").to_numpy(), cands.get_column("r").to_numpy()),
                          np.arange(cands.height)])  # the candidate row rides along
    drawn: list[np.ndarray] = []
    used: list[np.ndarray] = []
    real = selection.hard_negative_rows

    def spy(c: pl.DataFrame, train: pl.DataFrame, n: int) -> np.ndarray:
        drawn.append(real(c, train, n))
        assert train.height < bench.train.height  # drawn knowing the fitting pairs only
        return drawn[-1]

    class Spy(PairScorer):
        def fit(self, X: np.ndarray, y: np.ndarray) -> PairScorer:
            used.append(np.sort(X[X[:, -1] >= 0, -1].astype(int)))
            return super().fit(X[:, :-1], y)

        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            return super().predict_proba(X[:, :-1])

    monkeypatch.setattr(selection, "hard_negative_rows", spy)
    monkeypatch.setattr(selection, "PairScorer", Spy)
    cfg = ScorerConfig(max_iter=50, folds=3)
    f1 = selection.held_out_pair_f1(X, bench.train, cands, Xc, per_record=2, scorer=cfg, folds=4)
    assert len(drawn) == len(used) == 4 and all(len(d) for d in drawn)
    assert all(np.array_equal(np.sort(d), u) for d, u in zip(drawn, used, strict=True))
    assert f1 >= 0.8
    assert selection.held_out_pair_f1(X, bench.train, cands, Xc, per_record=0, scorer=cfg, folds=4) >= 0.8


def test_fuzzy_features_read_a_values_first_fuzzy_max_chars_characters() -> None:
    """A description column must not cost hours (partial ratio ~ length³): the rapidfuzz features read the first
    ``fuzzy_max_chars`` characters of a value, the TF-IDF and containment features the whole value."""
    from rapidfuzz import fuzz

    from stages._er import ERParams

    head, tail = "acme camera x1000 kit", " zz" * 100  # the shared model code sits past the cut on the right
    left = pl.DataFrame({"id": ["a0", "a1"], "title": [head, "globex router"], "desc": ["q7" + tail, "plain"]})
    right = pl.DataFrame({"id": ["b0", "b1"], "title": [head, "hooli phone"], "desc": [tail + " q7", "other"]})
    b = make_benchmark(left=left, right=right)
    l, r = np.array([0, 1]), np.array([0, 1])
    cut, full = PairFeaturizer(b, fuzzy_max_chars=32), PairFeaturizer(b, fuzzy_max_chars=10_000)
    Xc, Xf = cut.transform(l, r), full.transform(l, r)
    col = {n: i for i, n in enumerate(cut.names)}
    a0, b0 = b.left["desc"][0], b.right["desc"][0]  # as read: normalised
    assert len(a0) > 200 and Xc[0, col["desc:partial"]] == pytest.approx(fuzz.partial_ratio(a0[:32], b0[:32]))
    assert Xf[0, col["desc:partial"]] == pytest.approx(fuzz.partial_ratio(a0, b0))
    assert Xc[0, col["desc:ratio"]] != Xf[0, col["desc:ratio"]]
    assert Xc[1, col["desc:ratio"]] == Xf[1, col["desc:ratio"]]  # short values are read whole either way
    fuzzy = {n for n in cut.names if n.split(":")[-1] in ("ratio", "token_set", "token_sort", "partial",
                                                           "jaro_winkler")}
    rest = [i for n, i in col.items() if n not in fuzzy]
    assert np.allclose(np.nan_to_num(Xc[:, rest]), np.nan_to_num(Xf[:, rest]))  # TF-IDF, containment: whole value
    with pytest.raises(ValueError, match="fuzzy_max_chars"):
        PairFeaturizer(b, fuzzy_max_chars=0)
    assert ERParams(match={"fuzzy_max_chars": 64}).match_config().fuzzy_max_chars == 64
    for bad in (0, True, 1.5):
        with pytest.raises(ConfigError, match="fuzzy_max_chars"):
            ERParams(match={"fuzzy_max_chars": bad}).match_config()


def test_blocking_views_auto_falls_back_to_one_attribute_when_the_record_text_misses_on_train() -> None:
    """A long description of unrelated words drowns the title in the whole-record TF-IDF: ``views: auto`` tries
    each text attribute alone and keeps the one that reaches the target on train; where the record view reaches
    it, nothing else is tried."""
    left, right, train, valid = synthetic_tables()
    rng = np.random.default_rng(5)
    vocab = [f"w{i}" for i in range(300)]

    def noise(t: pl.DataFrame) -> pl.DataFrame:
        return t.with_columns(pl.Series("description", [" ".join(rng.choice(vocab, 60)) for _ in range(t.height)]))

    noisy = make_benchmark(left=noise(left), right=noise(right), train=train, valid=valid)
    cfg = BlockingConfig(k_grid=(1, 2), k_left=2, target_recall=0.95, proposer="left")  # views: per proposer
    plain = block(noisy, config=cfg)
    assert plain.metrics["view"] == "all" and plain.metrics["recall_train"] < 0.95 and "views_tried" not in plain.metrics
    auto = block(noisy, config=replace(cfg, views="auto"))
    assert auto.metrics["view"] == "title" and auto.metrics["recall_train"] >= 0.95
    tried = auto.metrics["views_tried"]
    assert set(tried) == {"all", "title", "brand", "description"}  # price is numeric: never a view
    assert tried["title"]["recall_train"] == auto.metrics["recall_train"]
    assert tried["all"]["recall_train"] == plain.metrics["recall_train"]
    clean = make_benchmark(left=left, right=right, train=train, valid=valid)
    same = block(clean, config=replace(cfg, views="auto"))
    assert same.metrics["view"] == "all" and "views_tried" not in same.metrics
    assert same.candidates.equals(block(clean, config=cfg).candidates)
    with pytest.raises(ConfigError, match="views"):
        BlockingConfig(views="title")


def test_a_view_equal_to_the_record_is_not_searched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """One text attribute (Company's shape) is the record's text: when the record misses the target, ``views:
    auto`` lists that attribute with the record's figures instead of running the same neighbour search twice."""
    import crossmatch.er.candidates as candidates_module

    left, right, train, valid = synthetic_tables()
    # a labelled match no search finds at k = 1 (a record and a distractor): the target is missed
    far = pl.DataFrame({"ltable_id": ["a0"], "rtable_id": [right["id"][-1]], "label": [1]}).cast(train.schema)
    train = pl.concat([train, far])
    one = make_benchmark(left=left.select("id", "title"), right=right.select("id", "title"), train=train, valid=valid)
    cfg = BlockingConfig(k_grid=(1,), k_left=1, target_recall=1.0, proposer="left", views="auto")
    calls: list[object] = []
    real = candidates_module.searched_candidates

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("attributes"))
        return real(*args, **kwargs)

    monkeypatch.setattr(candidates_module, "searched_candidates", counting)
    res = block(one, config=cfg)
    assert calls == [None]  # the record view only
    assert res.metrics["views_tried"] == {"all": res.metrics["views_tried"]["all"], "title": res.metrics["views_tried"]["all"]}
    assert res.metrics["view"] == "all"
    two = make_benchmark(left=left.select("id", "title", "brand"), right=right.select("id", "title", "brand"),
                         train=train, valid=valid)
    calls.clear()
    block(two, config=cfg)
    assert calls == [None, ("title",), ("brand",)]  # a view that differs from the record is still searched


def test_candidate_features_in_chunks_equal_one_pass_and_report_progress(bench) -> None:  # type: ignore[no-untyped-def]
    from crossmatch.er.pipeline import _transform_with_eta

    f = PairFeaturizer(bench, context_k=5, context_attributes=True, token_vocab=10)
    l, r = np.repeat(np.arange(20), 3), np.tile(np.arange(3), 20)
    said: list[str] = []
    X = _transform_with_eta(f, l, r, said.append, chunk=16)
    assert np.array_equal(np.nan_to_num(X, nan=-9), np.nan_to_num(f.transform(l, r), nan=-9))
    assert len(said) == 4 and said[-1].startswith("features of 60 candidate pairs: 60 done")
    assert "s left" in said[0]


def test_block_records_the_neighbour_search_it_ran() -> None:
    """``search: auto`` is exact on a small table and pruned once the exact search's work passes the bound; the
    metrics and the report say which ran (no silent switch), and on these tables both find the same candidates."""
    from crossmatch.er.report import benchmark_table

    left, right, train, valid = synthetic_tables()
    bench = make_benchmark(left=left, right=right, train=train, valid=valid)
    cfg = BlockingConfig(k_grid=(1, 2), k_left=2, target_recall=0.95)
    small = block(bench, config=cfg)
    big = block(bench, config=replace(cfg, exact_max_work=0))  # every search is "too large": pruned
    assert small.metrics["search"] == "exact" and big.metrics["search"] == "pruned"
    assert big.metrics["recall_train"] >= 0.95
    assert big.candidates.height > 0
    assert big.candidates.select("l", "r").equals(small.candidates.select("l", "r"))
    assert "; pruned neighbour search), " in benchmark_table("x", big.metrics, {"scorer": {}})


def test_neighbour_values_searched_once_per_distinct_text_equal_a_search_over_every_row() -> None:
    """features._top_values: a brand or category repeats in thousands of records, so the neighbourhood search runs
    on distinct texts and counts each as often as it occurs (at most k) — the same values as a row-by-row search."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from crossmatch.er.features import _top_values

    rng = np.random.default_rng(3)
    words = ["sony", "sonny", "samsung", "lg", "apple inc", "apple", "", "hp"]
    xt, yt = list(rng.choice(words, 40)), list(rng.choice(words[:-1], 55))  # "hp" never on the right
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(xt + yt)
    X, Y = vec.transform(xt).tocsr().astype(np.float32), vec.transform(yt).tocsr().astype(np.float32)
    S = (X @ Y.T).toarray().astype(np.float64)
    for k in (1, 3, 20, 60):  # 60 > the 55 rows of Y: the tail stays -1
        got = _top_values(X, Y, xt, yt, k)
        want = -np.sort(-S, axis=1)[:, :k]
        want = np.pad(want, ((0, 0), (0, k - want.shape[1])), constant_values=-1.0)
        assert got.shape == (40, k)
        assert np.allclose(got, want, atol=1e-6)


def test_clusters_output_file_holds_the_closure_pairs_its_metrics_judge() -> None:
    """A cluster joined through two candidates adds the pair between its ends that blocking never proposed; the
    metrics always counted it, and ``pairs`` (so ``pairs.parquet``, ``matches.csv``) must hold it too: decision,
    ``in_clusters`` and ``output_pairs`` describe the same pair set as ``postprocess.clusters``."""
    left, right, train, valid = synthetic_tables()
    partner = train.filter((pl.col("ltable_id") == "a0") & (pl.col("label") == 1)).get_column("rtable_id").item()
    left = pl.concat([left, left.filter(pl.col("id") == "a0").with_columns(pl.lit("a0dup").alias("id"))])
    right = pl.concat([right, right.filter(pl.col("id") == partner).with_columns(pl.lit("bdup").alias("id"))])
    b = make_benchmark(left=left, right=right, train=train, valid=valid)
    ids_l, ids_r = b.left.get_column("id").to_list(), b.right.get_column("id").to_list()
    a0, a0dup, bp, bdup = ids_l.index("a0"), ids_l.index("a0dup"), ids_r.index(partner), ids_r.index("bdup")
    cands = block(b, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    need = pl.DataFrame({"l": [a0, a0dup, a0dup], "r": [bp, bp, bdup]}, schema={"l": cands.schema["l"],
                                                                                 "r": cands.schema["r"]})
    cands = (pl.concat([cands, need.join(cands, on=["l", "r"], how="anti").with_columns(
        *[pl.lit(v, dtype=cands.schema[c]).alias(c) for c, v in (("similarity", 1.0), ("rank_left", 1),
                                                                   ("rank_right", 1))]).select(cands.columns)])
             .filter(~((pl.col("l") == a0) & (pl.col("r") == bdup))).sort("l", "r"))
    cfg = MatchConfig(scorer=ScorerConfig(max_iter=30, folds=3), postprocess=("threshold", "clusters"), output="clusters")
    res = match(b, cands, config=cfg)
    clusters = res.metrics["postprocess"]["clusters"]
    rows = res.pairs.filter(pl.col("decision"))
    assert res.metrics["output"] == "clusters"
    assert (a0, bdup) in set(zip(rows.get_column("l").to_list(), rows.get_column("r").to_list(), strict=True))
    assert res.metrics["output_pairs"] == rows.height == clusters["pairs"] == int(res.pairs.get_column("in_clusters").sum())
    # (the toy's own duplicates close a few more clusters the same way)
    assert res.pairs.height > res.metrics["pool_pairs"] and res.pairs.select("l", "r").is_unique().all()
    assert res.pairs.select("l", "r").equals(res.pairs.select("l", "r").sort("l", "r"))
    closure = res.pairs.filter((pl.col("l") == a0) & (pl.col("r") == bdup))
    assert closure.get_column("probability").item() > 0.5 and not closure.get_column("in_threshold").item()


def test_tables_too_small_for_the_mixture_are_an_input_error_without_labels_and_no_crash_with_them() -> None:
    """The unsupervised rule's two-component mixture needs >= 4 one-to-one candidate pairs. Without labels that is
    the user's input (a clear InputError, the stage's exit 2); with labels the rule is only a baseline: skipped,
    said, and the scorer's output stands (it used to end in a ValueError traceback either way)."""
    base = ["acme camera x100 series", "globex laptop y200 plus", "hooli phone z300 edition"]
    left = pl.DataFrame({"id": ["a0", "a1", "a2"], "title": base})
    right_titles, rows = [], []
    for i, t in enumerate(base):
        for v in (" black", " new", " pro", " kit"):
            rows.append((f"a{i}", f"b{len(right_titles)}", 1))
            right_titles.append(t + v)
    right_titles += [f"wonka tablet q{j}" for j in range(8)]
    right = pl.DataFrame({"id": [f"b{j}" for j in range(len(right_titles))], "title": right_titles})
    bare = make_benchmark(left=left, right=right)
    with pytest.raises(InputError, match="3 one-to-one candidate pair.*label some pairs"):
        match(bare, block(bare, config=BlockingConfig()).candidates, config=MatchConfig())
    neg = [(f"a{i}", f"b{12 + j}", 0) for i in range(3) for j in range(2)]
    train = pl.DataFrame(rows + neg, schema=["ltable_id", "rtable_id", "label"], orient="row")
    b = make_benchmark(left=left, right=right, train=train)
    cands = block(b, config=BlockingConfig(k_grid=(5,), k_left=5)).candidates
    res = match(b, cands, config=MatchConfig(scorer=ScorerConfig(max_iter=30, folds=3), context_k=0))
    assert res.metrics["mode"] == "supervised" and "3 one-to-one" in res.metrics["unsupervised_skipped"]
    assert res.metrics["output_pairs"] == int(res.pairs.get_column("decision").sum()) > 0


def test_train_labels_without_a_positive_do_not_make_table_a_propose() -> None:
    """Negatives only: every train recall is undefined, so nothing can choose between the tables; the smaller
    one proposes as without labels, whichever the user called A (tableA used to win every NaN comparison)."""
    left, right, train, _ = synthetic_tables(40)
    neg = train.filter(pl.col("label") == 0)
    flipped = neg.select(pl.col("rtable_id").alias("ltable_id"), pl.col("ltable_id").alias("rtable_id"), "label")
    as_given = block(make_benchmark(left=left, right=right, train=neg), config=BlockingConfig(k_left=5)).metrics
    swapped = block(make_benchmark(left=right, right=left, train=flipped), config=BlockingConfig(k_left=5)).metrics
    unlabelled = block(make_benchmark(left=left, right=right), config=BlockingConfig(k_left=5)).metrics
    assert as_given["proposer"] == "left" and swapped["proposer"] == "right"  # the 40-row table both times
    assert as_given["candidate_pairs"] == swapped["candidate_pairs"] == unlabelled["candidate_pairs"]
    assert "proposers_tried" not in as_given and as_given["recall_train"] is None


def test_a_split_without_positives_is_pooled_but_not_scored(bench) -> None:  # type: ignore[no-untyped-def]
    """Recall and F1 of a split with no labelled positive are undefined: no 0.0 made up for them, and the
    precision-recall curve stays valid's when such a test split is present."""
    test = _pairs_frame(bench, bench.valid.filter(pl.col("label") == 0))
    b = make_benchmark(left=bench.left, right=bench.right, train=_pairs_frame(bench, bench.train),
                       valid=_pairs_frame(bench, bench.valid), test=test)
    cands = block(b, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    res = match(b, cands, config=MatchConfig(scorer=ScorerConfig(max_iter=30, folds=3), postprocess=("threshold",)))
    assert set(res.metrics["unscored_splits"]) == {"test"}
    assert "test" not in res.metrics["scorer"] and res.metrics["scorer"]["pr_split"] == "valid"
    assert "test" not in res.metrics["postprocess"]["threshold"] and "valid" in res.metrics["postprocess"]["threshold"]


def test_an_output_outside_postprocess_is_evaluated_and_written_like_the_others(bench) -> None:  # type: ignore[no-untyped-def]
    cands = block(bench, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    res = match(bench, cands, config=MatchConfig(scorer=ScorerConfig(max_iter=30, folds=3), postprocess=("threshold",),
                                                  output="clusters"))
    assert set(res.metrics["postprocess"]) == {"threshold", "clusters"}
    assert res.pairs.get_column("decision").to_list() == res.pairs.get_column("in_clusters").to_list()
    assert res.metrics["output_pairs"] == res.metrics["postprocess"]["clusters"]["pairs"]


def test_no_end_to_end_estimate_when_the_test_split_is_present(bench) -> None:  # type: ignore[no-untyped-def]
    """``withheld_positives`` is the published count of a test split this folder lacks; with a test.csv its
    positives are in the truth already, and adding them again counted them twice (a perfect output read 0.8)."""
    b = make_benchmark(left=bench.left, right=bench.right, train=_pairs_frame(bench, bench.train),
                       valid=_pairs_frame(bench, bench.valid), test=_pairs_frame(bench, bench.valid.head(20)))
    cands = block(b, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates
    res = match(b, cands, config=MatchConfig(scorer=ScorerConfig(max_iter=30, folds=3), postprocess=("threshold",)),
                withheld_positives=10)
    assert "end_to_end_estimate" not in res.metrics["postprocess"]["threshold"]
    no_test = make_benchmark(left=bench.left, right=bench.right, train=_pairs_frame(bench, bench.train),
                             valid=_pairs_frame(bench, bench.valid))
    res = match(no_test, block(no_test, config=BlockingConfig(k_left=3, k_grid=(3,))).candidates,
                config=MatchConfig(scorer=ScorerConfig(max_iter=30, folds=3), postprocess=("threshold",)),
                withheld_positives=10)
    assert "end_to_end_estimate" in res.metrics["postprocess"]["threshold"]
