"""Typed configuration of the ICPA model, pair sampling, alignment and training phases.

Every value defaults to ALGORITHMS.md §2.8 (the paper's hyper-parameters) unless a comment
says otherwise; ``__post_init__`` rejects out-of-range values with :class:`ConfigError` so a
bad ``params.yaml`` fails before any training starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from crossmatch.errors import ConfigError


def check_decay(name: str, value: object) -> None:
    """A moving-average decay in [0, 1) (0 = off), or a ConfigError naming ``name``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}")


def _positive(section: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{section}.{name} must be > 0, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Backbone of §2.3: embeddings, one sampled hop, double-tower MLP, gates."""

    embedding_dim: int = 8  # discrete features and IDs (§2.3.1)
    hidden: tuple[int, ...] = (256, 256, 32)  # tower MLP; the last entry is the output dimension
    neighbours: int = 5  # sampled neighbours per type (§2.3.2)
    gamma: float = 5.0  # logit scale of the reference code (§2.3.5)
    tower: str = "mlp"  # mlp | mmoe (the MMoE baseline of §2.10)
    pair_gate_hidden: int = 32  # pair-gate MLP 96 -> 32 -> m (§2.3.6)
    shared_tower: bool = False  # True: one tower for anchors and contexts (plain GraphSAGE, the GSAGE baseline)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if len(self.hidden) < 1 or any(h < 1 for h in self.hidden):
            raise ConfigError(f"icpa.model.hidden must be a non-empty list of positive widths, got {self.hidden}")
        _positive("icpa.model", embedding_dim=self.embedding_dim, neighbours=self.neighbours, gamma=self.gamma)
        if self.tower not in ("mlp", "mmoe"):
            raise ConfigError(f"icpa.model.tower must be 'mlp' or 'mmoe', got {self.tower!r}")

    @property
    def out_dim(self) -> int:
        return self.hidden[-1]


@dataclass(frozen=True)
class PairConfig:
    """Training pairs and mini-batches of §2.4."""

    batch_size: int = 1024
    negatives: int = 6  # from the positive's category, ∝ degree
    # Deviation (option, 0 = paper): extra negatives ∝ degree over all items of the source.
    # With many categories, same-category negatives never compare items across categories, so
    # all-items retrieval (eq. 10) is uncalibrated across them; a few global negatives fix that.
    global_negatives: int = 0
    positive_weight: float = 2.0
    # Deviation (option, "degree" = paper): draw negatives uniformly instead of ∝ degree. Degree-
    # proportional negatives make the score a PMI-like ratio that ranks rare items first; on
    # XMarket that puts all-items retrieval at chance (ID-only model, market ca: NDCG@10 0.0006
    # with degree negatives vs 0.039 with uniform ones after the same 300 steps).
    negative_sampling: str = "degree"
    # Random-walk positives drawn per anchor per epoch (node2vec's "walks per node" r). Each of
    # the r draws is an independent one-step walk with its own negatives; the r pairs of an
    # anchor share one forward pass of the anchor per step (see source_loss.source_loss).
    # 1 = one positive per anchor per epoch.
    walks_per_anchor: int = 1
    # Deviation (option, False = one category per batch): merge whole small categories into
    # batches of up to ``batch_size`` anchors; the alignment stays per category (sampler.category_batches).
    pack_categories: bool = False
    # Deviation (option, 0 = off: every pair draws its own negatives): shared negatives. Per step
    # and source, the global negatives of all pairs are drawn from one pool of this many nodes,
    # itself drawn from the same distribution (so each negative's marginal, and the loss's
    # expectation, are unchanged; only pairs of one step now share negatives). The pool is encoded
    # once, so a step encodes at most anchors + positives (+ same-category negatives) + pool nodes
    # whatever the catalogue size: with independent negatives the distinct contexts of a step
    # grow with the catalogue (256 anchors × 16 walks × 9 contexts ≈ 37 k draws; issue 11).
    # On CUDA this path also encodes every occurrence without ``torch.unique`` (fixed shapes,
    # no host sync); on the CPU it still encodes each distinct node once.
    negative_pool: int = 0
    # Deviation (option, "bce" = paper §2.4.3): "softmax" scores each positive against *every* node
    # of the step's shared pool (sampled softmax, InfoNCE) instead of a weighted BCE over a few
    # negatives. Eq. 10 ranks by exp(γ·s), i.e. by a softmax over items: this objective fits that
    # distribution directly (with uniform negatives; with degree negatives it learns log p/q, as BCE
    # does), and the pool's scores are already computed, so it costs nothing extra. Needs
    # ``negative_pool`` > 0 and global negatives; negatives equal to the positive are masked;
    # ``positive_weight`` is a BCE weight and is not used.
    objective: str = "bce"
    # "history" (deviation, crossmatch.icpa.history_loss): leave one item out of a user's training history and
    # score it with eq. 10 over ``history_length`` draws of the user's other items, softmax against the pool
    history_length: int = 8
    # Which item of a user is left out (history objective). "anchor": the step's anchor itself, i.e. targets
    # uniform over items. "interaction" (deviation, issue 10): a two-step walk anchor -> user -> item, so targets
    # lean towards popular items as evaluation targets do, and pool nodes equal to an item drawn into the row's
    # history are masked as accidental hits (the user holds them; its undrawn items can still be pool negatives).
    # "edge" (deviation, issue 10): each target and its user are one interaction drawn ∝ weight over the whole
    # source (history_loss.interaction_edges), so targets follow the interaction distribution exactly; masking as
    # "interaction". Validation chose edge on XMarket and interaction on the default preset (README)
    history_targets: str = "anchor"

    def __post_init__(self) -> None:
        _positive("icpa.pairs", batch_size=self.batch_size, positive_weight=self.positive_weight)
        if not isinstance(self.negative_pool, int) or isinstance(self.negative_pool, bool) or self.negative_pool < 0:
            raise ConfigError(f"icpa.pairs.negative_pool must be an integer >= 0, got {self.negative_pool!r}")
        if not isinstance(self.walks_per_anchor, int) or self.walks_per_anchor < 1:
            raise ConfigError(f"icpa.pairs.walks_per_anchor must be an integer >= 1, got {self.walks_per_anchor!r}")
        if self.negative_sampling not in ("degree", "uniform"):
            raise ConfigError(f"icpa.pairs.negative_sampling must be 'degree' or 'uniform', got {self.negative_sampling!r}")
        for name in ("negatives", "global_negatives"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ConfigError(f"icpa.pairs.{name} must be an integer >= 0, got {v!r}")
        if self.negatives + self.global_negatives < 1:
            raise ConfigError("icpa.pairs: need at least one negative (negatives + global_negatives >= 1)")
        if self.objective not in ("bce", "softmax", "history"):
            raise ConfigError(f"icpa.pairs.objective must be 'bce', 'softmax' or 'history', got {self.objective!r}")
        if not isinstance(self.history_length, int) or isinstance(self.history_length, bool) or self.history_length < 1:
            raise ConfigError(f"icpa.pairs.history_length must be an integer >= 1, got {self.history_length!r}")
        if self.history_targets not in ("anchor", "interaction", "edge"):
            raise ConfigError(f"icpa.pairs.history_targets must be 'anchor', 'interaction' or 'edge', got {self.history_targets!r}")
        if self.history_targets != "anchor" and self.objective != "history":
            raise ConfigError(f"icpa.pairs.history_targets {self.history_targets!r} only applies to objective 'history' "
                              f"(got objective {self.objective!r})")
        if self.objective == "history" and self.negatives:
            raise ConfigError("icpa.pairs.objective 'history' draws its negatives from the shared pool only: "
                              f"set negatives to 0 (got {self.negatives})")
        # 'history' reads only the pool; global_negatives > 0 is still asked for (it is the pool's switch elsewhere)
        if self.objective != "bce" and (self.negative_pool < 1 or self.global_negatives < 1):
            raise ConfigError(f"icpa.pairs.objective {self.objective!r} needs negative_pool > 0 and global_negatives > 0 "
                              f"(got negative_pool {self.negative_pool!r}, global_negatives {self.global_negatives!r})")

    @property
    def total_negatives(self) -> int:
        return self.negatives + self.global_negatives


@dataclass(frozen=True)
class AlignConfig:
    """Gated sliced alignment of §2.5 (eq. 5, 6, 9)."""

    beta: float = 1.0  # weight of the alignment loss; the paper's grid is ``beta_grid``
    beta_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # paper Fig. 4
    beta_sweep: bool = False  # train_align also trains phase 1 at every β of the grid and reports it
    swd_projections: int = 128
    sgwd_projections: int = 8  # the first 8 of the SWD directions (paper; §2.5 SGWD step 1)
    sgwd_pairs: int = 128  # index pairs (q, q') per step
    sgwd_weight: float = 1.0
    interp_length: int = 1024  # B' of the index interpolation
    discrepancy: str = "squared"  # squared: (a-b)^2 (standard SWD/SGW) | product: 1 - a*b (reference code)
    reverse_min: bool = False  # SWD: also try the reversed order and keep the min (reference code)
    gate_reduction: str = "mean"  # mean | sum over nodes in eq. 6 (see losses.gate_loss)
    gate_regulariser: str = "infomax"  # infomax: eq. 6 | hinge: code's mean-gate >= threshold
    gate_threshold: float = 0.8

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta_grid", tuple(float(b) for b in self.beta_grid))
        if any(b < 0 for b in self.beta_grid):
            raise ConfigError(f"icpa.align.beta_grid values must be >= 0, got {list(self.beta_grid)}")
        if self.beta < 0:
            raise ConfigError(f"icpa.align.beta must be >= 0, got {self.beta}")
        _positive("icpa.align", swd_projections=self.swd_projections, sgwd_pairs=self.sgwd_pairs,
                  interp_length=self.interp_length)
        if not 0 <= self.sgwd_projections <= self.swd_projections:
            raise ConfigError(
                f"icpa.align.sgwd_projections must lie in [0, swd_projections={self.swd_projections}], "
                f"got {self.sgwd_projections}"
            )
        if self.sgwd_weight < 0:
            raise ConfigError(f"icpa.align.sgwd_weight must be >= 0, got {self.sgwd_weight}")
        if self.discrepancy not in ("squared", "product"):
            raise ConfigError(f"icpa.align.discrepancy must be 'squared' or 'product', got {self.discrepancy!r}")
        if self.gate_reduction not in ("mean", "sum"):
            raise ConfigError(f"icpa.align.gate_reduction must be 'mean' or 'sum', got {self.gate_reduction!r}")
        if self.gate_regulariser not in ("infomax", "hinge"):
            raise ConfigError(
                f"icpa.align.gate_regulariser must be 'infomax' or 'hinge', got {self.gate_regulariser!r}"
            )
        if not 0 < self.gate_threshold < 1:
            raise ConfigError(f"icpa.align.gate_threshold must lie in (0, 1), got {self.gate_threshold}")


@dataclass(frozen=True)
class PhaseConfig:
    """One training run: which losses, which weighting, which alignment.

    ``alignment``: ``none`` (β = 0, no gates), ``live`` (plans and gates recomputed from the
    current model, gates trained: phase 1 and *w/o Front*), ``frozen`` (plans, gates from the
    phase-1 model, §2.6 phase 2).
    """

    epochs: int = 1
    weighting: str = "random_convex"  # a key of crossmatch.icpa.weighting.WEIGHTINGS
    weighting_options: dict[str, Any] = field(default_factory=dict)
    alignment: str = "live"
    beta: float = 1.0
    lr: float = 0.02  # Adagrad (§2.8)
    # Deviation (option, None = lr for every weight as in the paper): learning rate of the
    # embedding tables (item identities, categorical features, users, categories). Their
    # gradients reach them through the tower and are orders of magnitude smaller than the
    # tower's, and each row only gets a gradient in the steps where its node occurs; one
    # Adagrad rate cannot serve both (see train.Trainer).
    embedding_lr: float | None = None
    adagrad_initial_accumulator: float = 0.1  # TensorFlow's default; torch's is 0 (see train.Trainer)
    # Deviation (option, "adagrad" = paper): "adam" (torch defaults β = (0.9, 0.999)) reaches a
    # given loss in fewer steps on our CPU budgets (see train.Trainer).
    optimizer: str = "adagrad"
    sources: tuple[int, ...] | None = None  # indices of the sources whose losses train (SOO: the target)
    target: int | None = None  # target source j* of phase 2
    # Optimisation-step budget (None: whole epochs). Equal budgets (issue 10): SOO trains on one
    # source, so an epoch is a few steps; it gets as many epochs as it needs to reach the joint
    # models' step count, and stops there mid-epoch.
    max_steps: int | None = None
    # Deviation (option, 0 = off: the paper uses the last weights): an exponential moving average of the
    # weights, decay per optimiser step (Trainer._update_average), replaces the weights when the phase ends.
    # Polyak averaging damps the step-to-step noise of small sources, whose rows are updated every step.
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        check_decay("ema_decay", self.ema_decay)
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 0):
            raise ConfigError(f"max_steps must be an integer >= 0 or None, got {self.max_steps!r}")
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise ConfigError(f"epochs must be an integer >= 0, got {self.epochs!r}")
        if self.alignment not in ("none", "live", "frozen"):
            raise ConfigError(f"alignment must be 'none', 'live' or 'frozen', got {self.alignment!r}")
        if self.beta < 0:
            raise ConfigError(f"beta must be >= 0, got {self.beta}")
        _positive("phase", lr=self.lr)
        if self.embedding_lr is not None:
            _positive("phase", embedding_lr=self.embedding_lr)
        if self.optimizer not in ("adagrad", "adam"):
            raise ConfigError(f"optimizer must be 'adagrad' or 'adam', got {self.optimizer!r}")
        if self.adagrad_initial_accumulator < 0:
            raise ConfigError(f"adagrad_initial_accumulator must be >= 0, got {self.adagrad_initial_accumulator}")
        if self.sources is not None:
            object.__setattr__(self, "sources", tuple(int(s) for s in self.sources))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
