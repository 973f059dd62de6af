"""WeaveNet training with fresh instances every step and validation-based checkpoint selection (ALGORITHMS.md §3.6).

Pure: no paths. The caller (``stages.weavenet_train``) decides where the returned state goes.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from crossmatch.device import resolve_device  # noqa: F401  (re-exported: the stages import it from here)
from crossmatch.twosided.costs import blocking_pairs_batch, costs_batch, is_one_to_one_batch
from crossmatch.twosided.generators import DISTRIBUTIONS, generate, split_rng
from crossmatch.twosided.instance import ranks_from_satisfaction
from crossmatch.twosided.weavenet.binarize import Binarize, binarize
from crossmatch.twosided.weavenet.checkpoints import checkpoint, load_model
from crossmatch.twosided.weavenet.imitation import TEACHERS, Teacher, imitation_loss, teacher_matchings
from crossmatch.twosided.weavenet.losses import LMForm, LossWeights, Objective, total_loss
from crossmatch.twosided.weavenet.model import WeaveNet, WeaveNetConfig, dual_softmax

__all__ = ["TrainConfig", "TrainResult", "checkpoint", "load_model", "train", "validate", "predict_logits"]

Training = Literal["unsupervised", "imitation", "imitation+unsupervised"]
TRAININGS: tuple[str, ...] = ("unsupervised", "imitation", "imitation+unsupervised")


@dataclass(frozen=True)
class TrainConfig:
    """Training protocol (§3.6). Paper: Adam, lr 1e-4, batch 8, 200k iterations at N = 30.

    ``objective``: ``unsupervised`` = the paper's losses only (eq. 3–10, family ``target``: sm | fsm | bsm);
    ``imitation`` = cross-entropy against a ``teacher``'s stable matching (:mod:`.imitation`, our addition);
    ``imitation+unsupervised`` = both, the paper's total weighted by ``unsupervised_weight``.
    ``lm_form``: ``code`` (default, the authors' normed correlation) or ``printed`` (eq. 6 cosine); §3.5-A.
    ``distributions``: training batches cycle through these (one distribution per batch); the paper trains
    one model per distribution (pass one).
    ``train_n``: instance sizes, cycled independently of the distributions (the model is size-agnostic).
    ``max_seconds`` stops early on a wall-clock budget (the step count reached is reported).
    ``lr_schedule``: ``constant`` (the paper's) or ``cosine`` (decay from ``lr`` to 0 over ``steps``, so set
    ``steps`` to what fits the budget); ``ema_decay`` > 0 validates and keeps an exponential moving average of the
    weights and BatchNorm statistics instead of the raw weights (both our additions, for short CPU budgets).
    ``selection``: ``paper`` = the §3.6 rule (:func:`validation_score`); ``blocking`` = mean blocking pairs
    of Hungarian-binarised outputs, a continuous stability measure for models whose stable rate is still
    ~0 (then the paper's rule degenerates to picking the lowest cost). Our addition, not the paper's.
    """

    steps: int = 200
    batch_size: int = 8
    lr: float = 1e-4
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 0.0
    objective: Training = "unsupervised"
    target: Objective = "fsm"
    teacher: Teacher = "best_stable"
    unsupervised_weight: float = 1.0
    train_n: tuple[int, ...] = (30,)
    distributions: tuple[str, ...] = tuple(DISTRIBUTIONS)
    val_n: tuple[int, ...] = (30,)
    val_size: int = 40
    val_every: int = 100
    seed: int = 0
    lm_form: LMForm = "code"
    max_seconds: float | None = None
    selection: Literal["paper", "blocking"] = "paper"
    val_binarize: Binarize = "argmax"
    lr_schedule: Literal["constant", "cosine"] = "constant"
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        unknown = [d for d in self.distributions if d not in DISTRIBUTIONS]
        if unknown or not self.distributions:
            raise ValueError(f"distributions must be a non-empty subset of {sorted(DISTRIBUTIONS)}, got {self.distributions}")
        if self.selection not in ("paper", "blocking"):
            raise ValueError(f"selection must be 'paper' or 'blocking', got {self.selection!r}")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.steps < 0 or self.batch_size < 1 or self.val_every < 1 or self.val_size < 1:
            raise ValueError("steps >= 0, batch_size >= 1, val_every >= 1 and val_size >= 1 are required")
        if not self.train_n or min(self.train_n) < 2 or not self.val_n or min(self.val_n) < 2:
            raise ValueError("train_n and val_n must be >= 2")
        if self.objective not in TRAININGS:
            raise ValueError(f"objective must be one of {TRAININGS}, got {self.objective!r}")
        if self.target not in ("sm", "fsm", "bsm"):
            raise ValueError(f"target must be 'sm', 'fsm' or 'bsm', got {self.target!r}")
        if self.teacher not in TEACHERS:
            raise ValueError(f"teacher must be one of {TEACHERS}, got {self.teacher!r}")
        if self.lm_form not in ("code", "printed"):
            raise ValueError(f"lm_form must be 'code' or 'printed', got {self.lm_form!r}")
        if self.val_binarize not in ("argmax", "hungarian"):
            raise ValueError(f"val_binarize must be 'argmax' or 'hungarian', got {self.val_binarize!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not self.unsupervised_weight >= 0:
            raise ValueError(f"unsupervised_weight must be >= 0, got {self.unsupervised_weight}")


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    best_step: int
    best_score: float
    best_val: dict[str, float]
    steps_done: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


@torch.no_grad()
def predict_logits(model: WeaveNet, sa: np.ndarray, sb: np.ndarray, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Logit matrices ``m̂`` (``B × N × M``) in eval mode, in chunks of ``batch_size`` instances."""
    model.eval()
    out = []
    for k in range(0, sa.shape[0], batch_size):
        ta = torch.as_tensor(sa[k:k + batch_size], dtype=torch.float32, device=device)
        tb = torch.as_tensor(sb[k:k + batch_size], dtype=torch.float32, device=device)
        out.append(model(ta, tb).float().cpu().numpy())
    return np.concatenate(out, axis=0) if out else np.zeros((0,) + sa.shape[1:], dtype=np.float32)


def outcome(sa: np.ndarray, sb: np.ndarray, match: np.ndarray) -> dict[str, np.ndarray]:
    """Per-instance one-to-one flag, blocking pairs, stable flag and 1-based costs of binarised outputs (§3.7)."""
    ra = ranks_from_satisfaction(sa) - 1
    rb = ranks_from_satisfaction(sb) - 1
    one2one = is_one_to_one_batch(match, sa.shape[2]) & (match >= 0).all(axis=1)
    nbp = blocking_pairs_batch(ra, rb, match)
    res = costs_batch(ra, rb, match)
    res.update(one2one=one2one, blocking=nbp, stable=one2one & (nbp == 0))
    return res


def validation_score(metrics: dict[str, float], objective: Objective, selection: str = "paper") -> float:
    """Lower is better. ``sm``: failure rate; ``fsm``/``bsm``: mean SEq/Bal after a penalty of N per
    unsuccessful instance (§3.6, the repo's rule; Bal is a cost here, fixing the repo's sign bug).
    ``selection="blocking"``: mean blocking pairs after Hungarian binarisation (see :class:`TrainConfig`)."""
    if selection == "blocking":
        return metrics["hungarian_blocking"]
    if objective == "sm":
        return 1.0 - metrics["stable_rate"]
    return metrics["penalised_seq" if objective == "fsm" else "penalised_bal"]


def validate(model: WeaveNet, val: Sequence[tuple[np.ndarray, np.ndarray]], device: torch.device,
             method: Binarize = "argmax") -> dict[str, float]:
    """Stable rate and (penalised) mean costs over the fixed validation sets; ``seq_stable`` is the mean SEq
    over the stable outputs only (NaN when none is stable)."""
    stable, seq, bal, pen_seq, pen_bal, hung_bp = [], [], [], [], [], []
    for sa, sb in val:
        logits = predict_logits(model, sa, sb, device)
        match = binarize(logits, method)
        o = outcome(sa, sb, match)
        hung_bp.append(outcome(sa, sb, binarize(logits, "hungarian"))["blocking"])
        n = sa.shape[1]
        stable.append(o["stable"])
        seq.append(o["seq"])
        bal.append(o["bal"])
        pen_seq.append(o["seq"] + n * ~o["stable"])
        pen_bal.append(o["bal"] + n * ~o["stable"])
    cat = np.concatenate
    st, sq = cat(stable), cat(seq)
    return {
        "stable_rate": float(st.mean()),
        "seq_stable": float(sq[st].mean()) if st.any() else math.nan,
        "seq": float(cat(seq).mean()),
        "bal": float(cat(bal).mean()),
        "penalised_seq": float(cat(pen_seq).mean()),
        "penalised_bal": float(cat(pen_bal).mean()),
        "hungarian_blocking": float(cat(hung_bp).mean()),
    }


def validation_sets(cfg: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """The fixed, seeded validation instances: ``val_size`` per training distribution and size in ``val_n``."""
    return [generate(d, n, cfg.val_size, split_rng(cfg.seed, "val", d, n)) for d in cfg.distributions for n in cfg.val_n]


def step_losses(logits: torch.Tensor, sa_np: np.ndarray, sb_np: np.ndarray, sa: torch.Tensor, sb: torch.Tensor,
                cfg: TrainConfig, weights: LossWeights) -> dict[str, torch.Tensor]:
    """Per-instance loss components of one batch for ``cfg.objective``; ``total`` is what is minimised.

    Imitation: ``L_imit`` (:func:`.imitation.imitation_loss`); unsupervised: the paper's eq. 3–5 total
    (``m``, ``s`` and ``f``/``b`` components); both: ``L_imit + unsupervised_weight · L_paper``."""
    parts: dict[str, torch.Tensor] = {}
    total = torch.zeros(logits.shape[0], device=logits.device)
    if cfg.objective in ("imitation", "imitation+unsupervised"):
        t = teacher_matchings(sa_np, sb_np, teacher=cfg.teacher, target="bal" if cfg.target == "bsm" else "seq")
        parts["imit"] = imitation_loss(logits, torch.as_tensor(t, device=logits.device))
        total = total + parts["imit"]
    if cfg.objective in ("unsupervised", "imitation+unsupervised"):
        ma, mb = dual_softmax(logits)
        paper = total_loss(ma, mb, sa, sb, cfg.target, weights, logits=logits, lm_form=cfg.lm_form)
        parts.update({k: v for k, v in paper.items() if k != "total"})
        w = 1.0 if cfg.objective == "unsupervised" else cfg.unsupervised_weight
        total = total + w * paper["total"]
    parts["total"] = total
    return parts


def train(
    model_cfg: WeaveNetConfig,
    cfg: TrainConfig,
    *,
    device: torch.device | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    weights: LossWeights | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a WeaveNet (§3.6): fresh random instances every step, validation every ``val_every`` steps
    (and before the first step), keep the state with the best validation score."""
    device = device or torch.device("cpu")
    weights = weights or LossWeights()
    torch.manual_seed(cfg.seed)
    model = WeaveNet(model_cfg).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1)) if cfg.lr_schedule == "cosine" else None
    # The averaged copy is what validation sees and what is kept; the raw model keeps training.
    ema = (torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay),
                                               use_buffers=True) if cfg.ema_decay > 0 else None)
    kept: WeaveNet = model if ema is None else ema.module  # type: ignore[assignment]
    rngs = {(d, n): split_rng(cfg.seed, "train", d, n) for d in cfg.distributions for n in cfg.train_n}
    val = validation_sets(cfg)
    history: list[dict[str, float]] = []

    def run_validation(step: int) -> tuple[float, dict[str, float]]:
        metrics = validate(kept, val, device, cfg.val_binarize)
        score = validation_score(metrics, cfg.target, cfg.selection)
        history.append({"step": float(step), "kind_val": 1.0, "val_score": score, **{f"val_{k}": v for k, v in metrics.items()}})
        return score, metrics

    start = time.perf_counter()
    best_score, best_val = run_validation(0)
    best_state, best_step = copy.deepcopy(kept.state_dict()), 0
    running: dict[str, float] = {}
    done = 0
    for step in range(1, cfg.steps + 1):
        model.train()
        dist = cfg.distributions[(step - 1) % len(cfg.distributions)]
        size = cfg.train_n[(step - 1) % len(cfg.train_n)]
        sa_np, sb_np = generate(dist, size, cfg.batch_size, rngs[(dist, size)])
        sa = torch.as_tensor(sa_np, dtype=torch.float32, device=device)
        sb = torch.as_tensor(sb_np, dtype=torch.float32, device=device)
        logits = model(sa, sb)
        parts = step_losses(logits, sa_np, sb_np, sa, sb, cfg, weights)
        loss = parts["total"].mean()
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"WeaveNet loss became {float(loss.detach())} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if ema is not None:
            ema.update_parameters(model)
        done = step
        for k, v in parts.items():
            running[k] = running.get(k, 0.0) + float(v.detach().mean())
        out_of_time = cfg.max_seconds is not None and time.perf_counter() - start > cfg.max_seconds
        if step % cfg.val_every == 0 or step == cfg.steps or out_of_time:
            count = step - (int(history[-1]["step"]) if history else 0)
            train_row = {"step": float(step), "kind_val": 0.0, **{f"loss_{k}": v / max(count, 1) for k, v in running.items()}}
            running = {}
            score, metrics = run_validation(step)
            history[-1].update({k: v for k, v in train_row.items() if k.startswith("loss_")})
            if score < best_score:
                best_score, best_val, best_step = score, metrics, step
                best_state = copy.deepcopy(kept.state_dict())
            if on_step is not None:
                on_step(step, history[-1])
        elif on_step is not None and step % 10 == 0:
            on_step(step, {})
        if out_of_time:
            break
    return TrainResult(
        state_dict={k: v.detach().cpu() for k, v in best_state.items()},
        best_step=best_step,
        best_score=best_score,
        best_val=best_val,
        steps_done=done,
        seconds=time.perf_counter() - start,
        history=history,
    )
