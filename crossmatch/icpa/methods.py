"""ICPA, its baselines and ablations as configurations of one training code (§2.6, 2.10, 2.11).

=============  ======================================================================
method         how it trains
=============  ======================================================================
``icpa``       phase 1 (random convex λ + β·alignment, live gates) → phase 2 for the
               target (ParetoMTL, frozen plans and gates)
``wo_align``   the same two phases with β = 0 (no alignment, no gates)
``wo_pareto``  ICPA's phase 1 → phase 2 with fixed linear weights z/Σz
``wo_front``   no phase 1: ParetoMTL + live alignment from scratch, both phases' epochs
``soo``        the target source alone, Base model, both phases' epochs
``base``       all sources, equal weights, no alignment, both phases' epochs
``mmoe``       Base with an MMoE tower (one expert and one gate per source)
``gsage``      plain unsupervised GraphSAGE: Base with one shared tower (one embedding
               per node, no double tower), all sources, equal weights
``m2grl``      M2GRL-style multi-view learning: Base with learned uncertainty weights
               ``e^{−s_j} L_j + s_j`` over the per-source losses (Kendall et al. 2018)
``dgi``        Deep Graph Infomax (PyG ``DeepGraphInfomax``) per source on the item–item
               graph (``crossmatch.icpa.dgi``; not this trainer)
=============  ======================================================================

``base``, ``mmoe`` and ``wo_front`` get the same number of epochs as phase 1 + phase 2 over
the same sources, hence the same number of optimisation steps. ``soo`` trains on one source,
whose epoch is only a few steps: with ``budget_steps`` it gets the joint models' step count
(issue 10: equal budgets, equal capacity — the same model class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crossmatch.errors import ConfigError
from crossmatch.icpa.config import PhaseConfig, check_decay

METHODS: tuple[str, ...] = ("icpa", "soo", "base", "mmoe", "wo_align", "wo_pareto", "wo_front", "gsage", "m2grl",
                             "dgi")
LABELS: dict[str, str] = {
    "icpa": "ICPA", "soo": "SOO", "base": "Base", "mmoe": "MMoE", "wo_align": "w/o Align",
    "wo_pareto": "w/o Pareto", "wo_front": "w/o Front", "icpa_phase1": "ICPA phase 1", "gsage": "GSAGE",
    "m2grl": "M2GRL", "dgi": "DGI",
    "wo_align_phase1": "w/o Align phase 1",
}
# Methods that need a phase-2 run per target source (the others are target-independent).
PER_TARGET: tuple[str, ...] = ("icpa", "soo", "wo_align", "wo_pareto", "wo_front")
JOINT: tuple[str, ...] = ("base", "mmoe", "gsage", "m2grl")


@dataclass(frozen=True)
class Schedule:
    """The knobs shared by all methods (params ``icpa.phase1`` / ``icpa.phase2``)."""

    phase1_epochs: int = 10
    phase2_epochs: int = 5
    beta: float = 1.0
    lr: float = 0.02
    embedding_lr: float | None = None  # None: lr (see PhaseConfig.embedding_lr)
    adagrad_initial_accumulator: float = 0.1
    optimizer: str = "adagrad"  # adagrad (paper) | adam
    lambda_distribution: str = "uniform"
    epsilon: float = 0.1
    pmtl: dict[str, Any] = field(default_factory=dict)  # sign, include_uniform, rescale, tol
    ema_decay: float = 0.0  # weight averaging per phase (see PhaseConfig.ema_decay); 0 = off

    def __post_init__(self) -> None:
        for name in ("phase1_epochs", "phase2_epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ConfigError(f"icpa: {name} must be an integer >= 0, got {v!r}")
        check_decay("icpa.schedule.ema_decay", self.ema_decay)

    @property
    def total_epochs(self) -> int:
        return self.phase1_epochs + self.phase2_epochs


def _optimiser(schedule: Schedule) -> dict[str, Any]:
    """The optimiser settings every method shares (same budget and optimiser for a fair comparison)."""
    return {"lr": schedule.lr, "embedding_lr": schedule.embedding_lr,
            "adagrad_initial_accumulator": schedule.adagrad_initial_accumulator, "optimizer": schedule.optimizer,
            "ema_decay": schedule.ema_decay}


def check_methods(methods: list[str] | tuple[str, ...]) -> None:
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; known: {list(METHODS)}")


def phase1_config(schedule: Schedule, *, align: bool) -> PhaseConfig:
    """ICPA phase 1 (``align=True``) or the *w/o Align* phase 1 (β = 0)."""
    return PhaseConfig(
        epochs=schedule.phase1_epochs, weighting="random_convex",
        weighting_options={"distribution": schedule.lambda_distribution},
        alignment="live" if align else "none", beta=schedule.beta if align else 0.0, **_optimiser(schedule),
    )


def phase2_config(method: str, target: int, schedule: Schedule) -> PhaseConfig:
    """Phase 2 of ``icpa``, ``wo_align`` or ``wo_pareto`` for ``target`` (starts from a phase-1 model)."""
    if method == "icpa":
        return PhaseConfig(epochs=schedule.phase2_epochs, weighting="pareto_mtl",
                           weighting_options={"epsilon": schedule.epsilon, **schedule.pmtl},
                           alignment="frozen", beta=schedule.beta, **_optimiser(schedule), target=target)
    if method == "wo_align":
        return PhaseConfig(epochs=schedule.phase2_epochs, weighting="pareto_mtl",
                           weighting_options={"epsilon": schedule.epsilon, **schedule.pmtl},
                           alignment="none", beta=0.0, **_optimiser(schedule), target=target)
    if method == "wo_pareto":
        return PhaseConfig(epochs=schedule.phase2_epochs, weighting="fixed_linear",
                           weighting_options={"epsilon": schedule.epsilon},
                           alignment="frozen", beta=schedule.beta, **_optimiser(schedule), target=target)
    raise ConfigError(f"method {method!r} has no phase 2")


def single_config(method: str, target: int | None, schedule: Schedule, *, budget_steps: int | None = None,
                  epoch_steps: int | None = None) -> PhaseConfig:
    """One-phase methods: ``soo`` and ``wo_front`` (per target), ``base`` and ``mmoe`` (joint).

    ``budget_steps`` / ``epoch_steps`` (``soo`` only): train ``budget_steps`` optimisation steps,
    ``ceil(budget_steps / epoch_steps)`` epochs of the target alone.
    """
    epochs = schedule.total_epochs
    if method == "soo":
        if target is None:
            raise ConfigError("soo needs a target source")
        max_steps = None
        if budget_steps is not None:
            if not epoch_steps or epoch_steps < 1:
                raise ConfigError("soo: an equal step budget needs the steps per epoch of the target")
            epochs, max_steps = -(-budget_steps // epoch_steps), budget_steps
        return PhaseConfig(epochs=epochs, weighting="equal", alignment="none", beta=0.0, **_optimiser(schedule),
                           sources=(target,), target=target, max_steps=max_steps)
    if method == "wo_front":
        if target is None:
            raise ConfigError("wo_front needs a target source")
        return PhaseConfig(epochs=epochs, weighting="pareto_mtl",
                           weighting_options={"epsilon": schedule.epsilon, **schedule.pmtl},
                           alignment="live", beta=schedule.beta, **_optimiser(schedule), target=target)
    if method in ("base", "mmoe", "gsage"):
        return PhaseConfig(epochs=epochs, weighting="equal", alignment="none", beta=0.0, **_optimiser(schedule))
    if method == "m2grl":
        return PhaseConfig(epochs=epochs, weighting="uncertainty", alignment="none", beta=0.0, **_optimiser(schedule))
    raise ConfigError(f"method {method!r} is not a one-phase method")
