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
from crossmatch.bipoly.similarity import KINDS, SimilarityKind
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


@dataclass(frozen=True)
class IlpParams:
    """The exact methods (ALGORITHMS.md §1.4-1.7): which ILP families, their HiGHS limits and tuning."""

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
