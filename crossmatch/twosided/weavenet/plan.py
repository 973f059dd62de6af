"""What one WeaveNet training run trains (issue 13): the settings of a run and each model's plan.

One run trains one model for every distribution, or one per distribution (``per_distribution``; the paper's
protocol, §3.6), plus the size specialists ``"<dist>@<N>"`` of a starting set. :class:`WeaveNetRunConfig` holds
the ``weavenet_train`` params as given; :func:`plan` turns them into the checked model shape and training config
of one model, so a bad value stops the run before any model trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from crossmatch.errors import ConfigError
from crossmatch.twosided.generators import DISTRIBUTIONS
from crossmatch.twosided.weavenet.binarize import Binarize
from crossmatch.twosided.weavenet.checkpoints import split_key
from crossmatch.twosided.weavenet.imitation import Teacher
from crossmatch.twosided.weavenet.losses import LMForm, Objective
from crossmatch.twosided.weavenet.model import WeaveNetConfig
from crossmatch.twosided.weavenet.train import TrainConfig

PAPER_ASYM = ("UD", "Lib")  # §3.6 experiment 2: asymmetric variant for UD and Lib, symmetric otherwise


@dataclass(frozen=True)
class WeaveNetRunConfig:
    """The ``weavenet_train`` params: the model shape and training settings shared by every model of a run
    (ALGORITHMS.md §3.4–3.6), mapped onto the checked :class:`WeaveNetConfig` / :class:`TrainConfig` per model."""

    # The Literal fields hold plain YAML strings until model_config / train_config check them
    # (WeaveNetConfig and TrainConfig reject other values); nothing reads them before that.
    layers: int = 4
    dim: int = 16
    hidden: int = 32
    residual: bool = True
    variant: str = "asym"  # sym | asym | auto (the paper's choice per distribution)
    objective: str = "unsupervised"  # unsupervised | imitation | imitation+unsupervised
    target: Objective = "fsm"  # sm | fsm | bsm: the paper's loss family and the teacher's cost
    teacher: Teacher = "best_stable"
    unsupervised_weight: float = 1.0
    lm_form: LMForm = "code"
    per_distribution: bool = False  # one model per distribution, saved as a model set
    steps: int = 150
    batch_size: int = 8
    lr: float = 1.0e-4
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 0.0
    train_n: int | list[int] = 20
    distributions: list[str] = field(default_factory=lambda: list(DISTRIBUTIONS))
    val_n: int | list[int] = 20
    val_size: int = 20
    val_every: int = 50
    val_binarize: Binarize = "argmax"
    seed: int = 0
    device: str = "auto"
    max_seconds: float | None = None  # per model
    init_checkpoint: str | list[str] | None = None
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: to 0 over steps (our addition)
    ema_decay: float = 0.0  # > 0: validate and keep the weights' moving average (our addition)
    selection: Literal["paper", "blocking"] = "paper"  # paper (§3.6) | blocking (mean blocking pairs after Hungarian; our addition)

    def model_config(self, distribution: str | None = None) -> WeaveNetConfig:
        variant = self.variant
        if variant == "auto":
            variant = "asym" if distribution is None or distribution in PAPER_ASYM else "sym"
        try:
            return WeaveNetConfig(self.layers, self.dim, self.hidden, bool(self.residual), variant)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ConfigError(f"weavenet_train: {exc}") from None

    def train_config(self, distributions: list[str] | None = None) -> TrainConfig:
        if self.objective in ("sm", "fsm", "bsm"):
            raise ConfigError(f"weavenet_train.objective is now unsupervised | imitation | imitation+unsupervised; "
                              f"the paper's loss family moved to weavenet_train.target (set target: {self.objective})")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"weavenet_train.device must be auto | cpu | cuda[:k], got {self.device!r}")
        as_tuple = lambda v: tuple(int(x) for x in (v if isinstance(v, list) else [v]))  # noqa: E731
        try:
            return TrainConfig(
                steps=int(self.steps), batch_size=int(self.batch_size), lr=float(self.lr),
                optimizer=self.optimizer, weight_decay=float(self.weight_decay),
                objective=self.objective, target=self.target, teacher=self.teacher,  # type: ignore[arg-type]
                unsupervised_weight=float(self.unsupervised_weight), lm_form=self.lm_form,
                train_n=as_tuple(self.train_n), distributions=tuple(distributions or self.distributions),
                val_n=as_tuple(self.val_n), val_size=int(self.val_size), val_every=int(self.val_every),
                val_binarize=self.val_binarize, seed=int(self.seed),
                max_seconds=None if self.max_seconds is None else float(self.max_seconds),
                selection=self.selection, lr_schedule=self.lr_schedule, ema_decay=float(self.ema_decay),
            )
        except ValueError as exc:
            raise ConfigError(f"weavenet_train: {exc}") from None


def plan(params: WeaveNetRunConfig, group: str | None) -> tuple[str | None, WeaveNetConfig, TrainConfig]:
    """Model shape and training config of one model: ``group`` is a distribution, a size specialist's key
    ``"<dist>@<N>"`` (trained and validated at N only) or None (one model for every distribution)."""
    if group is None:
        return None, params.model_config(None), params.train_config(None)
    dist, n = split_key(group)
    cfg = params.train_config([dist])
    return group, params.model_config(dist), cfg if n is None else replace(cfg, train_n=(n,), val_n=(n,))
