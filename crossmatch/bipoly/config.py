"""Typed settings of the blocking protocol (ALGORITHMS.md §1.3 "Parameter search", §1.10; paper Sec. V-C, VI).

:class:`BlockingParams` holds every knob of :func:`crossmatch.bipoly.blocking.run_blocking`, with its
sub-settings: the greedy ω/η grid, the exact ILPs, the item-to-category scenario and meta-blocking.
Values read from YAML are checked here (:func:`crossmatch.params.check_fields` for types, ``__post_init__``
for ranges and choices); every error is a :class:`~crossmatch.errors.ConfigError` naming the key as
``blocking.<key>``. Nested sections may be given as mappings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from crossmatch.bipoly.grid import GREEDY_METHODS, value_range
from crossmatch.bipoly.instance import Side
from crossmatch.bipoly.labelled import LabelParams
from crossmatch.bipoly.similarity import KINDS, LEXICAL_KINDS, SimilarityKind
from crossmatch.bipoly.union import UnionParams
from crossmatch.errors import ConfigError
from crossmatch.params import check_fields

ILP_FAMILIES: tuple[str, ...] = ("bipoly", "poly", "bipartite", "uflp")


def _sub(cls: type, value: Any, name: str) -> Any:
    """A nested section as ``cls``: unknown keys and values of the wrong type are errors naming ``name.<key>``."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"params: '{name}' must be a mapping, got {value!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"params.yaml: unknown key(s) {unknown} under '{name}'; known: {sorted(known)}")
    try:
        return cls(**check_fields(cls, value, name))
    except TypeError as exc:
        raise ConfigError(f"params.yaml: '{name}': {exc}") from None


@dataclass(frozen=True)
class GridParams:
    """The greedy methods' ω/η grid (paper: ``[-1, 1]`` in steps of 0.1 on both axes, sides tied)."""

    omega: list[float] = field(default_factory=lambda: [-1.0, 1.0, 0.1])  # [start, stop, step]
    eta: list[float] = field(default_factory=lambda: [-1.0, 1.0, 0.1])
    tie_sides: bool = True


ILP_GRIDS: tuple[str, ...] = ("tuned", "full")


@dataclass(frozen=True)
class IlpParams:
    """The exact methods (ALGORITHMS.md §1.4-1.7): which ILP families, their HiGHS limits and tuning.

    ``grid``: ``tuned`` solves each family once, at the ω/η its greedy counterpart was tuned to (plus
    max-weight); ``full`` solves it at every point of the tied ``grid_axis`` × ``grid_axis`` grid on every
    partition and keeps the best on the tuning labels (25× the solves at the default axis). ``null``
    reads as ``tuned`` and a ``[start, stop, step]`` list as ``full`` on that axis (earlier params files).

    ``total_time_limit`` bounds the wall time of all ILP solves of one run together: a solve starts with
    ``min(time_limit, what is left)``, and once nothing is left the remaining solves return their greedy
    warm start. Where the budget cuts a solve the result depends on the machine's speed, so the metrics
    say whether it was hit (``ilp_budget.hit``); on the default world it is not.

    ``max_partition``: the most categories (both sides together) one ILP is given. A larger partition is
    cut into connected pieces of the candidate graph, keeping its strongest similarities together
    (:func:`crossmatch.bipoly.partition.cap_parts`); pieces that fit are exact, a cut drops the weakest
    pairs between pieces.
    """

    methods: list[str] = field(default_factory=lambda: list(ILP_FAMILIES))
    time_limit: float = 10.0
    mip_gap: float = 1e-4
    max_weight: bool = True  # also solve each family with ω = η = 0
    warm_start: bool = True
    grid: Any = "tuned"  # tuned | full (see the class doc)
    grid_axis: list[float] = field(default_factory=lambda: [-1.0, 1.0, 0.5])  # [start, stop, step] of grid: full
    node_limit: int | None = None  # HiGHS branch-and-bound nodes per solve: a limit that cuts every machine's solve alike
    total_time_limit: float | None = None  # seconds for all ILP solves together (null: no budget; params.yaml: 60)
    max_partition: int | None = None  # categories per ILP, both sides (null: no cap; params.yaml: 100)

    def __post_init__(self) -> None:
        if self.time_limit <= 0 or self.mip_gap < 0:
            raise ConfigError(f"blocking.ilp.time_limit must be > 0 s and blocking.ilp.mip_gap >= 0, "
                              f"got {self.time_limit} and {self.mip_gap}")
        bad = [m for m in self.methods if m not in ILP_FAMILIES]
        if bad:
            raise ConfigError(f"blocking.ilp.methods: unknown {bad}; choose from {list(ILP_FAMILIES)}")
        if self.grid is None:
            object.__setattr__(self, "grid", "tuned")
        elif isinstance(self.grid, list):
            object.__setattr__(self, "grid_axis", list(self.grid))
            object.__setattr__(self, "grid", "full")
        if self.grid not in ILP_GRIDS:
            raise ConfigError(f"blocking.ilp.grid must be one of {list(ILP_GRIDS)}, got {self.grid!r}")
        value_range(self.grid_axis)
        if self.node_limit is not None and self.node_limit < 1:
            raise ConfigError(f"blocking.ilp.node_limit must be >= 1 or null, got {self.node_limit}")
        if self.total_time_limit is not None and not self.total_time_limit > 0:
            raise ConfigError(f"blocking.ilp.total_time_limit must be > 0 s or null, got {self.total_time_limit}")
        if self.max_partition is not None and self.max_partition < 2:
            raise ConfigError(f"blocking.ilp.max_partition must be >= 2 categories or null, got {self.max_partition}")


@dataclass(frozen=True)
class UntunedParams:
    """The fixed setting used when there are no labelled pairs to tune on (own data without truth).

    Defaults: the rewards the default preset's tuning selects for BiPoly.C (the default ``select``):
    ω = η = −1 on TF-IDF (``metrics/blocking.json``; BiPoly.S is tuned to ω = −1, η = 0 there).
    ``similarity`` is used where ``blocking.similarity`` is ``best`` (choosing needs labels).
    """

    omega: float = -1.0
    eta: float = -1.0
    similarity: str = "tfidf"

    def __post_init__(self) -> None:
        if self.similarity not in KINDS:
            raise ConfigError(f"blocking.untuned.similarity must be one of {list(KINDS)}, got {self.similarity!r}")


@dataclass(frozen=True)
class ScenarioParams:
    """The item-to-category scenario (§1.10) on the left source."""

    enabled: bool = False
    p: float = 0.05
    seed: int = 0
    top_k: int | None = 10


@dataclass(frozen=True)
class MetaParams:
    """Meta-blocking of product pairs with BiPoly over categories (paper Sec. V-F)."""

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
    """Every setting of the blocking protocol between the sources ``left`` and ``right``."""

    left: str = "alpha"
    right: str = "beta"
    # jaccard | overlap | tfidf | best (per method, the best on the tuning labels). The Literal types of
    # similarity and host_side hold once __post_init__ has checked the values read from YAML.
    similarity: SimilarityKind | Literal["best"] = "tfidf"
    # the kinds `best` chooses among; minilm (packaged sentence encoder over titles) and icpa (the stage's
    # --embeddings) are centroids of item embeddings (crossmatch.bipoly.embedding), opt-in: they cost an encoding
    best_of: list[SimilarityKind] = field(default_factory=lambda: list(LEXICAL_KINDS))
    neighbours_k: int = 10  # the neighbours kind: nearest title neighbours each item proposes (bipoly.neighbours)
    top_k: int | None = 20
    rescale: bool = True
    host_side: Side = "left"
    partition_by: str | None = None  # item column shared by both sources; pairs across its values are dropped
    methods: list[str] = field(default_factory=lambda: [*GREEDY_METHODS, "kcore"])
    kcore_k: int = 2
    select: str = "bipoly_c"  # method written to blocks/candidate_pairs ("metablocking" allowed)
    # candidate_pairs.parquet lists every item pair of the selected blocks only up to this many pairs: beyond it
    # (one huge block: no fine taxonomy, one shared category) only blocks.parquet is written, and the match stage
    # keeps each item's top-k partners inside such blocks instead of a quadratic list (null: no limit)
    max_listed_pairs: int | None = 5_000_000
    runner: str = "process"  # thread | process
    workers: int = 2
    seed: int = 0
    grid: Any = field(default_factory=GridParams)
    ilp: Any = field(default_factory=IlpParams)
    scenario: Any = field(default_factory=ScenarioParams)
    metablocking: Any = field(default_factory=MetaParams)
    untuned: Any = field(default_factory=UntunedParams)  # the setting used without labelled pairs
    labels: Any = field(default_factory=LabelParams)  # the cross-fitted `labels` similarity kind (off by default)
    # BiPoly plus the labelled category pairs, cross-fitted (crossmatch.bipoly.union; off by default)
    labelled_union: Any = field(default_factory=UnionParams)
    # generalisation protocol (issue 12): tune on these truth splits, report on those (null: all labels for both)
    tune_splits: list[str] | None = None
    report_splits: list[str] | None = None

    def __post_init__(self) -> None:
        for name, cls in (("grid", GridParams), ("ilp", IlpParams), ("scenario", ScenarioParams),
                          ("metablocking", MetaParams), ("untuned", UntunedParams), ("labels", LabelParams),
                          ("labelled_union", UnionParams)):
            object.__setattr__(self, name, _sub(cls, getattr(self, name), f"blocking.{name}"))
        if self.similarity not in (*KINDS, "best"):
            raise ConfigError(f"blocking.similarity must be one of {[*KINDS, 'best']}, got {self.similarity!r}")
        bad_kinds = [k for k in self.best_of if k not in KINDS]
        if bad_kinds or not self.best_of:
            raise ConfigError(f"blocking.best_of must be a non-empty list of {list(KINDS)}, got {self.best_of!r}")
        if isinstance(self.neighbours_k, bool) or not isinstance(self.neighbours_k, int) or self.neighbours_k < 1:
            raise ConfigError(f"blocking.neighbours_k must be an integer >= 1, got {self.neighbours_k!r}")
        if self.labels.enabled:
            computed = list(self.best_of) if self.similarity == "best" else [self.similarity]
            if self.labels.base not in computed:
                raise ConfigError(f"blocking.labels.base must be a similarity kind the blocking computes {computed}, "
                                  f"got {self.labels.base!r}")
        if self.labelled_union.enabled:
            missing = [m for m in self.labelled_union.methods if m not in self.methods]
            if missing:
                raise ConfigError(f"blocking.labelled_union.methods {missing} are not in blocking.methods {self.methods}")
            if not self.tune_splits or not self.report_splits:
                raise ConfigError("blocking.labelled_union needs held-out reporting labels: set tune_splits and "
                                  "report_splits (it holds the tuning positives' category pairs)")
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
        if self.max_listed_pairs is not None and (isinstance(self.max_listed_pairs, bool)
                                                  or not isinstance(self.max_listed_pairs, int)
                                                  or self.max_listed_pairs < 1):
            raise ConfigError(f"blocking.max_listed_pairs must be an integer >= 1 or null, got {self.max_listed_pairs!r}")
