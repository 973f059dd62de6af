"""What one WeaveNet training run leaves behind (issue 13): the checkpoint to ship, the facts saved in it, and
its flat metrics — the starting models of a fine-tuning run, and a shipped checkpoint as the ``match`` stage's
solver (:func:`predictor_from`).

A fine-tuning run that validation never improved re-emits its starting model with the facts of the run that
trained it (plus a ``kept`` note), so the file is deterministic and a report describes the model it evaluates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossmatch.checkpoint import load_checkpoint
from crossmatch.errors import ConfigError, InputError
from crossmatch.twosided.weavenet.checkpoints import ANY, checkpoint, load_models, members, model_for
from crossmatch.twosided.weavenet.model import WeaveNet, WeaveNetConfig, count_parameters
from crossmatch.twosided.weavenet.train import TrainConfig, TrainResult, predict_logits, resolve_device


def read_starts(paths: str | Path | Sequence[str | Path], *, hint: str = "") -> dict[str, dict[str, Any]]:
    """``{distribution, size key or ANY: single-model checkpoint}`` merged over the file(s); later files win.
    ``hint`` ends the message of a missing file (e.g. which param to change)."""
    out: dict[str, dict[str, Any]] = {}
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"starting checkpoint not found{'; ' + hint if hint else ''}", file=str(p))
        try:
            out.update(members(load_checkpoint(p)))  # load_checkpoint: InputError for a foreign or unreadable file
        except ValueError as exc:
            raise InputError(str(exc), file=str(p)) from None
    return out


def start_state(starts: dict[str, dict[str, Any]], group: str | None,
                model_cfg: WeaveNetConfig) -> dict[str, torch.Tensor]:
    """The state a model for ``group`` (a distribution, ``"<dist>@<N>"`` or None) starts from."""
    key = group if group in starts else ANY
    if key not in starts:
        raise ConfigError(f"the init checkpoint has no model for {group} (it has {sorted(starts)})")
    if starts[key]["config"] != model_cfg.to_dict():
        raise ConfigError(f"init checkpoint model for {key} has model shape {starts[key]['config']} but params say "
                          f"{model_cfg.to_dict()}; make them equal")
    return starts[key]["state_dict"]


def run_facts(cfg: TrainConfig, result: TrainResult, device: torch.device,
              init: str | list[str] | None) -> dict[str, Any]:
    """The facts of one run, saved in its checkpoint and (flattened) in the metrics."""
    return {
        "steps_requested": cfg.steps, "steps_done": result.steps_done, "seconds": round(result.seconds, 2),
        "device": str(device), "objective": cfg.objective, "target": cfg.target, "teacher": cfg.teacher,
        "lm_form": cfg.lm_form, "train_n": cfg.train_n, "val_n": cfg.val_n, "batch_size": cfg.batch_size, "lr": cfg.lr,
        "optimizer": cfg.optimizer, "distributions": list(cfg.distributions), "best_step": result.best_step,
        "init_checkpoint": init, "seed": cfg.seed, "selection": cfg.selection, "lr_schedule": cfg.lr_schedule,
        "ema_decay": cfg.ema_decay,
    }


def shipped_checkpoint(model_cfg: WeaveNetConfig, result: TrainResult, facts: dict[str, Any],
                       starts: dict[str, dict[str, Any]] | None, group: str | None) -> dict[str, Any]:
    """The run's best checkpoint, or its starting model when validation kept that (``best_step == 0``)."""
    if starts is None or result.best_step != 0:
        return checkpoint(model_cfg, result, facts)
    key = group if group in starts else ANY
    kept = f"validated here; {result.steps_done} fine-tuning step(s) did not improve it"
    return {**starts[key], "train": {**starts[key].get("train", {}), "kept": kept}}


def run_metrics(prefix: str, facts: dict[str, Any], model_cfg: WeaveNetConfig, result: TrainResult) -> dict[str, Any]:
    """Flat metrics of one run, keys prefixed ``"<group>/"`` (empty for a single model)."""
    out = {f"{prefix}{k}": (",".join(map(str, v)) if isinstance(v, (list, tuple)) else v) for k, v in facts.items()
           if v is not None and not isinstance(v, list) or k in ("distributions", "train_n", "init_checkpoint")}
    out.update({f"{prefix}parameters": count_parameters(WeaveNet(model_cfg)), f"{prefix}layers": model_cfg.layers,
                f"{prefix}dim": model_cfg.dim, f"{prefix}variant": model_cfg.variant,
                f"{prefix}best_val_score": result.best_score,
                **{f"{prefix}best_val_{k}": v for k, v in result.best_val.items()}})
    return out


def predictor_from(path: Path, device_name: str, which: str = "UU") -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Logits ``(S_A, S_B) -> m̂`` of the checkpoint's model for distribution ``which`` (a set's member, or
    the single model), for :func:`crossmatch.twosided.block_match.match_in_blocks`."""
    if not path.is_file():
        raise InputError("WeaveNet checkpoint not found; run weavenet_train or choose another match.solver", file=str(path))
    device = resolve_device(device_name)
    try:
        model = model_for(load_models(load_checkpoint(path), device), which)
    except (ValueError, RuntimeError, TypeError) as exc:  # a plain checkpoint, but not a WeaveNet's
        raise InputError(f"cannot load the WeaveNet checkpoint: {exc}", file=str(path)) from None
    return lambda sa, sb: predict_logits(model, sa, sb, device)
