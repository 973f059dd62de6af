"""One resumable training run: a :class:`~crossmatch.icpa.train.Trainer` with a progress bar and checkpoints.

The bar (stderr) counts epochs and shows the elapsed time and an ETA: the mean epoch time of this
process's epochs times the epochs left (rich's own ETA column keeps only the last 30 s of samples, so
with epochs longer than that it never shows a value). Rich draws the bar only on a terminal (``crossmatch
run`` gives the stages a pty and throttles the frames it logs); on a pipe or a log file nothing is
drawn, and the one summary line per run is all that is printed.

:func:`train_run` trains a model for one phase and hands the trainer's state to a :class:`CheckpointStore`
after every ``store.every`` epochs; a run whose stored state carries the same tag resumes from it. Tags are
:func:`fingerprint` of the params, the data's signature and :func:`code_hash`, so a checkpoint from other
params, data or code is never resumed. Where the states live is the caller's choice (the stages keep one file
per run, ``stages/_icpa.py``).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Protocol

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from crossmatch.icpa.config import PhaseConfig
from crossmatch.icpa.data import Data
from crossmatch.icpa.distributed import DistContext
from crossmatch.icpa.model import ICPAModel
from crossmatch.icpa.params import ICPAParams
from crossmatch.icpa.train import Trainer, resolve_device

CONSOLE = Console(stderr=True)  # progress and run summaries go to stderr


class CheckpointStore(Protocol):
    """Where a run's trainer state is kept between epochs (``every``: epochs between saves)."""

    every: int

    def load(self, run: str, tag: str) -> dict[str, Any] | None:
        """The state saved for ``run`` under ``tag``, or ``None`` (none, unreadable or another tag)."""
        ...

    def save(self, run: str, tag: str, trainer: Trainer) -> None:
        """Keep ``trainer.state_dict()`` for ``run`` under ``tag``."""
        ...


def code_hash() -> str:
    """Hash of the ICPA library sources: a checkpoint from other code is never resumed."""
    h = hashlib.sha256()
    root = Path(__file__).parent
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def fingerprint(*parts: Any) -> str:
    """A short hash of JSON-able ``parts`` (params snapshot, data signature, code hash, run names)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def eta_text(elapsed: float, done: int, left: int) -> str:
    """``ETA h:mm:ss`` from ``done`` epochs in ``elapsed`` seconds and ``left`` to go (``ETA -:--:--``
    before the first epoch of this process: nothing measured yet)."""
    if done <= 0:
        return "ETA -:--:--"
    seconds = round(elapsed / done * max(left, 0))
    return f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def train_run(
    run: str,
    model: ICPAModel,
    data: Data,
    phase: PhaseConfig,
    params: ICPAParams,
    checkpoints: CheckpointStore | None,
    *,
    frozen: ICPAModel | None = None,
    tag: str,
    dist: DistContext | None = None,
    device: torch.device | None = None,
    console: Console | None = None,
) -> Trainer:
    """Train ``model`` for ``phase`` (resuming from a matching checkpoint); progress per epoch.

    ``dist``: this process's rank in a data-parallel run; each rank keeps its own checkpoint.
    """
    console = console if console is not None else CONSOLE
    device = device if device is not None else resolve_device(params.device)
    trainer = Trainer(model, data.graph, phase, pairs=params.pair_config, align=params.align_config,
                      seed=params.seed, device=device, frozen=frozen, deterministic=params.deterministic, dist=dist)
    if dist is not None and dist.world_size > 1:
        run = f"{run}.rank{dist.rank}"
    state = checkpoints.load(run, tag) if checkpoints is not None else None
    if state is not None:
        trainer.load_state_dict(state)
        console.print(f"{run}: resumed from checkpoint at epoch {trainer.epoch}/{phase.epochs}")
    t0 = time.perf_counter()
    start_epoch = trainer.epoch  # a resumed run's earlier epochs took no time here: not in the ETA
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[eta]}"), console=console, transient=True,
                  disable=not console.is_terminal) as progress:  # off a terminal rich would print an empty line
        task = progress.add_task(f"{run} [{device.type}]", total=phase.epochs, completed=trainer.epoch,
                                 eta=eta_text(0.0, 0, phase.epochs - trainer.epoch))

        def on_epoch_end(tr: Trainer, stats: dict[str, Any]) -> None:
            if checkpoints is not None and (tr.epoch % checkpoints.every == 0 or tr.epoch == phase.epochs):
                checkpoints.save(run, tag, tr)
            losses = " ".join(f"{k[5:]}={v:.3f}" for k, v in stats.items() if k.startswith("loss_") and v == v)
            progress.update(task, completed=tr.epoch,
                            description=f"{run} [{device.type}] epoch {tr.epoch}/{phase.epochs} {losses}",
                            eta=eta_text(time.perf_counter() - t0, tr.epoch - start_epoch, phase.epochs - tr.epoch))

        trainer.fit(on_epoch_end)
    if phase.epochs:
        last = trainer.log[-1] if trainer.log else {}
        console.print(f"{run}: {phase.epochs} epochs, {trainer.step} steps in {time.perf_counter() - t0:.1f}s "
                      f"(total loss {last.get('total', float('nan')):.3f})")
    trainer.model.cpu()
    return trainer
