"""Stage ``weavenet_train``: train WeaveNet models on fresh random instances (ALGORITHMS.md §3.4–3.6; issue 13).

Outputs:
    --out         weavenet.pt: one model ``{"state_dict", "config", "train"}``, or with ``per_distribution``
                  a model set ``{"format": "weavenet-set", "models": {dist: model}}`` (one model per distribution,
                  the paper's protocol); each model is the best validation checkpoint of its run
    --metrics     flat JSON: steps, wall time, device, parameter count, best validation figures (per model)
    --plot-csv    per-validation training curves (model, step, losses, validation stable rate and costs)
    --plot-png    the same curves as a PNG (matplotlib Agg)

``objective``: unsupervised (the paper's losses) | imitation (of a teacher's stable matching) |
imitation+unsupervised. ``init_checkpoint`` (optional; one file or a list, merged) starts from saved models,
e.g. the shipped set; their shapes must equal the params'. Validation runs before the first step, so with
``steps: 0`` the stage only validates and re-emits the checkpoint, and fine-tuning never selects a worse one.
Over 150 lines: its params map 27 YAML keys onto two checked library configs per model; what a run leaves
behind (checkpoint, facts, metrics) is crossmatch.twosided.weavenet.runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from rich.progress import Progress, TaskID

from crossmatch.checkpoint import save_checkpoint
from crossmatch.errors import ConfigError
from crossmatch.twosided.generators import DISTRIBUTIONS
from crossmatch.twosided.weavenet import runs
from crossmatch.twosided.weavenet.binarize import Binarize
from crossmatch.twosided.weavenet.checkpoints import ANY, model_set, split_key
from crossmatch.twosided.weavenet.curves import curve_csv, plot_curves
from crossmatch.twosided.weavenet.imitation import Teacher
from crossmatch.twosided.weavenet.losses import LMForm, Objective
from crossmatch.twosided.weavenet.model import WeaveNetConfig
from crossmatch.twosided.weavenet.train import TrainConfig, TrainResult, resolve_device, train
from stages._common import console, load_section, params_as, run, write_atomic, write_json, write_text

PAPER_ASYM = ("UD", "Lib")  # §3.6 experiment 2: asymmetric variant for UD and Lib, symmetric otherwise


@dataclass(frozen=True)
class WeaveNetTrainParams:
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
                selection=self.selection,
            )
        except ValueError as exc:
            raise ConfigError(f"weavenet_train: {exc}") from None


def plan(params: WeaveNetTrainParams, group: str | None) -> tuple[str | None, WeaveNetConfig, TrainConfig]:
    """Model shape and training config of one model: ``group`` is a distribution, a size specialist's key
    ``"<dist>@<N>"`` (trained and validated at N only) or None (one model for every distribution)."""
    if group is None:
        return None, params.model_config(None), params.train_config(None)
    dist, n = split_key(group)
    cfg = params.train_config([dist])
    return group, params.model_config(dist), cfg if n is None else replace(cfg, train_n=(n,), val_n=(n,))


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.weavenet_train", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="weavenet_train")
    ap.add_argument("--out", default="data/twosided/weavenet.pt")
    ap.add_argument("--metrics", default="metrics/weavenet_train.json")
    ap.add_argument("--plot-csv", default="plots/weavenet_train.csv")
    ap.add_argument("--plot-png", default="plots/weavenet_train.png")
    args = ap.parse_args()
    params = params_as(WeaveNetTrainParams, load_section(args.section, args.params), args.section)
    init = (runs.read_starts(params.init_checkpoint, hint="set weavenet_train.init_checkpoint: null to train from scratch")
            if params.init_checkpoint else None)
    groups: list[str | None] = list(params.distributions) if params.per_distribution else [None]
    if params.per_distribution and init is not None:  # size specialists of the set go on, each at its own N
        groups += [k for k in init if split_key(k)[1] is not None and split_key(k)[0] in params.distributions]
    plans = [plan(params, g) for g in groups]  # all checked first
    device = resolve_device(params.device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    results: list[tuple[str, TrainResult]] = []
    ckpts: dict[str, dict[str, Any]] = {}
    metrics: dict[str, Any] = {}
    for g, model_cfg, cfg in plans:
        name = g or ANY
        state = runs.start_state(init, g, model_cfg) if init is not None else None
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"weavenet_train {name}", total=max(cfg.steps, 1))

            def on_step(step: int, row: dict[str, float], name: str = name, task: TaskID = task) -> None:
                desc = f"weavenet_train {name} (val stable {row['val_stable_rate']:.2f})" if row else None
                progress.update(task, completed=step, description=desc)  # None keeps the description

            result = train(model_cfg, cfg, device=device, init_state=state, on_step=on_step)
        facts = runs.run_facts(cfg, result, device, params.init_checkpoint)
        ckpts[name] = runs.shipped_checkpoint(model_cfg, result, facts, init, g)
        results.append((name, result))
        metrics.update(runs.run_metrics("" if g is None else f"{g}/", facts, model_cfg, result))
        console.print(f"weavenet_train {name}: {result.steps_done} steps in {result.seconds:.0f}s on {device}; best step "
                      f"{result.best_step}: val stable {result.best_val['stable_rate']:.3f}, SEq {result.best_val['seq']:.2f}")
    cfg0 = plans[0][2]
    metrics["val_binarize"] = cfg0.val_binarize
    if len({p[2].val_n for p in plans}) == 1:  # else (size specialists) each model's own <name>/val_n says it
        metrics.update({"val_n": ",".join(map(str, cfg0.val_n)),
                        "val_instances_per_model": cfg0.val_size * len(cfg0.distributions) * len(cfg0.val_n)})
    out = Path(args.out)
    obj = model_set(ckpts) if params.per_distribution else ckpts[ANY]
    write_atomic(out, lambda p: save_checkpoint(obj, p))
    write_json(args.metrics, metrics)
    write_text(args.plot_csv, curve_csv(results))
    m0 = plans[0][1]
    title = (f"WeaveNet L={m0.layers} D={m0.dim} ({params.variant}), {cfg0.objective} / {cfg0.target}, "
             f"N={'/'.join(map(str, cfg0.train_n))}")
    write_atomic(Path(args.plot_png), lambda p: plot_curves(results, p, title=title, binarize=cfg0.val_binarize))
    console.print(f"weavenet_train: {len(results)} model(s) -> {out}")


if __name__ == "__main__":
    run("weavenet_train", main)
