"""Stage ``blocking``: BiPoly category blocking between two sources (ALGORITHMS.md §1; issue 3).

Inputs (CLI): ``--ingested`` holds ``<source>/items.parquet`` (``item_id``, ``title``,
``fine_category``[, ``category``]) and optionally ``taxonomy.parquet`` (``source``,
``fine_category``); ``--truth-pairs`` the labelled true product pairs (``item_a``, ``item_b``
[, ``source_a``, ``source_b``]) used for tuning and scoring; optional ``--truth-categories`` the
planted category correspondence (``source_a``, ``fine_a``, ``source_b``, ``fine_b``).

Outputs:
    <out>/category_pairs.parquet   method, left, right            every method's matched category pairs
    <out>/blocks.parquet           block_id, left, right          the pairs of the selected method
    <out>/candidate_pairs.parquet  left_item_id, right_item_id, block_id   its product pairs
    <metrics>                      per method coverage, reduction, tradeoff, n_pairs, objective, seconds,
                                   status, gap (+ category P/R, entity scenario, meta-blocking)
    <plots>_tradeoff.csv/.png, <plots>_grid.csv/.png   tradeoff per method; ω/η heat-map
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from crossmatch.bipoly.baselines import bipartite_rewards, kcore_at_reduction
from crossmatch.bipoly.grid import (
    GREEDY_METHODS,
    GridRow,
    best_rows,
    grid_points,
    grid_search,
    merge,
    run_greedy,
    split_by_groups,
    value_range,
)
from crossmatch.bipoly.ilp import IlpConfig, solve_ilp
from crossmatch.bipoly.instance import Instance, Rewards, Side
from crossmatch.bipoly.matching import Matching
from crossmatch.bipoly.metablocking import meta_blocking
from crossmatch.bipoly.metrics import BlockingTruth, blocking_truth, harmonic, pair_scores
from crossmatch.bipoly.protocol import LabelSplit, PairKeys, meta_blocking_protocol, split_labels
from crossmatch.bipoly.scenario import entity_scenario, entity_scores
from crossmatch.bipoly.similarity import (
    KINDS,
    Documents,
    SimilarityKind,
    category_documents,
    normalise_title,
    similarity,
    truth_similarity,
)
from crossmatch.errors import ConfigError, InputError
from stages._common import atomic_dir, console, load_section, params_as, run, write_atomic, write_json

ILP_FAMILIES = ("bipoly", "poly", "bipartite", "uflp")
# the greedy method whose tuned rewards an ILP family reuses
ILP_TUNED_BY = {"bipoly": ("bipoly_s", "bipoly_c"), "poly": ("poly",), "bipartite": ("bipartite",), "uflp": ("uflp",)}
# paper Sec. VI-B / ALGORITHMS.md §1.10.7: fixed parameters of the entity scenario
SCENARIO_REWARDS = {
    "bipartite": Rewards.tied(0.4, 0.0), "uflp": Rewards(0.0, 0.0, -0.9, -0.9),
    "poly": Rewards(0.7, 0.7, 0.9, 0.9), "bipoly_s": Rewards.tied(0.6, 0.9), "bipoly_c": Rewards.tied(0.6, 0.9),
}


def _sub(cls: type, value: Any, name: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"params: '{name}' must be a mapping, got {value!r}")
    return params_as(cls, value, name)


@dataclass(frozen=True)
class GridParams:
    omega: list[float] = field(default_factory=lambda: [-1.0, 1.0, 0.1])  # [start, stop, step]
    eta: list[float] = field(default_factory=lambda: [-1.0, 1.0, 0.1])
    tie_sides: bool = True


@dataclass(frozen=True)
class IlpParams:
    methods: list[str] = field(default_factory=lambda: list(ILP_FAMILIES))
    time_limit: float = 10.0
    mip_gap: float = 1e-4
    max_weight: bool = True  # also solve each family with ω = η = 0
    warm_start: bool = True
    grid: list[float] | None = None  # [start, stop, step]: tune each ILP on this tied ω/η grid; null: reuse the greedy's best
    node_limit: int | None = None  # HiGHS branch-and-bound nodes per solve: a limit that cuts every machine's solve alike

    def __post_init__(self) -> None:
        if self.time_limit <= 0 or self.mip_gap < 0:
            raise ConfigError(f"blocking.ilp.time_limit must be > 0 s and blocking.ilp.mip_gap >= 0, "
                              f"got {self.time_limit} and {self.mip_gap}")
        bad = [m for m in self.methods if m not in ILP_FAMILIES]
        if bad:
            raise ConfigError(f"blocking.ilp.methods: unknown {bad}; choose from {list(ILP_FAMILIES)}")
        if self.grid is not None:
            value_range(self.grid)
        if self.node_limit is not None and self.node_limit < 1:
            raise ConfigError(f"blocking.ilp.node_limit must be >= 1 or null, got {self.node_limit}")


@dataclass(frozen=True)
class ScenarioParams:
    enabled: bool = False
    p: float = 0.05
    seed: int = 0
    top_k: int | None = 10


@dataclass(frozen=True)
class MetaParams:
    enabled: bool = False
    method: str = "bipoly_c"  # category matcher, at its tuned rewards
    max_comparisons: float = 100_000
    filter_ratio: float = 1.0
    weighting: str = "js"
    node_k: int = 5
    combine: str = "boost"
    boost: float = 0.3
    # budgeted protocol (crossmatch.bipoly.protocol): keep the max_pairs best pairs; β and the
    # weighting are chosen among boosts × weightings on the tuning labels (β = 0: without BiPoly)
    max_pairs: int | None = None
    boosts: list[float] = field(default_factory=lambda: [0.1])
    weightings: list[str] | None = None  # null: [weighting]
    curve_budgets: list[int] | None = None  # candidate-set sizes of the recall curve
    fields: list[str] = field(default_factory=lambda: ["title"])  # item columns whose tokens are blocked on


@dataclass(frozen=True)
class BlockingParams:
    left: str = "alpha"
    right: str = "beta"
    # jaccard | overlap | tfidf | best (per method, the best on the tuning labels). The Literal types of
    # similarity and host_side hold once __post_init__ has checked the values read from YAML.
    similarity: SimilarityKind | Literal["best"] = "tfidf"
    top_k: int | None = 20
    rescale: bool = True
    host_side: Side = "left"
    partition_by: str | None = None  # item column shared by both sources; pairs across its values are dropped
    methods: list[str] = field(default_factory=lambda: [*GREEDY_METHODS, "kcore"])
    kcore_k: int = 2
    select: str = "bipoly_c"  # method written to blocks/candidate_pairs ("metablocking" allowed)
    runner: str = "process"  # thread | process
    workers: int = 2
    seed: int = 0
    grid: Any = field(default_factory=GridParams)
    ilp: Any = field(default_factory=IlpParams)
    scenario: Any = field(default_factory=ScenarioParams)
    metablocking: Any = field(default_factory=MetaParams)
    # generalisation protocol (issue 12): tune on these truth splits, report on those (null: all labels for both)
    tune_splits: list[str] | None = None
    report_splits: list[str] | None = None

    def __post_init__(self) -> None:
        for name, cls in (("grid", GridParams), ("ilp", IlpParams), ("scenario", ScenarioParams), ("metablocking", MetaParams)):
            object.__setattr__(self, name, _sub(cls, getattr(self, name), f"blocking.{name}"))
        if self.similarity not in (*KINDS, "best"):
            raise ConfigError(f"blocking.similarity must be one of {[*KINDS, 'best']}, got {self.similarity!r}")
        if self.runner not in ("thread", "process"):
            raise ConfigError(f"blocking.runner must be 'thread' or 'process', got {self.runner!r}")
        if self.workers < 1:
            raise ConfigError(f"blocking.workers must be an integer >= 1, got {self.workers}")
        if self.host_side not in ("left", "right"):
            raise ConfigError(f"blocking.host_side must be 'left' or 'right', got {self.host_side!r}")
        bad = [m for m in self.methods if m not in (*GREEDY_METHODS, "kcore")]
        if bad:
            raise ConfigError(f"blocking.methods: unknown {bad}; choose from {[*GREEDY_METHODS, 'kcore']}")
        if self.left == self.right:
            raise ConfigError("blocking.left and blocking.right must be different sources")


def warm_up() -> None:
    """Load the compiled greedy kernels before timing anything (and before worker processes fork)."""
    tiny = Instance.from_dense(np.array([[1.0, 0.5], [0.0, 0.25]]))
    for mt in GREEDY_METHODS:
        run_greedy(mt, tiny, Rewards())


def make_executor(runner: str, workers: int) -> Executor:
    """The scale-out hook: the grid and per-partition solves run on this executor."""
    return ProcessPoolExecutor(max_workers=workers) if runner == "process" else ThreadPoolExecutor(max_workers=workers)


# ----------------------------------------------------------------------------------------- inputs
def load_source(root: Path, source: str) -> tuple[pl.DataFrame, list[str] | None]:
    path = root / source / "items.parquet"
    if not path.exists():
        raise InputError(f"no items for source '{source}'; run the ingest stage first", file=str(path))
    items = pl.read_parquet(path)
    tax_path = root / "taxonomy.parquet"
    cats = None
    if tax_path.exists():
        tax = pl.read_parquet(tax_path)
        if {"source", "fine_category"} <= set(tax.columns):
            cats = sorted(tax.filter(pl.col("source") == source).get_column("fine_category").unique().to_list()) or None
    return items, cats


def oriented_truth(truth: pl.DataFrame, left: str, right: str, file: str) -> pl.DataFrame:
    """True pairs as (item_a = left item, item_b = right item), with their ``split`` when the truth has one."""
    for c in ("item_a", "item_b"):
        if c not in truth.columns:
            raise InputError(f"missing column '{c}'; found {truth.columns}", file=file)
    extra = ["split"] if "split" in truth.columns else []
    if not {"source_a", "source_b"} <= set(truth.columns):
        return truth.select("item_a", "item_b", *extra)
    fwd = truth.filter((pl.col("source_a") == left) & (pl.col("source_b") == right)).select("item_a", "item_b", *extra)
    bwd = truth.filter((pl.col("source_a") == right) & (pl.col("source_b") == left)).select(
        pl.col("item_b").alias("item_a"), pl.col("item_a").alias("item_b"), *extra)
    out = pl.concat([fwd, bwd])
    if out.height == 0:
        raise InputError(f"no true pair between sources '{left}' and '{right}'", file=file)
    return out


def partition_labels(items: pl.DataFrame, names: tuple[str, ...], column: str) -> list[str]:
    """The ``column`` value of each category (its most common value among the category's items)."""
    if column not in items.columns:
        raise InputError(f"partition_by column '{column}' is not in the items table; found {items.columns}")
    mode = (items.group_by("fine_category", column).len().sort(["fine_category", "len", column], descending=[False, True, False])
            .unique("fine_category", keep="first"))
    lookup = dict(zip(mode.get_column("fine_category").to_list(), mode.get_column(column).cast(pl.String).to_list(), strict=True))
    return [lookup[n] for n in names]


# ----------------------------------------------------------------------------------------- compute
def _solve_ilp_part(sub: Instance, rewards: Rewards, cfg: IlpConfig, method: str) -> Matching:
    return solve_ilp(sub, rewards, cfg, method=method)


def _uflp_rewards(rw: Rewards, host_side: Side) -> Rewards:
    """UFLP is robust Poly with ω = 0 and η_host = −f, f ≥ 0 (ALGORITHMS.md §1.3 table)."""
    f = max(0.0, -rw.eta(host_side))
    return Rewards(0.0, 0.0, -f, -f)


def solve_many(inst: Instance, groups: tuple[np.ndarray, np.ndarray] | None, settings: list[Rewards], cfg: IlpConfig,
               name: str, executor: Executor | None) -> list[Matching]:
    """One ILP per reward setting, each split into partitions when ``groups`` is given; all solves
    go to the executor at once."""
    parts = split_by_groups(inst, *groups) if groups is not None else [(np.arange(inst.n_left), np.arange(inst.n_right), inst)]
    jobs = [(i, p) for i in range(len(settings)) for p in parts]
    solve = [partial(_solve_ilp_part, rewards=settings[i], cfg=cfg, method=name) for i, _ in jobs]
    if executor is None:
        results = [f(p[2]) for f, (_, p) in zip(solve, jobs, strict=True)]
    else:
        results = [fu.result() for fu in [executor.submit(f, p[2]) for f, (_, p) in zip(solve, jobs, strict=True)]]
    out = []
    for i in range(len(settings)):
        per = [Matching.from_pairs(p[0][r.left], p[1][r.right], method=r.method, objective=r.objective,
                                   seconds=r.seconds, status=r.status, gap=r.gap, info=r.info)
               for (j, p), r in zip(jobs, results, strict=True) if j == i]
        out.append(merge(per, name) if groups is not None else per[0])
    return out


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


def rewards_dict(r: Rewards) -> dict[str, float]:
    return dict(zip(("omega_l", "omega_r", "eta_l", "eta_r"), r.as_tuple(), strict=True))


def compute(params: BlockingParams, left_items: pl.DataFrame, right_items: pl.DataFrame, left_cats: list[str] | None,
            right_cats: list[str] | None, truth_pairs: pl.DataFrame, cat_truth: pl.DataFrame | None,
            executor: Executor | None) -> dict[str, Any]:
    """Everything the stage reports, as frames and a metrics dict (pure: nothing is written).

    ``truth`` (the tuning labels) chooses every setting; ``report`` (the held-out labels, or the
    same labels when the truth has no split) is what the top-level figures are measured on.
    """
    t_start = time.perf_counter()
    dl = category_documents(left_items, categories=left_cats, source=params.left)
    dr = category_documents(right_items, categories=right_cats, source=params.right)
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
    omega, eta = value_range(params.grid.omega), value_range(params.grid.eta)
    points = grid_points(omega, eta, tie_sides=params.grid.tie_sides)
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

    # ILPs at the tuned setting of their greedy counterpart (or tuned on their own coarse grid), and max-weight
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
            cands = [_uflp_rewards(rw, params.host_side) if fam == "uflp" else rw for rw in grid_points(axis, axis)]
            cands = list(dict.fromkeys(cands))
            solved = solve_many(inst, groups, cands, cfg, f"ilp_{fam}", executor)
            scored = [(truth.score_matching(m).tradeoff, i) for i, m in enumerate(solved)]
            i_best = max(scored, key=lambda t: (t[0], -t[1]))[1]
            m, rw = solved[i_best], cands[i_best]
            src = f"ilp grid {params.ilp.grid}"
        else:
            rw = best[src][1].rewards
            if fam == "uflp":
                rw = _uflp_rewards(rw, params.host_side)
            elif fam == "bipartite":
                # the rewards under which eq. 3 is what greedy Bipartite (τ = ω_L) optimises (issue 12, 9a)
                rw = bipartite_rewards(rw)
            m = solve_many(inst, groups, [rw], cfg, f"ilp_{fam}", executor)[0]
        settings = [(f"ilp_{fam}", rw, m)]
        if params.ilp.max_weight:
            settings.append((f"ilp_{fam}_maxweight", Rewards(),
                             solve_many(inst, groups, [Rewards()], cfg, f"ilp_{fam}_maxweight", executor)[0]))
        for name, rw_, m_ in settings:
            matchings[name] = m_
            extras[name] = {"similarity": kind, **rewards_dict(rw_), "proven_optimal": m_.status == "Optimal",
                            "time_limit": params.ilp.time_limit, "tuned_from": src}

    tune_fig = truth if labels.held_out else None
    methods = {name: method_summary(m, report, extras.get(name), tune_fig) for name, m in matchings.items()}
    # references: every category pair holding a true pair (ceiling), and the max-weight BiPoly oracle
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

    out: dict[str, Any] = {"matchings": matchings, "docs": (dl, dr), "truth": truth, "grid": rows}
    metrics: dict[str, Any] = {
        "left": params.left, "right": params.right, "n_left_categories": len(dl.names),
        "n_right_categories": len(dr.names), "n_left_items": truth.total_l, "n_right_items": truth.total_r,
        "n_true_pairs": report.n_true, "protocol": labels.describe(), "similarity": sim_info, "grid_points": len(points),
        "seconds": {"similarity": round(t_sim, 3), "grid": round(t_grid, 3)},
        "methods": methods, "references": references, "selected": params.select,
    }
    if cat_truth is not None:
        metrics["category_truth"] = category_truth_scores(matchings, dl, dr, cat_truth, params.left, params.right)
    if params.scenario.enabled:
        metrics["entity_scenario"] = scenario_scores(left_items, params.scenario, params.host_side)
    if params.metablocking.enabled:
        if params.metablocking.method not in best:
            raise ConfigError(f"blocking.metablocking.method '{params.metablocking.method}' is not among blocking.methods")
        rw_meta = best[params.metablocking.method][1].rewards
        if params.metablocking.max_pairs is not None:
            out["meta"], metrics["metablocking"], out["curve"] = run_meta_protocol(
                params, left_items, right_items, dl, dr, labels, rw_meta)
        else:
            out["meta"], metrics["metablocking"] = run_meta(params, left_items, right_items, dl, dr, labels.report, rw_meta)
    metrics["seconds"]["total"] = round(time.perf_counter() - t_start, 3)
    out["metrics"] = metrics
    return out


def category_truth_scores(matchings: dict[str, Matching], dl: Documents, dr: Documents, cat_truth: pl.DataFrame,
                          left: str, right: str) -> dict[str, Any]:
    """Precision/recall of matched category pairs against the planted correspondence."""
    pos_l = {n: i for i, n in enumerate(dl.names)}
    pos_r = {n: i for i, n in enumerate(dr.names)}
    fwd = cat_truth.filter((pl.col("source_a") == left) & (pl.col("source_b") == right))
    bwd = cat_truth.filter((pl.col("source_a") == right) & (pl.col("source_b") == left))
    true = {(pos_l[a], pos_r[b]) for a, b in zip(fwd["fine_a"], fwd["fine_b"], strict=True) if a in pos_l and b in pos_r}
    true |= {(pos_l[b], pos_r[a]) for a, b in zip(bwd["fine_a"], bwd["fine_b"], strict=True) if b in pos_l and a in pos_r}
    if not true:
        raise InputError(f"the category truth has no pair between '{left}' and '{right}'")
    return {name: pair_scores(m.pairs(), true).as_dict() for name, m in matchings.items()}


def scenario_scores(items: pl.DataFrame, sp_: ScenarioParams, host_side: Side) -> dict[str, Any]:
    """Item-to-category scenario (§1.10) on the left source at the paper's fixed parameters."""
    sc = entity_scenario(items, p=sp_.p, seed=sp_.seed)
    inst = similarity(sc.left, sc.right, "tfidf", top_k=sp_.top_k).instance
    out: dict[str, Any] = {"p": sp_.p, "seed": sp_.seed, "n_moved": sc.n_moved,
                           "n_left": inst.n_left, "n_right": inst.n_right}
    for mt, rw in SCENARIO_REWARDS.items():
        m = run_greedy(mt, inst, rw, host_side)
        if m is not None:
            s = entity_scores(m, sc)
            out[mt] = {"precision": s.precision, "recall": s.recall, "f1": s.f1, "n_pairs": s.n_predicted}
    return out


def _texts(items: pl.DataFrame, fields: list[str]) -> list[str]:
    missing = [f for f in fields if f not in items.columns]
    if missing:
        raise InputError(f"blocking.metablocking.fields: no column(s) {missing} in the items; found {items.columns}")
    return [normalise_title(" ".join(x or "" for x in row)) for row in items.select(pl.col(fields).cast(pl.String)).iter_rows()]


def _titles_and_categories(left_items: pl.DataFrame, right_items: pl.DataFrame, dl: Documents, dr: Documents,
                           fields: list[str] | None = None) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    tl, tr = _texts(left_items, fields or ["title"]), _texts(right_items, fields or ["title"])
    cl = np.searchsorted(np.array(dl.names), left_items.get_column("fine_category").to_numpy())
    cr = np.searchsorted(np.array(dr.names), right_items.get_column("fine_category").to_numpy())
    return tl, tr, cl, cr


def run_meta_protocol(params: BlockingParams, left_items: pl.DataFrame, right_items: pl.DataFrame, dl: Documents,
                      dr: Documents, labels: LabelSplit, rewards: Rewards) -> tuple[Any, dict[str, Any], pl.DataFrame]:
    """Budgeted meta-blocking with and without BiPoly, tuned on the tuning labels (crossmatch.bipoly.protocol)."""
    mp = params.metablocking
    t0 = time.perf_counter()
    tl, tr, cl, cr = _titles_and_categories(left_items, right_items, dl, dr, mp.fields)
    ids_l, ids_r = left_items.get_column("item_id").to_list(), right_items.get_column("item_id").to_list()
    def solver(inst: Instance) -> Matching:
        m = run_greedy(mp.method, inst, rewards, params.host_side)
        if m is None:
            raise ConfigError(f"blocking.metablocking.method '{mp.method}' is undefined at rewards {rewards}")
        return m

    budgets = mp.curve_budgets or [int(x) for x in np.geomspace(5_000, 20 * mp.max_pairs, 40)]
    res = meta_blocking_protocol(
        tl, tr, cl, cr, len(dl.names), len(dr.names), solver,
        PairKeys.build(ids_l, ids_r, labels.tune), PairKeys.build(ids_l, ids_r, labels.report),
        budget=mp.max_pairs, boosts=mp.boosts, weightings=mp.weightings or [mp.weighting],
        max_comparisons=mp.max_comparisons, filter_ratio=mp.filter_ratio, curve_budgets=[*budgets, mp.max_pairs])
    metrics = {**res.metrics, "seconds": round(time.perf_counter() - t0, 3), "category_method": mp.method, "fields": mp.fields,
               **rewards_dict(rewards), "protocol": labels.describe(),
               "reference_pyjedai": {"coverage": 0.997, "reduction": 0.997, "tradeoff": 0.997, "n_pairs": 156_000,
                                     "seconds": 21.0}}
    return res, metrics, res.curve


def run_meta(params: BlockingParams, left_items: pl.DataFrame, right_items: pl.DataFrame, dl: Documents, dr: Documents,
             truth_pairs: pl.DataFrame, rewards: Rewards) -> tuple[Any, dict[str, Any]]:
    """Meta-blocking on product titles, scored relative to all pairs and to the keyword candidates."""
    mp = params.metablocking
    t0 = time.perf_counter()
    tl, tr, cl, cr = _titles_and_categories(left_items, right_items, dl, dr)

    def solver(inst: Instance) -> Matching:
        m = run_greedy(mp.method, inst, rewards, params.host_side)
        if m is None:  # same check as run_meta_protocol: meta_blocking needs a matching
            raise ConfigError(f"blocking.metablocking.method '{mp.method}' is undefined at rewards {rewards}")
        return m

    res = meta_blocking(tl, tr, cl, cr, len(dl.names), len(dr.names), solver,
                        max_comparisons=mp.max_comparisons, filter_ratio=mp.filter_ratio, weighting=mp.weighting,
                        node_k=mp.node_k, combine=mp.combine, boost=mp.boost)
    secs = time.perf_counter() - t0
    lid = {x: i for i, x in enumerate(left_items.get_column("item_id").to_list())}
    rid = {x: i for i, x in enumerate(right_items.get_column("item_id").to_list())}
    ta = np.array([lid[x] for x in truth_pairs.get_column("item_a").to_list()], dtype=np.int64)
    tb = np.array([rid[x] for x in truth_pairs.get_column("item_b").to_list()], dtype=np.int64)
    n_r = right_items.height
    true_keys = np.unique(ta * n_r + tb)
    total = left_items.height * right_items.height

    def scores(lft: np.ndarray, rgt: np.ndarray) -> dict[str, float | int]:
        covered = int(np.isin(true_keys, lft * n_r + rgt).sum())
        cov, red = covered / true_keys.size, 1.0 - lft.size / total
        return {"coverage": cov, "reduction": red, "tradeoff": harmonic(cov, red), "n_pairs": int(lft.size),
                "n_true_covered": covered}

    final, keyword = scores(res.left, res.right), scores(res.keyword_left, res.keyword_right)
    rel_cov = final["n_true_covered"] / keyword["n_true_covered"] if keyword["n_true_covered"] else 0.0
    rel_red = 1.0 - final["n_pairs"] / keyword["n_pairs"] if keyword["n_pairs"] else 0.0
    metrics = {
        **{k: v for k, v in final.items()}, "seconds": round(secs, 3),
        "relative_to_keyword": {"coverage": rel_cov, "reduction": rel_red, "tradeoff": harmonic(rel_cov, rel_red)},
        "keyword_only": keyword, "category_method": mp.method, **rewards_dict(rewards),
        "steps_seconds": {k: round(v, 3) for k, v in res.seconds.items()}, **res.info,
        "reference_pyjedai": {"coverage": 0.997, "reduction": 0.997, "tradeoff": 0.997, "n_pairs": 156_000, "seconds": 21.0},
    }
    return res, metrics


# ----------------------------------------------------------------------------------------- outputs
def category_pairs_frame(matchings: dict[str, Matching], dl: Documents, dr: Documents) -> pl.DataFrame:
    """Every method's matched category pairs (method, left, right)."""
    schema = {"method": pl.String, "left": pl.String, "right": pl.String}
    frames = [pl.DataFrame({"method": [name] * m.n_pairs, "left": [dl.names[i] for i in m.left],
                            "right": [dr.names[i] for i in m.right]}, schema=schema) for name, m in matchings.items()]
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def selected_outputs(params: BlockingParams, out: dict[str, Any], left_items: pl.DataFrame,
                     right_items: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``blocks`` (block_id, left, right) and ``candidate_pairs`` (left_item_id, right_item_id, block_id)."""
    dl, dr = out["docs"]
    li = left_items.select(pl.col("item_id").alias("left_item_id"), pl.col("fine_category").alias("left"))
    ri = right_items.select(pl.col("item_id").alias("right_item_id"), pl.col("fine_category").alias("right"))
    if params.select == "metablocking":
        if "meta" not in out:
            raise ConfigError("blocking.select is 'metablocking' but blocking.metablocking.enabled is false")
        res = out["meta"]
        cand = pl.DataFrame({"li": res.left, "ri": res.right}).with_columns(
            left_item_id=pl.Series(left_items.get_column("item_id").to_numpy()[res.left]),
            right_item_id=pl.Series(right_items.get_column("item_id").to_numpy()[res.right]),
            left=pl.Series(left_items.get_column("fine_category").to_numpy()[res.left]),
            right=pl.Series(right_items.get_column("fine_category").to_numpy()[res.right]),
        )
        blocks = cand.select("left", "right").unique().sort("left", "right").with_row_index("block_id")
        cand = cand.join(blocks, on=["left", "right"]).select("left_item_id", "right_item_id", pl.col("block_id").cast(pl.Int64))
        return blocks.select(pl.col("block_id").cast(pl.Int64), "left", "right"), cand.sort("left_item_id", "right_item_id")
    if params.select not in out["matchings"]:
        raise ConfigError(f"blocking.select '{params.select}' is not a computed method; computed: {sorted(out['matchings'])}")
    m = out["matchings"][params.select]
    blocks = pl.DataFrame({"left": [dl.names[i] for i in m.left], "right": [dr.names[i] for i in m.right]},
                          schema={"left": pl.String, "right": pl.String}).with_row_index("block_id")
    blocks = blocks.with_columns(pl.col("block_id").cast(pl.Int64))
    cand = blocks.join(li, on="left").join(ri, on="right").select("left_item_id", "right_item_id", "block_id")
    return blocks, cand.unique(["left_item_id", "right_item_id"], keep="first").sort("left_item_id", "right_item_id")


def write_plots(prefix: str, methods: dict[str, Any], grid: list[tuple[str, GridRow]], select: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trade = pl.DataFrame([{"method": k, "coverage": v["coverage"], "reduction": v["reduction"], "tradeoff": v["tradeoff"]}
                          for k, v in methods.items()])
    write_atomic(f"{prefix}_tradeoff.csv", lambda p: trade.write_csv(p))
    fig, ax = plt.subplots(figsize=(7, 0.35 * trade.height + 1.2))
    y = np.arange(trade.height)
    for off, col in ((-0.27, "coverage"), (0.0, "reduction"), (0.27, "tradeoff")):
        ax.barh(y + off, trade[col].to_numpy(), height=0.27, label=col)
    ax.set_yticks(y, trade["method"].to_list())
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("category blocking per method")
    fig.tight_layout()
    write_atomic(f"{prefix}_tradeoff.png", lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)

    g = pl.DataFrame([{"similarity": k, **r.as_dict()} for k, r in grid])
    write_atomic(f"{prefix}_grid.csv", lambda p: g.write_csv(p))
    pick = select if select in set(g["method"].to_list()) else g["method"][0]
    sub = g.filter(pl.col("method") == pick).group_by("omega_l", "eta_l").agg(pl.col("tradeoff").max())
    om, et = sorted(set(sub["omega_l"].to_list())), sorted(set(sub["eta_l"].to_list()))
    heat = np.full((len(et), len(om)), np.nan)
    for o, e, t in sub.iter_rows():
        heat[et.index(e), om.index(o)] = t
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    im = ax.imshow(heat, origin="lower", aspect="auto", extent=(om[0], om[-1], et[0], et[-1]), cmap="viridis")
    fig.colorbar(im, ax=ax, label="tradeoff")
    ax.set_xlabel("ω (reclusivity)")
    ax.set_ylabel("η (receptivity)")
    ax.set_title(f"{pick}: tradeoff over the ω/η grid")
    fig.tight_layout()
    write_atomic(f"{prefix}_grid.png", lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)


def write_recall_curve(prefix: str, curve: pl.DataFrame, budget: int) -> None:
    """Candidate-set size vs recall of the meta-blocking, with and without BiPoly (CSV for DVC plots + PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    write_atomic(f"{prefix}.csv", lambda p: curve.write_csv(p))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for col in curve.columns[1:]:
        ax.plot(curve["n_pairs"].to_numpy(), curve[col].to_numpy(), label=col.removeprefix("recall_").replace("_", " ", 1),
                linestyle="-" if "valid" in col else ":")
    ax.axvline(budget, color="grey", linewidth=0.8)
    ax.axhline(0.99, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlabel("candidate pairs")
    ax.set_ylabel("recall of labelled true pairs")
    ax.set_ylim(0.8, 1.0)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("meta-blocking: candidate-set size vs recall")
    fig.tight_layout()
    write_atomic(f"{prefix}.png", lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.blocking", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="blocking")
    ap.add_argument("--ingested", default="data/ingested")
    ap.add_argument("--truth-pairs", default="data/truth/product_matches.parquet")
    ap.add_argument("--truth-categories", default=None, help="planted category correspondence (synthetic only)")
    ap.add_argument("--out", default="data/blocking")
    ap.add_argument("--metrics", default="metrics/blocking.json")
    ap.add_argument("--plots", default="plots/blocking", help="prefix of the plot files")
    args = ap.parse_args()
    params = params_as(BlockingParams, load_section(args.section, args.params), args.section)

    root = Path(args.ingested)
    left_items, left_cats = load_source(root, params.left)
    right_items, right_cats = load_source(root, params.right)
    tp = Path(args.truth_pairs)
    if not tp.exists():
        raise InputError("labelled true pairs not found", file=str(tp))
    truth_pairs = oriented_truth(pl.read_parquet(tp), params.left, params.right, str(tp))
    cat_truth = pl.read_parquet(args.truth_categories) if args.truth_categories else None
    warm_up()
    with make_executor(params.runner, params.workers) as executor, console.status("blocking: similarity, grid, ILPs"):
        out = compute(params, left_items, right_items, left_cats, right_cats, truth_pairs, cat_truth, executor)
    dl, dr = out["docs"]
    metrics = out["metrics"]
    blocks, cand = selected_outputs(params, out, left_items, right_items)
    cat_pairs = category_pairs_frame(out["matchings"], dl, dr)
    metrics["n_blocks"], metrics["n_candidate_pairs"] = blocks.height, cand.height
    with atomic_dir(args.out) as tmp:
        cat_pairs.write_parquet(tmp / "category_pairs.parquet")
        blocks.write_parquet(tmp / "blocks.parquet")
        cand.write_parquet(tmp / "candidate_pairs.parquet")
    write_plots(args.plots, metrics["methods"], out["grid"], params.select)
    if "curve" in out:
        write_recall_curve(f"{args.plots}_recall_curve", out["curve"], params.metablocking.max_pairs)
    write_json(args.metrics, metrics)
    sel = metrics["methods"].get(params.select) or metrics.get("metablocking", {})
    console.print(
        f"blocking: {len(metrics['methods'])} methods in {metrics['seconds']['total']:.1f} s; selected {params.select}: "
        f"coverage {sel.get('coverage', float('nan')):.3f}, reduction {sel.get('reduction', float('nan')):.3f}, "
        f"tradeoff {sel.get('tradeoff', float('nan')):.3f}; {cand.height:,} candidate pairs -> {args.out}"
    )


if __name__ == "__main__":
    run("blocking", main)
