"""Category similarity from item nearest neighbours (``neighbours`` kind, crossmatch.bipoly.neighbours).

Checked against a brute-force dense reading of the definition (every item's k nearest items of the other
source by title TF-IDF cosine, each category's share of that mass per category of the other side, both
directions averaged, min–max rescaled), on items listed in two categories, and through the whole tuning
protocol (`run_blocking`, `best_of`).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from crossmatch.bipoly.blocking import run_blocking
from crossmatch.bipoly.config import BlockingParams
from crossmatch.bipoly.neighbours import neighbour_similarity
from crossmatch.bipoly.similarity import normalise_title
from crossmatch.errors import ConfigError, InputError

SMALL = {"left": "a", "right": "b", "partition_by": None, "runner": "thread", "workers": 1, "top_k": 2,
         "grid": {"omega": [-1.0, 1.0, 1.0], "eta": [-1.0, 1.0, 1.0]},
         "ilp": {"methods": []}, "scenario": {"enabled": False}, "methods": ["bipoly_s", "bipoly_c", "bipartite"]}


def _catalogue(rng: np.random.Generator, prefix: str, n_items: int, n_cats: int) -> pl.DataFrame:
    letters = list("abcdefghij")
    rows = []
    for i in range(n_items):
        title = " ".join("".join(rng.choice(letters, size=5)) for _ in range(3))
        cats = {int(rng.integers(n_cats))} | ({int(rng.integers(n_cats))} if i % 4 == 0 else set())  # some in two
        rows += [{"item_id": f"{prefix}{i}", "fine_category": f"{prefix}c{c}", "title": title} for c in sorted(cats)]
    return pl.DataFrame(rows)


def _brute_force(left: pl.DataFrame, right: pl.DataFrame, lnames: list[str], rnames: list[str],
                 k: int) -> np.ndarray:
    def distinct(df: pl.DataFrame) -> tuple[list[str], list[str]]:
        d = df.unique(subset=["item_id"], keep="first", maintain_order=True).sort("item_id")
        return d.get_column("item_id").to_list(), [normalise_title(t) for t in d.get_column("title").to_list()]

    il, tl = distinct(left)
    ir, tr = distinct(right)
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit(tl + tr)
    cos = (vec.transform(tl) @ vec.transform(tr).T).toarray()
    from_left = np.zeros_like(cos)
    for i in range(cos.shape[0]):
        top = np.argsort(-cos[i], kind="stable")[:k]
        from_left[i, top] = cos[i, top]
    from_right = np.zeros_like(cos)
    for j in range(cos.shape[1]):
        top = np.argsort(-cos[:, j], kind="stable")[:k]
        from_right[top, j] = cos[top, j]

    def member(df: pl.DataFrame, names: list[str], ids: list[str]) -> np.ndarray:
        m = np.zeros((len(names), len(ids)))
        for c, i in df.select("fine_category", "item_id").unique().iter_rows():
            m[names.index(c), ids.index(i)] = 1.0
        return m

    ml, mr = member(left, lnames, il), member(right, rnames, ir)
    share_l = (ml @ from_left @ mr.T) / ml.sum(axis=1, keepdims=True)
    share_r = (ml @ from_right @ mr.T) / mr.sum(axis=1, keepdims=True).T
    raw = 0.5 * (share_l + share_r)
    lo = 0.0 if (raw > 0).sum() < raw.size else raw[raw > 0].min()
    return np.where(raw > 0, (raw - lo) / (raw.max() - lo), 0.0)


@pytest.mark.parametrize("k", [1, 3])
def test_neighbour_similarity_matches_a_brute_force_reading(k: int) -> None:
    rng = np.random.default_rng(3)
    left, right = _catalogue(rng, "l", 30, 5), _catalogue(rng, "r", 40, 6)
    lnames = sorted(set(left.get_column("fine_category").to_list()))
    rnames = sorted(set(right.get_column("fine_category").to_list()))
    res = neighbour_similarity(left, right, left_names=lnames, right_names=rnames, k=k, top_k=None)
    inst = res.instance
    got = np.zeros((len(lnames), len(rnames)))
    got[inst.left, inst.right] = inst.weight
    np.testing.assert_allclose(got, _brute_force(left, right, lnames, rnames, k), atol=1e-6)
    # top-k cut: exactly the pairs among the 2 best of their left or of their right category (no ties here)
    cut = neighbour_similarity(left, right, left_names=lnames, right_names=rnames, k=k, top_k=2).instance
    want = {(i, j) for i in range(len(lnames)) for j in range(len(rnames)) if got[i, j] > 0 and
            (got[i, j] >= np.sort(got[i])[-2] or got[i, j] >= np.sort(got[:, j])[-2])}
    assert set(zip(cut.left.tolist(), cut.right.tolist(), strict=True)) == want


def test_ties_are_broken_the_same_way_whatever_the_row_order() -> None:
    # two right items with the same title in different categories: a tie for every left item's nearest one
    left = pl.DataFrame({"item_id": ["l1", "l2"], "fine_category": ["a", "a"], "title": ["usb c cable 2m", "usb c cable 1m"]})
    right = pl.DataFrame({"item_id": ["r2", "r1", "r3"], "fine_category": ["q", "p", "q"],
                          "title": ["usb c cable", "usb c cable", "hdmi adapter"]})
    runs = [neighbour_similarity(left, r, left_names=["a"], right_names=["p", "q"], k=1, top_k=None).instance
            for r in (right, right.reverse(), right.sort("fine_category"))]
    pairs = [dict(zip(zip(i.left.tolist(), i.right.tolist(), strict=True), i.weight.tolist(), strict=True)) for i in runs]
    assert pairs[0] == pairs[1] == pairs[2]
    # left items go to r1 (category p, the lower id) and the right items' mass splits evenly: p gets more
    assert pairs[0][(0, 0)] > pairs[0].get((0, 1), 0.0)


def test_bad_input_is_refused_clearly() -> None:
    items = pl.DataFrame({"item_id": ["a"], "fine_category": ["c"], "title": ["usb cable"]})
    with pytest.raises(ConfigError, match="neighbours_k"):
        neighbour_similarity(items, items, left_names=["c"], right_names=["c"], k=0)
    with pytest.raises(InputError, match=r"needs column\(s\) \['title'\]"):
        neighbour_similarity(items.drop("title"), items, left_names=["c"], right_names=["c"])
    blank = items.with_columns(pl.lit("").alias("title"))
    with pytest.raises(InputError, match="character n-gram"):
        neighbour_similarity(blank, blank, left_names=["c"], right_names=["c"])
    with pytest.raises(InputError, match="without an item id"):
        neighbour_similarity(items.with_columns(pl.lit(None, dtype=pl.String).alias("item_id")), items,
                             left_names=["c"], right_names=["c"])
    with pytest.raises(InputError, match="no items"):
        neighbour_similarity(items.clear(), items, left_names=["c"], right_names=["c"])
    with pytest.raises(ConfigError, match="neighbours_k"):
        BlockingParams(**{**SMALL, "neighbours_k": 0})


def test_the_blocking_tunes_and_reports_the_neighbours_kind() -> None:
    rng = np.random.default_rng(5)
    words = ["".join(rng.choice(list("klmnopqrst"), size=6)) for _ in range(40)]
    rows_a, rows_b, truth = [], [], []
    for c in range(5):
        for i in range(4):
            title = f"{words[8 * c + i]} {words[8 * c + i + 4]}"
            rows_a.append({"item_id": f"a{c}_{i}", "fine_category": f"acat{c}", "title": title})
            rows_b.append({"item_id": f"b{c}_{i}", "fine_category": f"bcat{c}", "title": f"{title} extra"})
            truth.append((f"a{c}_{i}", f"b{c}_{i}"))
    pairs = pl.DataFrame({"item_a": [a for a, _ in truth], "item_b": [b for _, b in truth]})
    params = BlockingParams(**{**SMALL, "similarity": "best", "best_of": ["tfidf", "neighbours"], "neighbours_k": 1})
    res = run_blocking(params, left_items=pl.DataFrame(rows_a), right_items=pl.DataFrame(rows_b), truth_pairs=pairs)
    by = res.metrics["by_similarity"]
    assert set(by) == {"tfidf", "neighbours"}
    assert by["neighbours"]["bipoly_c"]["coverage"] == 1.0  # every planted category pair is a block
    alone = run_blocking(BlockingParams(**{**SMALL, "similarity": "neighbours", "neighbours_k": 1}),
                         left_items=pl.DataFrame(rows_a), right_items=pl.DataFrame(rows_b), truth_pairs=pairs)
    assert alone.metrics["methods"]["bipoly_c"]["similarity"] == "neighbours"
    blocks = set(zip(alone.blocks.get_column("left").to_list(), alone.blocks.get_column("right").to_list(), strict=True))
    assert blocks == {(f"acat{c}", f"bcat{c}") for c in range(5)}  # and nothing else: each category its twin
    assert "seconds" in res.metrics["similarity"]["neighbours"]
