"""Stage ``weavenet_train``: train a WeaveNet on fresh random instances (ALGORITHMS.md §3.4–3.6).

Outputs:
    --out         weavenet.pt: ``{"state_dict", "config", "train"}`` of the best validation checkpoint
    --metrics     flat JSON: steps, wall time, device, parameter count, best validation figures
    --plot-csv    per-validation training curve (step, losses, validation stable rate and costs)
    --plot-png    the same curve as a PNG (matplotlib Agg)

``init_checkpoint`` (optional) starts from a saved checkpoint, e.g. the shipped pretrained one; its
model shape must equal the params' shape. Validation runs before the first step, so with ``steps: 0``
the stage only validates and re-emits that checkpoint, and fine-tuning can never select a worse one.
"""

from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from rich.progress import Progress

from crossmatch.checkpoint import load_checkpoint, save_checkpoint
from crossmatch.errors import ConfigError, InputError
from crossmatch.twosided.generators import DISTRIBUTIONS
from crossmatch.twosided.weavenet.losses import Objective
from crossmatch.twosided.weavenet.model import Variant, WeaveNetConfig, count_parameters
from crossmatch.twosided.weavenet.train import TrainConfig, TrainResult, checkpoint, resolve_device, train
from stages._common import console, load_section, params_as, run, write_atomic, write_json, write_text


@dataclass(frozen=True)
class WeaveNetTrainParams:
    # The Literal fields hold plain YAML strings until model_config / train_config check them
    # (WeaveNetConfig and TrainConfig reject other values); nothing reads them before that.
    layers: int = 4
    dim: int = 16
    hidden: int = 32
    residual: bool = True
    variant: Variant = "asym"
    objective: Objective = "fsm"
    steps: int = 150
    batch_size: int = 8
    lr: float = 1.0e-4
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 0.0
    train_n: int | list[int] = 20
    distributions: list[str] = field(default_factory=lambda: list(DISTRIBUTIONS))
    val_n: int = 20
    val_size: int = 20
    val_every: int = 50
    seed: int = 0
    device: str = "auto"
    max_seconds: float | None = None
    init_checkpoint: str | None = None
    selection: Literal["paper", "blocking"] = "paper"  # paper (§3.6) | blocking (mean blocking pairs after Hungarian; our addition)

    def model_config(self) -> WeaveNetConfig:
        try:
            return WeaveNetConfig(self.layers, self.dim, self.hidden, bool(self.residual), self.variant)
        except ValueError as exc:
            raise ConfigError(f"weavenet_train: {exc}") from None

    def train_config(self) -> TrainConfig:
        if self.objective not in ("sm", "fsm", "bsm"):
            raise ConfigError(f"weavenet_train.objective must be sm | fsm | bsm, got {self.objective!r}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"weavenet_train.device must be auto | cpu | cuda[:k], got {self.device!r}")
        try:
            return TrainConfig(
                steps=int(self.steps), batch_size=int(self.batch_size), lr=float(self.lr),
                optimizer=self.optimizer, weight_decay=float(self.weight_decay),
                objective=self.objective,
                train_n=tuple(int(v) for v in (self.train_n if isinstance(self.train_n, list) else [self.train_n])),
                distributions=tuple(self.distributions), val_n=int(self.val_n), val_size=int(self.val_size),
                val_every=int(self.val_every), seed=int(self.seed),
                max_seconds=None if self.max_seconds is None else float(self.max_seconds),
                selection=self.selection,
            )
        except ValueError as exc:
            raise ConfigError(f"weavenet_train: {exc}") from None


def load_init(path: str, model_cfg: WeaveNetConfig) -> dict[str, torch.Tensor]:
    """The state dict of ``init_checkpoint``, after checking that it has the params' model shape."""
    p = Path(path)
    if not p.is_file():
        raise InputError("init_checkpoint not found; set weavenet_train.init_checkpoint: null to train from scratch", file=str(p))
    ckpt = load_checkpoint(p)  # InputError for a foreign or unreadable file
    if not isinstance(ckpt, dict) or "config" not in ckpt or "state_dict" not in ckpt:
        raise InputError("not a WeaveNet checkpoint (needs 'config' and 'state_dict')", file=str(p))
    if ckpt["config"] != model_cfg.to_dict():
        raise ConfigError(f"init_checkpoint {p} has model shape {ckpt['config']} but params.yaml weavenet_train "
                          f"says {model_cfg.to_dict()}; make them equal")
    return ckpt["state_dict"]


def curve_csv(result: TrainResult) -> str:
    cols = ["step", "loss_total", "loss_m", "loss_s", "loss_f", "loss_b", "val_stable_rate", "val_seq", "val_bal",
            "val_hungarian_blocking", "val_score"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for row in result.history:
        w.writerow([int(row["step"])] + [("" if c not in row else f"{row[c]:.6g}") for c in cols[1:]])
    return buf.getvalue()


def plot_png(result: TrainResult, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in result.history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    train_rows = [r for r in result.history if "loss_total" in r]
    if train_rows:
        ax1.plot([r["step"] for r in train_rows], [r["loss_total"] for r in train_rows], label="total")
        ax1.plot([r["step"] for r in train_rows], [r["loss_m"] for r in train_rows], label="L_m")
        ax1.plot([r["step"] for r in train_rows], [r["loss_s"] for r in train_rows], label="L_s")
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss (mean since last validation)")
    ax1.legend()
    ax2.plot(steps, [r["val_stable_rate"] for r in result.history], color="tab:green")
    ax2.axvline(result.best_step, color="grey", ls=":", label=f"selected (step {result.best_step})")
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation stable rate (argmax)")
    ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


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
    model_cfg, cfg = params.model_config(), params.train_config()
    device = resolve_device(params.device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    init = load_init(params.init_checkpoint, model_cfg) if params.init_checkpoint else None

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("weavenet_train", total=max(cfg.steps, 1))

        def on_step(step: int, row: dict[str, float]) -> None:
            desc = f"weavenet_train (val stable {row['val_stable_rate']:.2f})" if row else None
            progress.update(task, completed=step, description=desc)  # None keeps the description

        result = train(model_cfg, cfg, device=device, init_state=init, on_step=on_step)

    facts: dict[str, Any] = {
        "steps_requested": cfg.steps, "steps_done": result.steps_done, "seconds": round(result.seconds, 2),
        "device": str(device), "objective": cfg.objective, "train_n": cfg.train_n, "batch_size": cfg.batch_size,
        "lr": cfg.lr, "optimizer": cfg.optimizer, "distributions": list(cfg.distributions),
        "best_step": result.best_step, "init_checkpoint": params.init_checkpoint, "seed": cfg.seed,
        "selection": cfg.selection,
    }
    ckpt = checkpoint(model_cfg, result, facts)
    from crossmatch.twosided.weavenet.model import WeaveNet

    n_params = count_parameters(WeaveNet(model_cfg))
    metrics = {
        **{k: v for k, v in facts.items() if not isinstance(v, list)},
        "distributions": ",".join(cfg.distributions),
        "train_n": ",".join(str(v) for v in cfg.train_n),
        "parameters": n_params,
        "layers": model_cfg.layers, "dim": model_cfg.dim, "hidden": model_cfg.hidden, "variant": model_cfg.variant,
        "val_n": cfg.val_n, "val_instances": cfg.val_size * len(cfg.distributions),
        "best_val_score": result.best_score,
        **{f"best_val_{k}": v for k, v in result.best_val.items()},
    }
    out = Path(args.out)
    write_atomic(out, lambda p: save_checkpoint(ckpt, p))
    write_json(args.metrics, metrics)
    write_text(args.plot_csv, curve_csv(result))
    png = Path(args.plot_png)
    write_atomic(png, lambda p: plot_png(result, p, f"WeaveNet L={model_cfg.layers} D={model_cfg.dim} {model_cfg.variant}, "
                                                     f"{cfg.objective}, N={'/'.join(map(str, cfg.train_n))}, {result.steps_done} steps"))
    console.print(
        f"weavenet_train: {result.steps_done} steps in {result.seconds:.0f}s on {device}; best step {result.best_step}: "
        f"val stable {result.best_val['stable_rate']:.3f}, SEq {result.best_val['seq']:.2f}, Bal {result.best_val['bal']:.2f} -> {out}"
    )


if __name__ == "__main__":
    run("weavenet_train", main)
