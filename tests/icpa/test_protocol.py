"""Issue 10 protocol: the split, the rankers, the scorer evaluation, hybrids and the paired bootstrap."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from crossmatch.errors import ConfigError
from crossmatch.graph import split_train_valid_test
from crossmatch.icpa.comparison import (
    Evaluator,
    paired_verdicts,
    seed_summary,
    tune_hybrid,
    tune_rankers,
)
from crossmatch.icpa.evaluate import (
    evaluate_scorer,
    hybrid_scorer,
    make_split,
    matrix_scorer,
    paired_bootstrap,
    topk,
    transfer_verdict,
)
from crossmatch.icpa.methods import Schedule, single_config
from crossmatch.icpa.rankers import ease_matrix, itemknn_matrix, ranker_matrix


def _logs(lengths: dict[int, int]) -> pl.DataFrame:
    rows = [(u, i, t) for u, n in lengths.items() for t, i in enumerate(range(n))]
    return pl.DataFrame({"user_idx": [r[0] for r in rows], "item_idx": [r[1] for r in rows],
                         "timestamp": [r[2] for r in rows], "weight": [1.0] * len(rows)})


def test_split_is_time_ordered_with_a_minimum_per_user():
    logs = _logs({0: 5, 1: 20, 2: 2, 3: 1})
    train, valid, test = split_train_valid_test(logs, 0.1, 0.1, min_per_user=1)
    per = {name: f.group_by("user_idx").len().sort("user_idx") for name, f in
           (("train", train), ("valid", valid), ("test", test))}
    counts = {name: dict(zip(f["user_idx"].to_list(), f["len"].to_list(), strict=True)) for name, f in per.items()}
    assert counts["test"] == {0: 1, 1: 2, 2: 1}  # 5-core user: at least one; 20 events: floor(2.0)
    assert counts["valid"] == {0: 1, 1: 2}  # user 2 keeps its only remaining event for training
    assert counts["train"] == {0: 3, 1: 16, 2: 1, 3: 1}
    for u in (0, 1):  # train < valid < test in time for every user
        t = [f.filter(pl.col("user_idx") == u)["timestamp"] for f in (train, valid, test)]
        assert t[0].max() < t[1].min() and t[1].max() < t[2].min()
    assert train.height + valid.height + test.height == logs.height


def test_split_without_minimum_matches_the_plain_holdout():
    logs = _logs({0: 5, 1: 20})
    train, valid, test = split_train_valid_test(logs, 0.2, 0.0)
    assert valid.height == 0 and test.height == 1 + 4


def _toy() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    # items 0-1 always together, 2-3 always together, item 4 popular but unrelated
    rows = []
    for u in range(30):
        pair = (0, 1) if u % 2 else (2, 3)
        rows += [(u, pair[0]), (u, pair[1]), (u, 4)]
    H = sp.csr_matrix((np.ones(len(rows)), ([r[0] for r in rows], [r[1] for r in rows])), shape=(30, 5))
    C = sp.csr_matrix(np.array([[0, 5, 0, 0, 1], [5, 0, 0, 0, 1], [0, 0, 0, 5, 1], [0, 0, 5, 0, 1],
                                [1, 1, 1, 1, 0]], dtype=float))
    return H, C


@pytest.mark.parametrize("kind", ["cooccurrence", "itemknn", "ease"])
def test_rankers_recommend_the_partner_item(kind):
    H, C = _toy()
    S = ranker_matrix(kind, H=H, C=C, ease_lambda=1.0, knn_k=3)
    hist = pl.DataFrame({"user_idx": [0, 1], "item_idx": [0, 2], "weight": [1.0, 1.0]})
    rel = pl.DataFrame({"user_idx": [0, 1], "item_idx": [1, 3]})
    split = make_split([hist], rel, 2, 5)
    top = topk(matrix_scorer(S), split, 1)
    assert top[:, 0].tolist() == [1, 3]


def test_ease_matches_the_closed_form():
    rng = np.random.default_rng(0)
    X = (rng.random((40, 6)) < 0.4).astype(float)
    B = ease_matrix(sp.csr_matrix(X), 3.0)
    # EASE minimises ||X - XB||² + λ||B||² with diag(B) = 0: its KKT stationarity on off-diagonals.
    G = X.T @ X
    grad = -G + G @ B + 3.0 * B
    off = ~np.eye(6, dtype=bool)
    assert np.allclose(grad[off], 0.0, atol=1e-4) and np.allclose(np.diag(B), 0.0)
    with pytest.raises(ConfigError):
        ease_matrix(sp.csr_matrix(X), 0.0)


def test_itemknn_keeps_k_neighbours_per_item():
    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((50, 20)) < 0.3).astype(float))
    S = itemknn_matrix(X, 4)
    assert np.diff(S.indptr).max() <= 4 and S.diagonal().sum() == 0
    full = (X.T @ X).toarray() / np.outer(np.sqrt(X.sum(0)), np.sqrt(X.sum(0)))
    np.fill_diagonal(full, 0)
    for i in range(20):  # the kept neighbours are the most similar ones
        kept = S[i].toarray().ravel()
        assert np.isclose(np.sort(kept)[-1], full[i].max())


def test_test_split_uses_validation_events_as_history():
    H, _ = _toy()
    train = pl.DataFrame({"user_idx": [0], "item_idx": [0], "weight": [1.0]})
    valid = pl.DataFrame({"user_idx": [0], "item_idx": [1], "weight": [1.0]})
    test = pl.DataFrame({"user_idx": [0, 0], "item_idx": [1, 2]})
    s = make_split([train, valid], test, 1, 5)
    assert s.items.tolist() == [2]  # item 1 is history at test time: not retrievable, excluded
    assert s.history[0].nonzero()[1].tolist() == [0, 1]


def test_evaluate_scorer_per_user_arrays_and_hybrid_extremes():
    H, C = _toy()
    hist = pl.DataFrame({"user_idx": [0, 1, 2], "item_idx": [0, 2, 4], "weight": [1.0] * 3})
    rel = pl.DataFrame({"user_idx": [0, 1, 2], "item_idx": [1, 3, 0]})
    split = make_split([hist], rel, 3, 5)
    co = matrix_scorer(ranker_matrix("cooccurrence", H=H, C=C))
    res = evaluate_scorer(co, split, [1, 3])
    per = res["per_user"]["1"]["ndcg"]  # type: ignore[index]
    assert per.shape == (3,) and np.isclose(per.mean(), res["1"]["ndcg"])  # type: ignore[index]
    anti = matrix_scorer(-ranker_matrix("cooccurrence", H=H, C=C).toarray())
    same = evaluate_scorer(hybrid_scorer(anti, co, 0.0), split, [1])
    assert same["1"]["ndcg"] == res["1"]["ndcg"]  # type: ignore[index]
    flipped = evaluate_scorer(hybrid_scorer(anti, co, 1.0), split, [1])
    assert flipped["1"]["ndcg"] < res["1"]["ndcg"]  # type: ignore[index]


def test_tuning_selects_on_validation_only():
    H, C = _toy()
    hist = pl.DataFrame({"user_idx": [0, 1], "item_idx": [0, 2], "weight": [1.0, 1.0]})
    valid = pl.DataFrame({"user_idx": [0, 1], "item_idx": [1, 3]})
    # the test targets are the *unrelated* item: a selection on test would pick another setting
    test = pl.DataFrame({"user_idx": [0, 1], "item_idx": [4, 4]})
    splits = {"valid": make_split([hist], valid, 2, 5), "test": make_split([hist, valid], test, 2, 5)}
    ev = Evaluator(splits, [1, 10])
    out = tune_rankers(ev, train=H, cooccurrence=C, ease_lambdas=[1.0, 1000.0], knn_ks=[1, 3])
    assert out["cooccurrence"]["result"]["valid"]["1"]["ndcg"] == 1.0
    anti = matrix_scorer(-C.toarray())
    hyb = tune_hybrid(ev, anti, out["cooccurrence"]["scorer"], [0.1, 0.9])
    assert hyb["weight"] == 0.1 and set(hyb["tried"]) == {"0.1", "0.9"}
    # tuning looks at validation only: the test split is scored once, for the chosen setting
    seen: list[str] = []

    class Counting(Evaluator):
        def _one(self, scorer, split):  # type: ignore[no-untyped-def]
            seen.append(split)
            return super()._one(scorer, split)

    tune_rankers(Counting(splits, [1, 10]), train=H, cooccurrence=C, ease_lambdas=[1.0, 1000.0], knn_ks=[1, 3])
    assert seen.count("test") == 4 and seen.count("valid") == 6 + 4  # 6 settings tried, 4 chosen re-scored


def test_paired_bootstrap_and_verdicts():
    rng = np.random.default_rng(0)
    a = rng.random((3, 400))
    assert transfer_verdict(paired_bootstrap(a, a + 0.05)) == "negative"
    assert transfer_verdict(paired_bootstrap(a + 0.05, a)) == "positive"
    noisy = paired_bootstrap(a, a + rng.normal(0, 0.3, a.shape))
    assert noisy["lo"] < 0 < noisy["hi"] and transfer_verdict(noisy) == "no significant difference"
    out = paired_verdicts({"x": a, "ranker": a[:1] - 0.1}, [("x", "ranker")])
    assert out["x_vs_ranker"]["verdict"] == "positive"  # a one-run ranker is broadcast over seeds
    with pytest.raises(ValueError, match="different users"):
        paired_verdicts({"x": a, "y": a[:, :10]}, [("x", "y")])


def test_seed_summary_mean_and_std():
    runs = [{"valid": {"10": {"ndcg": v, "f": v / 2}}, "test": {"10": {"ndcg": v + 0.1, "f": v}}, "steps": 10}
            for v in (0.2, 0.4)]
    s = seed_summary(runs)
    assert np.isclose(s["ndcg@10"], 0.4) and np.isclose(s["ndcg@10_std"], 0.1)
    assert np.isclose(s["valid_ndcg@10"], 0.3) and s["steps"] == 10


def test_soo_gets_the_joint_step_budget():
    sched = Schedule(phase1_epochs=3, phase2_epochs=2)
    cfg = single_config("soo", 0, sched, budget_steps=50, epoch_steps=7)
    assert cfg.max_steps == 50 and cfg.epochs == 8
    assert single_config("soo", 0, sched).max_steps is None
    with pytest.raises(ConfigError):
        single_config("soo", 0, sched, budget_steps=50, epoch_steps=0)


def test_sampled_protocol_perfect_constant_and_negatives():
    from crossmatch.icpa.sampled import sample_negatives, sampled_ranking

    n = 200
    hist = pl.DataFrame({"user_idx": [0, 1], "item_idx": [0, 1], "weight": [1.0, 1.0]})
    rel = pl.DataFrame({"user_idx": [0, 1], "item_idx": [5, 6]})
    split = make_split([hist], rel, 2, n)
    known = make_split([hist, rel], rel.head(0), 2, n).history
    neg = sample_negatives(known, split.users, 99, 0)
    assert neg.shape == (2, 99) and not np.isin(neg[0], [0, 5]).any() and len(set(neg[0])) == 99
    assert np.array_equal(neg, sample_negatives(known, split.users, 99, 0))  # seeded

    def perfect(Hu):
        out = np.zeros((Hu.shape[0], n))
        out[np.arange(Hu.shape[0]), [5, 6][: Hu.shape[0]]] = 1.0
        return out

    res = sampled_ranking(perfect, split, known)
    assert res["ndcg@10"] == 1.0 and res["hr@10"] == 1.0
    const = sampled_ranking(lambda Hu: np.zeros((Hu.shape[0], n)), split, known)
    assert const["hr@10"] == 0.0  # ties count against the positive
    with pytest.raises(ConfigError, match="unseen items"):
        sample_negatives(known, split.users, n, 0)
