"""Category blocking tuned on labels, every method side by side (paper Sec. V-A to V-E; ALGORITHMS.md §1.3
"Parameter search", §1.4-1.8).

The protocol, in order:

1. category documents of both sources and one similarity instance per similarity kind (``best``: all three),
   restricted to pairs inside one ``partition_by`` value when that is set;
2. every greedy method over the ω/η grid (:mod:`.grid`), scored on the *tuning* labels; each method keeps its
   best (kind, rewards);
3. k-core at the reduction of the best BiPoly; each ILP family at its greedy counterpart's best rewards
   (or tuned on its own coarse grid) and at max-weight, solved per partition on the executor, partitions
   capped in size, all ILPs within one time budget (:mod:`.ilp_runs`);
4. every matching scored on the *reporting* labels (:mod:`.protocol`), with the references: every category
   pair holding a true pair (ceiling) and the max-weight BiPoly ILP on the true-pair counts (oracle).

Without labelled pairs step 2 is skipped (every method at the fixed ``untuned`` setting), step 4 reports
reductions only (coverage and tradeoff are null: there is nothing to measure them on) and no reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from crossmatch.bipoly.baselines import kcore_at_reduction
from crossmatch.bipoly.config import BlockingParams
from crossmatch.bipoly.embedding import EMBEDDED_KINDS, category_centroids, centroid_similarity, item_vectors
from crossmatch.bipoly.grid import (
    GREEDY_METHODS,
    GridRow,
    best_rows,
    grid_points,
    grid_search,
    run_greedy,
    value_range,
)
from crossmatch.bipoly.ilp import IlpConfig, solve_ilp
from crossmatch.bipoly.ilp_runs import ILP_TUNED_BY, family_ilps, rewards_dict, uflp_rewards
from crossmatch.bipoly.instance import Instance, Rewards
from crossmatch.bipoly.labelled import cross_fitted_labels
from crossmatch.bipoly.matching import Matching
from crossmatch.bipoly.metrics import BlockingTruth, blocking_truth, catalogue_sizes, pair_scores
from crossmatch.bipoly.neighbours import NEIGHBOUR_KINDS, neighbour_similarity
from crossmatch.bipoly.protocol import LabelSplit, split_labels
from crossmatch.bipoly.similarity import (
    Documents,
    SimilarityKind,
    category_documents,
    similarity,
    truth_similarity,
)
from crossmatch.bipoly.union import cross_fitted_union
from crossmatch.errors import ConfigError, InputError

__all__ = ["ILP_TUNED_BY", "CategoryBlocking", "OnStage", "method_summary", "rewards_dict", "tune_categories",
           "uflp_rewards"]

OnStage = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class CategoryBlocking:
    """Outcome of :func:`tune_categories`: every method's matching of category indices, and its figures."""

    matchings: dict[str, Matching]
    docs: tuple[Documents, Documents]
    labels: LabelSplit | None  # None: no labelled pairs, nothing tuned
    best: dict[str, tuple[SimilarityKind, GridRow]]  # each greedy method's tuned (similarity kind, grid row)
    grid: list[tuple[SimilarityKind, GridRow]]  # every grid row, for the heat-map
    metrics: dict[str, Any]
    # ``best`` without the ``labels`` kind: the rewards meta-blocking reuses on its own category similarity
    # (the labels kind's rewards belong to its label-informed instance); equal to ``best`` when it is off
    best_without_labels: dict[str, tuple[SimilarityKind, GridRow]] | None = None


def partition_labels(items: pl.DataFrame, names: Sequence[str], column: str) -> list[str]:
    """The ``column`` value of each category (its most common value among the category's items)."""
    if column not in items.columns:
        raise InputError(f"partition_by column '{column}' is not in the items table; found {items.columns}")
    mode = (items.group_by("fine_category", column).len().sort(["fine_category", "len", column], descending=[False, True, False])
            .unique("fine_category", keep="first"))
    lookup = dict(zip(mode.get_column("fine_category").to_list(), mode.get_column(column).cast(pl.String).to_list(), strict=True))
    return [lookup[n] for n in names]


def method_summary(m: Matching, truth: BlockingTruth, extra: dict[str, Any] | None = None,
                   tune: BlockingTruth | None = None, *, labelled: bool = True) -> dict[str, Any]:
    """Scores on the reporting labels ``truth``; with ``tune``, the tuning labels' figures under ``"tune"``.
    Without labels (``labelled`` false) coverage and tradeoff are null: only the reduction is known."""
    s = truth.score_matching(m)
    out: dict[str, Any] = {
        "coverage": s.coverage if labelled else None, "reduction": s.reduction,
        "tradeoff": s.tradeoff if labelled else None, "n_pairs": m.n_pairs,
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


def _groups(params: BlockingParams, left_items: pl.DataFrame, right_items: pl.DataFrame, dl: Documents,
            dr: Documents) -> tuple[np.ndarray, np.ndarray] | None:
    """A partition code per category of each side (``partition_by``), or None."""
    if not params.partition_by:
        return None
    gl = partition_labels(left_items, dl.names, params.partition_by)
    gr = partition_labels(right_items, dr.names, params.partition_by)
    codes = {g: i for i, g in enumerate(sorted(set(gl) | set(gr)))}
    return np.array([codes[g] for g in gl]), np.array([codes[g] for g in gr])


def _tuned_settings(params: BlockingParams, instances: dict[SimilarityKind, Instance], greedy: list[str],
                    truth: BlockingTruth | None, executor: Executor | None, on_progress: OnStage | None,
                    ) -> tuple[dict[str, tuple[SimilarityKind, GridRow]], list[tuple[SimilarityKind, GridRow]], int]:
    """Each greedy method's (similarity kind, grid row): the best over the ω/η grid on the tuning labels, or
    without labels (``truth`` None) the fixed ``untuned`` setting. Also every grid row and the grid's size."""
    if truth is None:
        u = params.untuned
        kind: SimilarityKind = next(iter(instances))
        nan = float("nan")
        return {mt: (kind, GridRow(mt, Rewards.tied(u.omega, u.eta), nan, nan, nan, 0, nan)) for mt in greedy}, [], 0
    points = grid_points(value_range(params.grid.omega), value_range(params.grid.eta), tie_sides=params.grid.tie_sides)
    rows: list[tuple[SimilarityKind, GridRow]] = []
    for i, (kind, inst) in enumerate(instances.items()):
        label = "grid" if len(instances) == 1 else f"grid {kind} ({i + 1}/{len(instances)})"
        tick = (lambda d, t, label=label: on_progress(label, d, t)) if on_progress is not None else None
        rows += [(kind, r) for r in grid_search(greedy, inst, truth, points, host_side=params.host_side,
                                                executor=executor, on_progress=tick)]
    best: dict[str, tuple[SimilarityKind, GridRow]] = {}
    for kind in instances:
        for mt, r in best_rows([r for k, r in rows if k == kind]).items():
            if mt not in best or r.tradeoff > best[mt][1].tradeoff:
                best[mt] = (kind, r)
    return best, rows, len(points)


def tune_categories(
    params: BlockingParams, *, left_items: pl.DataFrame, right_items: pl.DataFrame, truth_pairs: pl.DataFrame | None,
    left_categories: list[str] | None = None, right_categories: list[str] | None = None,
    category_truth: pl.DataFrame | None = None, executor: Executor | None = None, on_progress: OnStage | None = None,
    embeddings: tuple[pl.DataFrame | None, pl.DataFrame | None] | None = None,
) -> CategoryBlocking:
    """Steps 1-4 of the module docstring (pure: nothing is written).

    ``truth_pairs`` are the true product pairs oriented (``item_a`` left, ``item_b`` right[, ``split``]); the
    tuning labels choose every setting, the reporting labels (held out when ``tune_splits`` /
    ``report_splits`` are set, else the same labels) give the top-level figures. Without labels
    (``truth_pairs`` None) nothing is tuned: every method runs at ``params.untuned`` and only reductions are
    reported. ``on_progress(stage, done, total)`` is called as grid chunks and ILP partitions finish.
    ``embeddings`` (left, right ``item_id``, ``embedding`` tables) feed the ``icpa`` category similarity.
    """
    t_start = time.perf_counter()
    dl = category_documents(left_items, categories=left_categories, source=params.left)
    dr = category_documents(right_items, categories=right_categories, source=params.right)
    labelled = truth_pairs is not None
    labels = split_labels(truth_pairs, params.tune_splits, params.report_splits) if truth_pairs is not None else None
    if labels is not None:
        truth = blocking_truth(left_items, right_items, dl.names, dr.names, labels.tune)
        report = blocking_truth(left_items, right_items, dl.names, dr.names, labels.report) if labels.held_out else truth
    else:
        truth = report = catalogue_sizes(left_items, right_items, dl.names, dr.names)
    groups = _groups(params, left_items, right_items, dl, dr)
    kinds: list[SimilarityKind]
    if params.similarity != "best":
        kinds = [params.similarity]
    else:
        kinds = list(params.best_of) if labelled else [params.untuned.similarity]
    instances: dict[SimilarityKind, Instance] = {}
    sim_info: dict[str, Any] = {}
    for kind in kinds:
        t_kind = time.perf_counter()
        if kind in EMBEDDED_KINDS:
            emb_l, emb_r = embeddings if embeddings is not None else (None, None)
            cl = category_centroids(left_items, dl.names, item_vectors(left_items, kind, embeddings=emb_l, source=params.left))
            cr = category_centroids(right_items, dr.names, item_vectors(right_items, kind, embeddings=emb_r, source=params.right))
            res = centroid_similarity(cl, cr, kind=kind, left_names=dl.names, right_names=dr.names, top_k=params.top_k,
                                      rescale=params.rescale)
        elif kind in NEIGHBOUR_KINDS:
            res = neighbour_similarity(left_items, right_items, left_names=dl.names, right_names=dr.names,
                                       k=params.neighbours_k, top_k=params.top_k, rescale=params.rescale,
                                       left_source=params.left, right_source=params.right)
        else:
            res = similarity(dl, dr, kind, top_k=params.top_k, rescale=params.rescale)
        inst = res.instance
        if groups is not None:
            inst = inst.restrict(groups[0][inst.left] == groups[1][inst.right])
        instances[kind] = inst
        sim_info[kind] = {"n_nonzero": res.n_nonzero, "n_candidates": inst.n_pairs, "raw_max": res.raw_max,
                          "seconds": round(time.perf_counter() - t_kind, 3)}
    t_sim = time.perf_counter() - t_start

    greedy = [m for m in params.methods if m in GREEDY_METHODS]
    t0 = time.perf_counter()
    best, rows, n_points = _tuned_settings(params, instances, greedy, truth if labelled else None, executor, on_progress)
    best_without_labels = dict(best)
    if params.labels.enabled and labels is not None:
        t_lab = time.perf_counter()
        base_kind = params.labels.base
        if not labels.held_out:
            raise ConfigError("blocking.labels needs held-out reporting labels (tune_splits / report_splits): built "
                              "from the tuning positives, it would be graded on the pairs it was made from")
        if base_kind not in instances:
            raise ConfigError(f"blocking.labels.base '{base_kind}' is not a computed similarity kind {list(instances)} "
                              "(add it to best_of, or set similarity to it)")
        points = grid_points(value_range(params.grid.omega), value_range(params.grid.eta), tie_sides=params.grid.tie_sides)
        if on_progress is not None:
            on_progress("labels similarity (cross-fitted)", 0, 1)
        bipolys = [mt for mt in greedy if mt in ("bipoly_s", "bipoly_c")]

        def grade(rows_at_alpha: dict[str, GridRow]) -> float:
            # alpha is chosen for BiPoly (what the blocking selects among), else for the best greedy method
            keep = [r.tradeoff for mt, r in rows_at_alpha.items() if mt in bipolys] or \
                [r.tradeoff for r in rows_at_alpha.values()]
            return max(keep)

        def cut(inst: Instance) -> Instance:
            return inst if groups is None else inst.restrict(groups[0][inst.left] == groups[1][inst.right])

        fit = cross_fitted_labels(
            params.labels, base=instances[base_kind], tune_pairs=labels.tune, methods=greedy, points=points,
            truth_of=lambda pairs: blocking_truth(left_items, right_items, dl.names, dr.names, pairs),
            host_side=params.host_side, seed=params.seed, select=grade, restrict=cut)
        inst = fit.instance
        instances["labels"] = inst
        rows += [("labels", r) for r in fit.rows]
        for mt, r in fit.best.items():
            if mt not in best or r.tradeoff > best[mt][1].tradeoff:
                best[mt] = ("labels", r)
        sim_info["labels"] = {"base": base_kind, "n_candidates": inst.n_pairs, **fit.describe(),
                              "seconds": round(time.perf_counter() - t_lab, 3)}
        if on_progress is not None:
            on_progress("labels similarity (cross-fitted)", 1, 1)
    union_fits = {}
    if params.labelled_union.enabled and labels is not None:
        t_union = time.perf_counter()
        if not labels.held_out:
            raise ConfigError("blocking.labelled_union needs held-out reporting labels (tune_splits / report_splits): "
                              "it holds the tuning positives' category pairs, so it would be graded on its own pairs")
        if on_progress is not None:
            on_progress("BiPoly + labelled pairs (cross-fitted)", 0, 1)
        union_fits = cross_fitted_union(
            params.labelled_union, instances={k: v for k, v in instances.items() if k != "labels"},
            tune_pairs=labels.tune, points=grid_points(value_range(params.grid.omega), value_range(params.grid.eta),
                                                       tie_sides=params.grid.tie_sides),
            truth_of=lambda pairs: blocking_truth(left_items, right_items, dl.names, dr.names, pairs),
            host_side=params.host_side, seed=params.seed,
            keep=None if groups is None else (lambda a, b: groups[0][a] == groups[1][b]))
        sim_info["labelled_union_seconds"] = round(time.perf_counter() - t_union, 3)
        if on_progress is not None:
            on_progress("BiPoly + labelled pairs (cross-fitted)", 1, 1)
    t_grid = time.perf_counter() - t0

    matchings: dict[str, Matching] = {}
    extras: dict[str, dict[str, Any]] = {}
    for mt in greedy:
        if mt not in best:
            continue
        kind, r = best[mt]
        m = run_greedy(mt, instances[kind], r.rewards, params.host_side)
        if m is None:  # an untuned setting outside UFLP's domain (η > 0)
            continue
        matchings[mt] = m
        extras[mt] = {"similarity": kind, **rewards_dict(r.rewards)}
    for mt, uf in union_fits.items():
        name = f"{mt}_plus_labelled"
        matchings[name] = uf.matching
        extras[name] = {"similarity": uf.kind, **rewards_dict(uf.rewards), "min_count": uf.min_count,
                        "cv": {"coverage": uf.cv_coverage, "reduction": uf.cv_reduction, "tradeoff": uf.cv_tradeoff},
                        **uf.matching.info}
    bipoly: list[str] = [mt for mt in ("bipoly_s", "bipoly_c") if mt in matchings]
    # tuned: the better BiPoly on the labels; untuned: BiPoly.C (the default select)
    bipoly_best = max(bipoly, key=lambda mt: best[mt][1].tradeoff) if labelled and bipoly else (bipoly[-1] if bipoly else None)
    if "kcore" in params.methods:
        kind = best[bipoly_best][0] if bipoly_best else kinds[0]
        target = truth.score_matching(matchings[bipoly_best]).reduction if bipoly_best else 0.9
        m = kcore_at_reduction(instances[kind], target, lambda mm: truth.score_matching(mm).reduction, k=params.kcore_k)
        matchings["kcore"] = m
        extras["kcore"] = {"similarity": kind, "tau": m.info["tau"], "k": params.kcore_k, "target_reduction": target}
    t0 = time.perf_counter()
    budget = params.ilp.total_time_limit
    deadline = time.time() + budget if budget is not None else None
    label = "ILPs" if budget is None else f"ILPs (budget {budget:g} s)"
    tick = (lambda d, t: on_progress(label, d, t)) if on_progress is not None else None
    ilps, ilp_budget = family_ilps(params, best, instances, groups, truth if labelled else None, executor=executor,
                                   deadline=deadline, on_progress=tick)
    for name, m, extra in ilps:
        matchings[name], extras[name] = m, extra
    t_ilp = time.perf_counter() - t0

    tune_fig = truth if labels is not None and labels.held_out else None
    methods = {name: method_summary(m, report, extras.get(name), tune_fig, labelled=labelled)
               for name, m in matchings.items()}
    metrics: dict[str, Any] = {
        "left": params.left, "right": params.right, "tuned": labelled, "n_left_categories": len(dl.names),
        "n_right_categories": len(dr.names), "n_left_items": truth.total_l, "n_right_items": truth.total_r,
        "n_true_pairs": report.n_true if labelled else None,
        "protocol": labels.describe() if labels is not None else None, "similarity": sim_info,
        "grid_points": n_points, "seconds": {"similarity": round(t_sim, 3), "grid": round(t_grid, 3), "ilp": round(t_ilp, 3)},
        "methods": methods, "ilp_budget": ilp_budget if params.ilp.methods else None,
        "references": _references(params, truth, report, labels, dl, dr, deadline) if labels is not None else None,
        "selected": params.select,
    }
    if labelled and len(instances) > 1:
        metrics["by_similarity"] = _by_similarity(params, instances, rows, report)
    if not labelled:
        metrics["untuned"] = {"omega": params.untuned.omega, "eta": params.untuned.eta, "similarity": kinds[0]}
    if category_truth is not None:
        metrics["category_truth"] = category_truth_scores(matchings, dl, dr, category_truth, params.left, params.right)
    return CategoryBlocking(matchings, (dl, dr), labels, best, rows, metrics, best_without_labels)


def _by_similarity(params: BlockingParams, instances: dict[SimilarityKind, Instance],
                   rows: list[tuple[SimilarityKind, GridRow]], report: BlockingTruth) -> dict[str, dict[str, Any]]:
    """Each similarity kind on its own: every greedy method at its best setting *on that kind* (tuning
    labels), scored on the reporting labels — how the kinds compare (e.g. MiniLM centroids vs TF-IDF)."""
    out: dict[str, dict[str, Any]] = {}
    for kind, inst in instances.items():
        per: dict[str, Any] = {}
        for mt, r in best_rows([r for k, r in rows if k == kind]).items():
            m = run_greedy(mt, inst, r.rewards, params.host_side)
            if m is not None:
                s = report.score_matching(m)
                per[mt] = {"tune_tradeoff": r.tradeoff, "coverage": s.coverage, "reduction": s.reduction,
                           "tradeoff": s.tradeoff, "n_pairs": m.n_pairs, **rewards_dict(r.rewards)}
        out[kind] = per
    return out


def _references(params: BlockingParams, truth: BlockingTruth, report: BlockingTruth, labels: LabelSplit, dl: Documents,
                dr: Documents, deadline: float | None) -> dict[str, Any]:
    """Every category pair holding a true pair (ceiling), and the max-weight BiPoly oracle."""
    counts = report.counts().tocoo()
    ceiling = report.score(counts.row, counts.col)
    # a reference: it shares the ILPs' budget (what is left of it, at least a second)
    limit = params.ilp.time_limit if deadline is None else min(params.ilp.time_limit, max(1.0, deadline - time.time()))
    oracle = solve_ilp(truth_similarity(report.counts(), dl, dr), Rewards(),
                       IlpConfig(time_limit=limit, mip_gap=params.ilp.mip_gap, seed=params.seed,
                                 node_limit=params.ilp.node_limit))
    references = {"ceiling_all_true_category_pairs": ceiling.as_dict(),
                  "oracle_bipoly_maxweight": method_summary(oracle, report)}
    if labels.held_out:
        # reusing the category pairs of the tuning positives, scored on the held-out ones
        seen = truth.counts().tocoo()
        references["tune_category_pairs"] = report.score(seen.row, seen.col).as_dict()
    return references
