"""The typed ``icpa`` params section shared by the three ICPA stages (train_align, pareto_finetune, icpa_eval).

:class:`ICPAParams` holds the section as written (sub-sections as mappings, so that a snapshot of it
fingerprints a run); its properties turn each sub-section into its typed config, with an unknown key or a
value of the wrong type reported as ``icpa.<section>.<key>``. :class:`EvalParams` is the evaluation protocol's
settings (``icpa.eval``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from crossmatch.errors import ConfigError
from crossmatch.icpa.config import AlignConfig, ModelConfig, PairConfig
from crossmatch.icpa.inference import EVAL_SCORES
from crossmatch.icpa.methods import METHODS, Schedule, check_methods
from crossmatch.icpa.rankers import RANKERS
from crossmatch.icpa.retrieval import RETRIEVALS
from crossmatch.params import section_as

T = TypeVar("T")


def _positive_numbers(name: str, vals: Any) -> tuple[float, ...]:
    if not isinstance(vals, (list, tuple)) or not vals or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in vals):
        raise ConfigError(f"icpa.eval.{name} must be a non-empty list of numbers > 0, got {vals!r}")
    return tuple(float(v) for v in vals)


def _count(value: Any, minimum: int) -> bool:
    """``value`` is an integer (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@dataclass(frozen=True)
class EvalParams:
    """The ``icpa.eval`` section: cut-offs, retrieval, rankers, hybrids and the bootstrap of the protocol."""

    ks: tuple[int, ...] = (1, 5, 10, 20, 50)  # NDCG@k / F@k cut-offs (10 is the headline)
    hit_ks: tuple[int, ...] = (1, 10)  # alignment hit@k
    exclude_history: bool = True  # candidates exclude the user's training items (§2.9, 2.9-B)
    user_weighting: str = "uniform"  # uniform | frequency (held-out events per user as query frequency)
    score: str = "sigmoid"  # eq. 10 item-item term: sigmoid (paper) | sigmoid_gamma | exp_gamma | softmax (retrieval.py)
    # eq. 10 retrieval without an items² matrix (crossmatch.icpa.retrieval): exact (blocked, running
    # top-k) | knn (each item's knn_k nearest candidates by inner product, faiss; approximate).
    retrieval: str = "exact"
    knn_k: int = 200
    # Non-learned rankers (crossmatch.icpa.rankers): their one setting is chosen on validation.
    # ease is a dense items² model (refused above 30 k items): leave it out for large catalogues.
    rankers: tuple[str, ...] = ("popularity", "cooccurrence", "itemknn", "ease")
    ease_lambdas: tuple[float, ...] = (10.0, 50.0, 200.0, 500.0)
    knn_ks: tuple[int, ...] = (50, 200)
    # Hybrids "<method>+<ranker>": (1 - w)·z(ranker) + w·z(method), w chosen on validation per source and seed.
    hybrid_methods: tuple[str, ...] = ("icpa", "soo")
    hybrid_rankers: tuple[str, ...] = ("ease",)
    hybrid_weights: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
    bootstrap: int = 2000  # paired-bootstrap resamples over users (negative-transfer verdict)
    # XMarket papers' protocol (crossmatch.icpa.sampled): the test positive among this many sampled
    # negatives, NDCG@10 / HR@10 (0: off). Reported beside the full-catalogue figures.
    sampled_negatives: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(int(k) for k in self.ks))
        object.__setattr__(self, "hit_ks", tuple(int(k) for k in self.hit_ks))
        for name in ("ease_lambdas", "hybrid_weights"):
            object.__setattr__(self, name, _positive_numbers(name, getattr(self, name)))
        if not self.knn_ks or not all(_count(v, 1) for v in self.knn_ks):
            raise ConfigError(f"icpa.eval.knn_ks must be a non-empty list of integers >= 1, got {self.knn_ks!r}")
        object.__setattr__(self, "knn_ks", tuple(self.knn_ks))
        object.__setattr__(self, "hybrid_methods", tuple(self.hybrid_methods))
        object.__setattr__(self, "hybrid_rankers", tuple(self.hybrid_rankers))
        object.__setattr__(self, "rankers", tuple(self.rankers))
        if not set(self.rankers) <= set(RANKERS) or not set(self.rankers) - {"popularity"}:
            raise ConfigError(f"icpa.eval.rankers must name rankers of {list(RANKERS)}, one besides popularity; "
                              f"got {list(self.rankers)!r}")
        bad = sorted(set(self.hybrid_rankers) - ({"cooccurrence", "itemknn", "ease"} & set(self.rankers)))
        if bad:
            raise ConfigError(f"icpa.eval.hybrid_rankers: unknown ranker(s) {bad}; known: cooccurrence, itemknn, ease "
                              "(and listed in icpa.eval.rankers)")
        if not _count(self.sampled_negatives, 0):
            raise ConfigError(f"icpa.eval.sampled_negatives must be an integer >= 0, got {self.sampled_negatives!r}")
        if not _count(self.bootstrap, 100):
            raise ConfigError(f"icpa.eval.bootstrap must be an integer >= 100, got {self.bootstrap!r}")
        if not self.ks or min(self.ks) < 1 or not self.hit_ks or min(self.hit_ks) < 1:
            raise ConfigError("icpa.eval.ks and icpa.eval.hit_ks must be non-empty lists of integers >= 1")
        if 10 not in self.ks:
            raise ConfigError("icpa.eval.ks must contain 10 (the headline NDCG@10 / F@10)")
        if self.score not in EVAL_SCORES:
            raise ConfigError(f"icpa.eval.score must be one of {list(EVAL_SCORES)}, got {self.score!r}")
        if self.retrieval not in RETRIEVALS:
            raise ConfigError(f"icpa.eval.retrieval must be one of {list(RETRIEVALS)}, got {self.retrieval!r}")
        if not _count(self.knn_k, 1):
            raise ConfigError(f"icpa.eval.knn_k must be an integer >= 1, got {self.knn_k!r}")
        if self.user_weighting not in ("uniform", "frequency"):
            raise ConfigError(f"icpa.eval.user_weighting must be 'uniform' or 'frequency', got {self.user_weighting!r}")


@dataclass(frozen=True)
class ICPAParams:
    """The ``icpa`` section of the params file."""

    sources: list[str] = field(default_factory=list)
    seed: int = 0
    seeds: int = 1  # repeats: seeds seed, seed + 1, ...; every figure is mean ± std over them
    device: str = "auto"
    # CUDA only (the CPU is always deterministic): deterministic kernels + CUBLAS_WORKSPACE_CONFIG
    # (crossmatch.icpa.train.configure_determinism); false lets CUDA pick its fastest kernels.
    deterministic: bool = True
    # > 1: train_align runs as this many processes through torchrun (crossmatch.icpa.distributed)
    world_size: int = 1
    checkpoint_every: int = 1
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    model: dict[str, Any] = field(default_factory=dict)
    pairs: dict[str, Any] = field(default_factory=dict)
    align: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ConfigError(f"icpa.sources must be a non-empty list of distinct names, got {self.sources!r}")
        check_methods(self.methods)
        if not _count(self.seeds, 1):
            raise ConfigError(f"icpa.seeds must be an integer >= 1 (the number of repeats), got {self.seeds!r}")
        if not _count(self.world_size, 1):
            raise ConfigError(f"icpa.world_size must be an integer >= 1, got {self.world_size!r}")
        if not isinstance(self.deterministic, bool):
            raise ConfigError(f"icpa.deterministic must be true or false, got {self.deterministic!r}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 1:
            raise ConfigError(f"icpa.checkpoint_every must be an integer >= 1, got {self.checkpoint_every!r}")

    @property
    def model_config(self) -> ModelConfig:
        return section_as(ModelConfig, self.model, "icpa.model")

    @property
    def pair_config(self) -> PairConfig:
        return section_as(PairConfig, self.pairs, "icpa.pairs")

    @property
    def align_config(self) -> AlignConfig:
        return section_as(AlignConfig, self.align, "icpa.align")

    @property
    def schedule_config(self) -> Schedule:
        cfg = dict(self.schedule)
        cfg.setdefault("beta", self.align_config.beta)
        return section_as(Schedule, cfg, "icpa.schedule")

    @property
    def eval_config(self) -> EvalParams:
        return section_as(EvalParams, self.eval, "icpa.eval")

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + r for r in range(self.seeds)]

    def check(self) -> None:
        """Build every typed sub-config once so that a bad key fails before any training."""
        _ = (self.model_config, self.pair_config, self.align_config, self.schedule_config, self.eval_config)


def seed_file(name: str, seed: int, first: int) -> str:
    """``<name>.pt`` for the first seed (what single-seed consumers read), ``<name>.seed<k>.pt`` after."""
    return f"{name}.pt" if seed == first else f"{name}.seed{seed}.pt"
