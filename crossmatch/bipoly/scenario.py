"""The item-to-category (entity-matching) scenario (paper Sec. VI-A; ALGORITHMS.md §1.9, §1.10).

Built from one source's two-level taxonomy (coarse root ``category`` → ``fine_category``):

1. every root category goes, with its fine categories, to partition A or B by a fair coin;
2. every item is *moved* with probability ``p``: it becomes an entity of the opposite partition,
   represented by its title only, and leaves its category's bag of words;
3. ``L`` = categories of A (roots with recursive documents, and fine categories) ∪ items moved into
   A; ``R`` likewise for B;
4. truth: every moved item ↔ its original fine category.

A predicted pair is correct iff one end is a moved item and the other its original fine category;
category–category and item–item pairs are wrong. ``precision = correct / |ρ|``,
``recall = correct / moved``.

Ambiguity 1.10-D: items are moved at most once (each has one fine category here); the seed is a
parameter and recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from crossmatch.bipoly.grid import run_greedy
from crossmatch.bipoly.instance import Rewards, Side
from crossmatch.bipoly.matching import Matching
from crossmatch.bipoly.metrics import PairScores, harmonic
from crossmatch.bipoly.similarity import Documents, normalise_title, similarity
from crossmatch.errors import ConfigError, InputError

# paper Sec. VI-B / ALGORITHMS.md §1.10.7: fixed parameters of the entity scenario
SCENARIO_REWARDS: dict[str, Rewards] = {
    "bipartite": Rewards.tied(0.4, 0.0), "uflp": Rewards(0.0, 0.0, -0.9, -0.9),
    "poly": Rewards(0.7, 0.7, 0.9, 0.9), "bipoly_s": Rewards.tied(0.6, 0.9), "bipoly_c": Rewards.tied(0.6, 0.9),
}


@dataclass(frozen=True)
class EntityScenario:
    left: Documents
    right: Documents
    truth: set[tuple[int, int]]  # (left index, right index) of every moved item ↔ original category
    n_moved: int


def entity_scenario(
    items: pl.DataFrame, *, p: float, seed: int, root_col: str = "category", fine_col: str = "fine_category",
    title_col: str = "title",
) -> EntityScenario:
    """Build the scenario from one source's items (see the module docstring)."""
    if not 0 < p < 1:
        raise ConfigError(f"scenario.p must lie in (0, 1), got {p}")
    missing = [c for c in (root_col, fine_col, title_col) if c not in items.columns]
    if missing:
        raise InputError(f"entity scenario: missing column(s) {missing}; found {items.columns}")
    if items.height == 0:
        raise InputError("entity scenario: the category table is empty")
    rng = np.random.default_rng(seed)
    frame = items.select(root_col, fine_col, title_col).sort(fine_col, title_col)
    roots = sorted(frame.get_column(root_col).unique().to_list())
    side_of_root = dict(zip(roots, (rng.random(len(roots)) < 0.5).tolist(), strict=True))  # True → B
    moved = rng.random(frame.height) < p
    titles = [normalise_title(t or "") for t in frame.get_column(title_col).to_list()]
    fine = frame.get_column(fine_col).to_list()
    root = frame.get_column(root_col).to_list()
    names: dict[bool, list[str]] = {False: [], True: []}
    bags: dict[bool, list[list[str]]] = {False: [], True: []}
    pos: dict[str, tuple[bool, int]] = {}
    for r in roots:
        s = side_of_root[r]
        pos[r] = (s, len(names[s]))
        names[s].append(r)
        bags[s].append([])
    for f, r in sorted(set(zip(fine, root, strict=True))):
        s = side_of_root[r]
        pos[f] = (s, len(names[s]))
        names[s].append(f)
        bags[s].append([])
    truth_items: list[tuple[bool, int, int]] = []
    for i in range(frame.height):
        s_cat, fi = pos[fine[i]]
        if moved[i]:
            s = not s_cat
            names[s].append(f"{fine[i]} : {{{titles[i]}}}")
            bags[s].append([titles[i]])
            truth_items.append((s, len(names[s]) - 1, fi))
        else:
            bags[s_cat][fi].append(titles[i])
            bags[s_cat][pos[root[i]][1]].append(titles[i])  # recursive root document
    docs = {s: tuple(" ".join(b) for b in bags[s]) for s in (False, True)}
    sizes = {s: np.array([len(b) for b in bags[s]], dtype=np.int64) for s in (False, True)}
    if not names[False] or not names[True]:
        raise InputError("entity scenario: every root category fell on one side; use a source with more roots")
    left = Documents(tuple(names[False]), docs[False], sizes[False])
    right = Documents(tuple(names[True]), docs[True], sizes[True])
    # orient truth as (left index, right index)
    truth = {(it, cat) if s is False else (cat, it) for s, it, cat in truth_items}
    return EntityScenario(left, right, truth, len(truth_items))


def entity_scores(m: Matching, scenario: EntityScenario) -> PairScores:
    """Precision, recall, F1 of a matching in the entity scenario (§1.9 "Entity-matching scenario")."""
    pairs = m.pairs()
    hit = len(pairs & scenario.truth)
    precision = hit / len(pairs) if pairs else 0.0
    recall = hit / scenario.n_moved if scenario.n_moved else 0.0
    return PairScores(precision, recall, harmonic(precision, recall), len(pairs), scenario.n_moved, hit)


def scenario_scores(items: pl.DataFrame, *, p: float, seed: int, top_k: int | None, host_side: Side = "left") -> dict[str, Any]:
    """The scenario on one source's items, every greedy method at the paper's fixed rewards
    (:data:`SCENARIO_REWARDS`, Sec. VI-B) on TF-IDF similarity: precision, recall, F1 and pairs per method."""
    sc = entity_scenario(items, p=p, seed=seed)
    inst = similarity(sc.left, sc.right, "tfidf", top_k=top_k).instance
    out: dict[str, Any] = {"p": p, "seed": seed, "n_moved": sc.n_moved, "n_left": inst.n_left, "n_right": inst.n_right}
    for mt, rw in SCENARIO_REWARDS.items():
        m = run_greedy(mt, inst, rw, host_side)
        if m is not None:
            s = entity_scores(m, sc)
            out[mt] = {"precision": s.precision, "recall": s.recall, "f1": s.f1, "n_pairs": s.n_predicted}
    return out
