"""Category blocking tuned on labels, every method side by side (paper Sec. V-A to V-E; ALGORITHMS.md §1.3
"Parameter search", §1.4-1.8).

The protocol, in order:

1. category documents of both sources and one similarity instance per similarity kind (``best``: all three),
   restricted to pairs inside one ``partition_by`` value when that is set;
2. every greedy method over the ω/η grid (:mod:`.grid`), scored on the *tuning* labels; each method keeps its
   best (kind, rewards);
3. k-core at the reduction of the best BiPoly; each ILP family at its greedy counterpart's best rewards
   (or tuned on its own coarse grid) and at max-weight, solved per partition on the executor;
4. every matching scored on the *reporting* labels (:mod:`.protocol`), with the references: every category
   pair holding a true pair (ceiling) and the max-weight BiPoly ILP on the true-pair counts (oracle).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from crossmatch.bipoly.baselines import bipartite_rewards, kcore_at_reduction
from crossmatch.bipoly.config import BlockingParams
from crossmatch.bipoly.grid import (
    GREEDY_METHODS,
    GridRow,
    best_rows,
    grid_points,
    grid_search,
    merge,
    run_greedy,
    solve_partitioned_many,
    split_by_groups,
    value_range,
)
from crossmatch.bipoly.ilp import IlpConfig, solve_ilp
from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.matching import Matching
from crossmatch.bipoly.metrics import BlockingTruth, blocking_truth, pair_scores
from crossmatch.bipoly.protocol import LabelSplit, split_labels
from crossmatch.bipoly.similarity import (
    KINDS,
    Documents,
    SimilarityKind,
    category_documents,
    similarity,
    truth_similarity,
)
from crossmatch.errors import InputError

# the greedy method whose tuned rewards an ILP family reuses
ILP_TUNED_BY: dict[str, tuple[str, ...]] = {"bipoly": ("bipoly_s", "bipoly_c"), "poly": ("poly",),
                                            "bipartite": ("bipartite",), "uflp": ("uflp",)}


@dataclass(frozen=True)
class CategoryBlocking:
    """Outcome of :func:`tune_categories`: every method's matching of category indices, and its figures."""

    matchings: dict[str, Matching]
    docs: tuple[Documents, Documents]
    labels: LabelSplit
    best: dict[str, tuple[SimilarityKind, GridRow]]  # each greedy method's tuned (similarity kind, grid row)
    grid: list[tuple[SimilarityKind, GridRow]]  # every grid row, for the heat-map
    metrics: dict[str, Any]


def rewards_dict(r: Rewards) -> dict[str, float]:
    """ω/η as the four metrics keys ``omega_l, omega_r, eta_l, eta_r``."""
    return dict(zip(("omega_l", "omega_r", "eta_l", "eta_r"), r.as_tuple(), strict=True))


def uflp_rewards(rw: Rewards, host_side: Side) -> Rewards:
    """UFLP is robust Poly with ω = 0 and η_host = −f, f ≥ 0 (ALGORITHMS.md §1.3 table)."""
    f = max(0.0, -rw.eta(host_side))
    return Rewards(0.0, 0.0, -f, -f)


def partition_labels(items: pl.DataFrame, names: Sequence[str], column: str) -> list[str]:
    """The ``column`` value of each category (its most common value among the category's items)."""
    if column not in items.columns:
        raise InputError(f"partition_by column '{column}' is not in the items table; found {items.columns}")
    mode = (items.group_by("fine_category", column).len().sort(["fine_category", "len", column], descending=[False, True, False])
            .unique("fine_category", keep="first"))
    lookup = dict(zip(mode.get_column("fine_category").to_list(), mode.get_column(column).cast(pl.String).to_list(), strict=True))
    return [lookup[n] for n in names]


def method_summary(m: Matching, truth: BlockingTruth, extra: dict[str, Any] | None = None,
                   tune: BlockingTruth | None = None) -> dict[str, Any]:
    """Scores on the reporting labels ``truth``; with ``tune``, the tuning labels' figures under ``"tune"``."""
    s = truth.score_matching(m)
    out: dict[str, Any] = {
        "coverage": s.coverage, "reduction": s.reduction, "tradeoff": s.tradeoff, "n_pairs": m.n_pairs,
        "n_comparisons": s.n_comparisons, "objective": None if not np.isfinite(m.objective) else m.objective,
        "seconds": round(m.seconds, 4), "status": m.status,
    }
    if np.isfinite(m.gap):
        out["gap"] = m.gap
    out.update(extra or {})
    if tune is not None:
        t = tune.score_matching(m)
        out["tune"] = {"coverage": t.coverage, "reduction": t.reduction, "tradeoff": t.tradeoff}
    return out


def category_truth_scores(matchings: dict[str, Matching], dl: Documents, dr: Documents, cat_truth: pl.DataFrame,
                          left: str, right: str) -> dict[str, Any]:
    """Precision/recall of matched category pairs against the planted correspondence (``source_a``, ``fine_a``,
    ``source_b``, ``fine_b``), ALGORITHMS.md §1.9."""
    pos_l = {n: i for i, n in enumerate(dl.names)}
    pos_r = {n: i for i, n in enumerate(dr.names)}
    fwd = cat_truth.filter((pl.col("source_a") == left) & (pl.col("source_b") == right))
    bwd = cat_truth.filter((pl.col("source_a") == right) & (pl.col("source_b") == left))
    true = {(pos_l[a], pos_r[b]) for a, b in zip(fwd["fine_a"], fwd["fine_b"], strict=True) if a in pos_l and b in pos_r}
    true |= {(pos_l[b], pos_r[a]) for a, b in zip(bwd["fine_a"], bwd["fine_b"], strict=True) if b in pos_l and a in pos_r}
    if not true:
        raise InputError(f"the category truth has no pair between '{left}' and '{right}'")
    return {name: pair_scores(m.pairs(), true).as_dict() for name, m in matchings.items()}


def _solve_ilp_part(sub: Instance, rewards: Rewards, cfg: IlpConfig, method: str) -> Matching:
    return solve_ilp(sub, rewards, cfg, method=method)


def _solve_settings(inst: Instance, groups: tuple[np.ndarray, np.ndarray] | None, settings: list[Rewards], cfg: IlpConfig,
                    name: str, executor: Executor | None) -> list[Matching]:
    """One ILP per reward setting, each split into partitions when ``groups`` is given (merged back)."""
    parts = split_by_groups(inst, *groups) if groups is not None else [(np.arange(inst.n_left), np.arange(inst.n_right), inst)]
    solvers = [partial(_solve_ilp_part, rewards=rw, cfg=cfg, method=name) for rw in settings]
    per = solve_partitioned_many(parts, solvers, executor=executor)
    return [merge(p, name) if groups is not None else p[0] for p in per]


def _ilps(params: BlockingParams, best: dict[str, tuple[SimilarityKind, GridRow]], instances: dict[SimilarityKind, Instance],
          groups: tuple[np.ndarray, np.ndarray] | None, truth: BlockingTruth,
          executor: Executor | None) -> list[tuple[str, Matching, dict[str, Any]]]:
    """Each ILP family at the tuned setting of its greedy counterpart (or tuned on its own coarse grid), and max-weight."""
    out = []
    for fam in params.ilp.methods:
        tuned = [mt for mt in ILP_TUNED_BY[fam] if mt in best]
        if not tuned:
            continue
        src = max(tuned, key=lambda mt: best[mt][1].tradeoff)
        kind = best[src][0]
        inst = instances[kind]
        cfg = IlpConfig(family=fam, host_side=params.host_side, time_limit=params.ilp.time_limit,
                        mip_gap=params.ilp.mip_gap, seed=params.seed, warm_start=params.ilp.warm_start,
                        node_limit=params.ilp.node_limit)
        if params.ilp.grid is not None:
            axis = value_range(params.ilp.grid)
            cands = [uflp_rewards(rw, params.host_side) if fam == "uflp" else rw for rw in grid_points(axis, axis)]
            cands = list(dict.fromkeys(cands))
            solved = _solve_settings(inst, groups, cands, cfg, f"ilp_{fam}", executor)
            scored = [(truth.score_matching(m).tradeoff, i) for i, m in enumerate(solved)]
            i_best = max(scored, key=lambda t: (t[0], -t[1]))[1]
            m, rw = solved[i_best], cands[i_best]
            src = f"ilp grid {params.ilp.grid}"
        else:
            rw = best[src][1].rewards
            if fam == "uflp":
                rw = uflp_rewards(rw, params.host_side)
            elif fam == "bipartite":
                # the rewards under which eq. 3 is what greedy Bipartite (τ = ω_L) optimises (issue 12, 9a)
                rw = bipartite_rewards(rw)
            m = _solve_settings(inst, groups, [rw], cfg, f"ilp_{fam}", executor)[0]
        settings = [(f"ilp_{fam}", rw, m)]
        if params.ilp.max_weight:
            settings.append((f"ilp_{fam}_maxweight", Rewards(),
                             _solve_settings(inst, groups, [Rewards()], cfg, f"ilp_{fam}_maxweight", executor)[0]))
        for name, rw_, m_ in settings:
            out.append((name, m_, {"similarity": kind, **rewards_dict(rw_), "proven_optimal": m_.status == "Optimal",
                                   "time_limit": params.ilp.time_limit, "tuned_from": src}))
    return out


def tune_categories(
    params: BlockingParams, *, left_items: pl.DataFrame, right_items: pl.DataFrame, truth_pairs: pl.DataFrame,
    left_categories: list[str] | None = None, right_categories: list[str] | None = None,
    category_truth: pl.DataFrame | None = None, executor: Executor | None = None,
) -> CategoryBlocking:
    """Steps 1-4 of the module docstring (pure: nothing is written).

    ``truth_pairs`` are the true product pairs oriented (``item_a`` left, ``item_b`` right[, ``split``]); the
    tuning labels choose every setting, the reporting labels (held out when ``tune_splits`` /
    ``report_splits`` are set, else the same labels) give the top-level figures.
    """
    t_start = time.perf_counter()
    dl = category_documents(left_items, categories=left_categories, source=params.left)
    dr = category_documents(right_items, categories=right_categories, source=params.right)
    labels = split_labels(truth_pairs, params.tune_splits, params.report_splits)
    truth = blocking_truth(left_items, right_items, dl.names, dr.names, labels.tune)
    report = blocking_truth(left_items, right_items, dl.names, dr.names, labels.report) if labels.held_out else truth
    groups = None
    if params.partition_by:
        gl = partition_labels(left_items, dl.names, params.partition_by)
        gr = partition_labels(right_items, dr.names, params.partition_by)
        codes = {g: i for i, g in enumerate(sorted(set(gl) | set(gr)))}
        groups = (np.array([codes[g] for g in gl]), np.array([codes[g] for g in gr]))
    kinds: list[SimilarityKind] = list(KINDS) if params.similarity == "best" else [params.similarity]
    instances: dict[SimilarityKind, Instance] = {}
    sim_info: dict[str, Any] = {}
    for kind in kinds:
        res = similarity(dl, dr, kind, top_k=params.top_k, rescale=params.rescale)
        inst = res.instance
        if groups is not None:
            inst = inst.restrict(groups[0][inst.left] == groups[1][inst.right])
        instances[kind] = inst
        sim_info[kind] = {"n_nonzero": res.n_nonzero, "n_candidates": inst.n_pairs, "raw_max": res.raw_max}
    t_sim = time.perf_counter() - t_start

    # ω/η grid over the greedy methods, for every similarity kind
    points = grid_points(value_range(params.grid.omega), value_range(params.grid.eta), tie_sides=params.grid.tie_sides)
    greedy = [m for m in params.methods if m in GREEDY_METHODS]
    t0 = time.perf_counter()
    rows: list[tuple[SimilarityKind, GridRow]] = []
    for kind, inst in instances.items():
        rows += [(kind, r) for r in grid_search(greedy, inst, truth, points, host_side=params.host_side, executor=executor)]
    t_grid = time.perf_counter() - t0
    best: dict[str, tuple[SimilarityKind, GridRow]] = {}
    for kind in kinds:
        for mt, r in best_rows([r for k, r in rows if k == kind]).items():
            if mt not in best or r.tradeoff > best[mt][1].tradeoff:
                best[mt] = (kind, r)

    matchings: dict[str, Matching] = {}
    extras: dict[str, dict[str, Any]] = {}
    for mt in greedy:
        if mt not in best:
            continue
        kind, r = best[mt]
        m = run_greedy(mt, instances[kind], r.rewards, params.host_side)
        assert m is not None
        matchings[mt] = m
        extras[mt] = {"similarity": kind, **rewards_dict(r.rewards)}
    bipoly_best = max((mt for mt in ("bipoly_s", "bipoly_c") if mt in matchings),
                      key=lambda mt: best[mt][1].tradeoff, default=None)
    if "kcore" in params.methods:
        kind = best[bipoly_best][0] if bipoly_best else kinds[0]
        target = truth.score_matching(matchings[bipoly_best]).reduction if bipoly_best else 0.9
        m = kcore_at_reduction(instances[kind], target, lambda mm: truth.score_matching(mm).reduction, k=params.kcore_k)
        matchings["kcore"] = m
        extras["kcore"] = {"similarity": kind, "tau": m.info["tau"], "k": params.kcore_k, "target_reduction": target}
    for name, m, extra in _ilps(params, best, instances, groups, truth, executor):
        matchings[name], extras[name] = m, extra

    tune_fig = truth if labels.held_out else None
    methods = {name: method_summary(m, report, extras.get(name), tune_fig) for name, m in matchings.items()}
    metrics: dict[str, Any] = {
        "left": params.left, "right": params.right, "n_left_categories": len(dl.names),
        "n_right_categories": len(dr.names), "n_left_items": truth.total_l, "n_right_items": truth.total_r,
        "n_true_pairs": report.n_true, "protocol": labels.describe(), "similarity": sim_info, "grid_points": len(points),
        "seconds": {"similarity": round(t_sim, 3), "grid": round(t_grid, 3)},
        "methods": methods, "references": _references(params, truth, report, labels, dl, dr), "selected": params.select,
    }
    if category_truth is not None:
        metrics["category_truth"] = category_truth_scores(matchings, dl, dr, category_truth, params.left, params.right)
    return CategoryBlocking(matchings, (dl, dr), labels, best, rows, metrics)


def _references(params: BlockingParams, truth: BlockingTruth, report: BlockingTruth, labels: LabelSplit, dl: Documents,
                dr: Documents) -> dict[str, Any]:
    """Every category pair holding a true pair (ceiling), and the max-weight BiPoly oracle."""
    counts = report.counts().tocoo()
    ceiling = report.score(counts.row, counts.col)
    oracle = solve_ilp(truth_similarity(report.counts(), dl, dr), Rewards(),
                       IlpConfig(time_limit=params.ilp.time_limit, mip_gap=params.ilp.mip_gap, seed=params.seed,
                                 node_limit=params.ilp.node_limit))
    references = {"ceiling_all_true_category_pairs": ceiling.as_dict(),
                  "oracle_bipoly_maxweight": method_summary(oracle, report)}
    if labels.held_out:
        # reusing the category pairs of the tuning positives, scored on the held-out ones
        seen = truth.counts().tocoo()
        references["tune_category_pairs"] = report.score(seen.row, seen.col).as_dict()
    return references
