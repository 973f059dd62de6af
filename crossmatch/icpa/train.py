"""Training loop of ICPA's two phases and of its baselines (ALGORITHMS.md §2.4–2.7, Algorithm 1).

One :class:`Trainer` runs one :class:`PhaseConfig`: which sources train, which weighting
combines their losses, and whether the alignment is off, *live* (plans and gates from the
current model, gates trained: phase 1 and *w/o Front*) or *frozen* (plans and gates from the
phase-1 model: phase 2). The trainer's whole state — model, optimiser, random generators,
epoch and the per-step loss log — round-trips through :meth:`Trainer.state_dict`, so a run
resumed from a checkpoint continues exactly where it stopped. No file I/O happens here:
the stage layer decides where checkpoints go (``on_epoch_end``).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from crossmatch.device import resolve_device
from crossmatch.errors import ConfigError
from crossmatch.icpa import distributed as ddp
from crossmatch.icpa.alignment import alignment_loss, category_layout
from crossmatch.icpa.config import AlignConfig, PairConfig, PhaseConfig
from crossmatch.icpa.graph import MultiSourceGraph
from crossmatch.icpa.history_loss import history_source_loss
from crossmatch.icpa.model import ICPAModel
from crossmatch.icpa.payload import build_model, model_from_payload, model_payload, seed_everything
from crossmatch.icpa.sampler import category_batches
from crossmatch.icpa.source_loss import pooled_source_loss, source_loss
from crossmatch.icpa.weighting import make_weighting

__all__ = ["Trainer", "build_model", "configure_determinism", "epoch_steps", "model_from_payload", "model_payload",
           "resolve_device", "seed_everything"]


def configure_determinism(device: torch.device, deterministic: bool = True) -> None:
    """Deterministic kernels: always on the CPU (today's behaviour), on CUDA only when asked.

    ``icpa.deterministic: true`` makes CUDA runs repeatable at the price of slower kernels
    (deterministic scatter/index_add); cuBLAS then needs a fixed workspace, which must be set
    before its first use in the process, hence ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` here unless
    the user set it. ``false`` lets CUDA pick its fastest (non-deterministic) kernels.
    """
    if device.type == "cuda":
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    else:
        torch.use_deterministic_algorithms(True, warn_only=True)


def epoch_steps(graph: MultiSourceGraph, sources: list[int] | tuple[int, ...], pairs: PairConfig) -> int:
    """Steps per epoch over ``sources`` (the number of batches does not depend on the shuffle)."""
    return len(category_batches(graph, list(sources), pairs.batch_size, torch.Generator().manual_seed(0),
                                pack=pairs.pack_categories))


class Trainer:
    """Runs one training phase over the category-grouped mini-batches of §2.4."""

    def __init__(
        self,
        model: ICPAModel,
        graph: MultiSourceGraph,
        phase: PhaseConfig,
        *,
        pairs: PairConfig,
        align: AlignConfig,
        seed: int,
        device: torch.device | str = "cpu",
        frozen: ICPAModel | None = None,
        weighting_options: dict[str, Any] | None = None,
        deterministic: bool = True,
        log_every: int = 50,
        dist: ddp.DistContext | None = None,
    ) -> None:
        self.device = torch.device(device)
        # Data-parallel run (crossmatch.icpa.distributed): None or world size 1 = one process.
        self.dist = dist if dist is not None and dist.world_size > 1 else None
        configure_determinism(self.device, deterministic)
        # The alignment's category layout is read from the CPU copy of the item categories: its
        # sizes decide tensor shapes, and reading them from the device would sync every step.
        self._cpu_category = [g.item_category.cpu() for g in graph.sources]
        if log_every < 1:
            raise ConfigError(f"log_every must be >= 1, got {log_every}")
        self.log_every = log_every
        self.model = model.to(self.device)
        self.graph = graph.to(self.device)
        self.phase, self.pairs, self.align = phase, pairs, align
        m = len(graph.sources)
        if model.n_sources != m:
            raise ConfigError(f"model has {model.n_sources} sources but the graph has {m}")
        self.sources = list(phase.sources) if phase.sources is not None else list(range(m))
        if not self.sources or any(not 0 <= j < m for j in self.sources):
            raise ConfigError(f"training sources {self.sources} must be indices in 0..{m - 1}")
        if phase.alignment == "frozen":
            if frozen is None:
                raise ConfigError("frozen alignment (phase 2) needs the phase-1 model")
            self.frozen: ICPAModel | None = copy.deepcopy(frozen).to(self.device).eval()
            for p in self.frozen.parameters():
                p.requires_grad_(False)
        else:
            self.frozen = None
        self.aligning = phase.alignment != "none" and phase.beta > 0 and len(self.sources) > 1
        # θ_t (gates) train only with a live alignment; phase 2 fixes them (§2.6 line 7).
        params = list(model.parameters() if phase.alignment == "live" else model.network_parameters())
        # The initial accumulator decides how far Adagrad moves a weight whose gradients are still
        # small: TensorFlow's default 0.1 (the reference code is TF) damps such weights to an SGD
        # step of lr/√0.1; torch's 0 gives every weight a ±lr first step, which throws the
        # 256-wide tower around. The embedding tables are exactly such small-gradient weights;
        # ``embedding_lr`` gives them their own rate so that both can train. Synthetic preset,
        # Base, 200 steps, NDCG@10 (alpha): Adagrad lr 0.01 everywhere 0.16; Adagrad 0.002 tower
        # / 0.3 tables 0.25; Adam 3e-4 tower / 0.1 tables 0.31 (``optimizer: adam``).
        emb_ids = {id(p) for p in model.embedding_parameters()}
        groups: list[dict[str, Any]] = [{"params": [p for p in params if id(p) not in emb_ids]}]
        emb = [p for p in params if id(p) in emb_ids]
        if emb:
            groups.append({"params": emb, "lr": phase.embedding_lr if phase.embedding_lr is not None else phase.lr})
        # The running average of every floating state entry (phase.ema_decay > 0), kept here rather than in
        # torch.optim.swa_utils.AveragedModel: that keeps its update count on the host and copies it to the device
        # on every update, a sync per step on CUDA; here the count is a Python int and the update is an in-place lerp.
        self.ema: dict[str, Tensor] | None = None
        self.ema_count = 0
        self.optimizer: torch.optim.Optimizer
        if phase.optimizer == "adam":
            self.optimizer = torch.optim.Adam(groups, lr=phase.lr)
        else:
            self.optimizer = torch.optim.Adagrad(groups, lr=phase.lr,
                                                 initial_accumulator_value=phase.adagrad_initial_accumulator)
        opts = dict(phase.weighting_options)
        opts.update(weighting_options or {})
        self.weighting = make_weighting(phase.weighting, m, phase.target, opts).to(self.device)
        if self.weighting.parameters():
            self.optimizer.add_param_group({"params": self.weighting.parameters(),
                                            "lr": getattr(self.weighting.options, "lr", phase.lr)})
        self.cpu_gen = torch.Generator().manual_seed(seed)
        self.dev_gen = self.cpu_gen if self.device.type == "cpu" else \
            torch.Generator(device=self.device).manual_seed(seed + 1)
        self.weight_gen = self.dev_gen
        if self.dist is not None:
            # Seed split (crossmatch.icpa.distributed): batch order and λ shared, pair sampling per rank.
            self.cpu_gen = torch.Generator().manual_seed(seed + ddp.ORDER_OFFSET)
            self.dev_gen = torch.Generator(device=self.device).manual_seed(seed + self.dist.rank)
            self.weight_gen = torch.Generator(device=self.device).manual_seed(seed + ddp.WEIGHTING_OFFSET)
            ddp.broadcast_parameters(self.model)
        self.epoch = 0
        self.step = 0
        self._log: list[dict[str, Any]] = []
        # Per-step records still on the device: (epoch, step, [m losses, m weights, align, gate,
        # total]); turned into dicts every ``log_every`` steps in one transfer (no per-step sync).
        self._pending: list[tuple[int, int, Tensor]] = []

    # ---------------------------------------------------------------- one step
    def _source_grads(self, losses: list[Tensor | None]) -> Tensor:
        params = self.model.tower_parameters()
        size = sum(p.numel() for p in params)
        rows = []
        for loss in losses:
            if loss is None or not loss.requires_grad:
                rows.append(torch.zeros(size, device=self.device))
                continue
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                   for g, p in zip(grads, params, strict=True)]))
        return torch.stack(rows)

    def train_step(self, batch: dict[int, Tensor]) -> dict[str, Any]:
        """One optimiser step on one category batch; returns the logged record (reads it back)."""
        self._step(batch)
        self.flush_log()
        return self._log[-1]

    def _step(self, batch: dict[int, Tensor]) -> None:
        """One optimiser step; its record stays on the device until :meth:`flush_log`."""
        self.model.train()
        m = self.model.n_sources
        present = sorted(batch)
        layout = (category_layout(self._cpu_category, present, batch, self.device)
                  if self.aligning and len(present) > 1 else None)
        batch = {j: a.to(self.device, non_blocking=True) for j, a in batch.items()}
        per: list[Tensor | None] = [None] * m
        z: dict[int, Tensor] = {}
        for j in present:
            g = self.graph.sources[j]
            if self.pairs.objective == "history":
                per[j], z[j] = history_source_loss(self.model, g, j, batch[j], self.pairs, self.dev_gen, self.device)
            elif self.pairs.negative_pool:
                per[j], z[j] = pooled_source_loss(self.model, g, j, batch[j], self.pairs, self.dev_gen, self.device)
            else:
                per[j], z[j] = source_loss(self.model, g, j, batch[j], self.pairs, self.dev_gen)
        zero = torch.zeros((), device=self.device)
        L = torch.stack([x if x is not None else zero for x in per])
        mask = torch.zeros(m, dtype=torch.bool, device=self.device)
        mask[present] = True
        align = reg = zero
        if layout is not None:
            align, reg = alignment_loss(self.model, self.graph, present, z, batch, layout, self.align, self.dev_gen,
                                        device=self.device, frozen=self.frozen)
        grads = self._source_grads(per) if self.weighting.needs_grads else None
        L_w, mask_w = L.detach(), mask
        if self.dist is not None:
            # every rank weighs with the same w: losses and gradients averaged over ranks
            L_w, mask_w = ddp.mean_over_ranks(L_w, mask)
            grads = ddp.mean_rows(grads) if grads is not None else None
        w = self.weighting(L_w, mask_w, grads, self.weight_gen)
        total = (w * L).sum() + self.phase.beta * (align + reg) + self.weighting.regulariser(mask)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.dist is not None:
            ddp.average_gradients([p for g in self.optimizer.param_groups for p in g["params"]],
                                  self.dist.world_size)
        self.optimizer.step()
        if self.phase.ema_decay > 0:
            self._update_average()
        self.step += 1
        nan = torch.full_like(L, float("nan"))
        row = torch.cat([torch.where(mask, L, nan), w.to(L.dtype),
                         torch.stack([align, reg, total]).to(L.dtype)]).detach()
        self._pending.append((self.epoch, self.step, row))
        if len(self._pending) >= self.log_every:
            self.flush_log()

    def flush_log(self) -> None:
        """Bring the pending per-step records to the host in one transfer (one sync per ``log_every`` steps)."""
        if not self._pending:
            return
        values = torch.stack([r for _, _, r in self._pending]).cpu().tolist()
        m = len(self.graph.names)
        for (epoch, step, _), v in zip(self._pending, values, strict=True):
            rec: dict[str, Any] = {"epoch": epoch, "step": step}
            for j, name in enumerate(self.graph.names):
                rec[f"loss_{name}"] = v[j]
                rec[f"weight_{name}"] = v[m + j]
            rec["align"], rec["gate"], rec["total"] = v[2 * m], v[2 * m + 1], v[2 * m + 2]
            self._log.append(rec)
        self._pending.clear()

    @property
    def log(self) -> list[dict[str, Any]]:
        """Every step's record: ``epoch, step, loss_<source>`` (NaN when absent), ``weight_<source>``,
        ``align``, ``gate``, ``total``."""
        self.flush_log()
        return self._log

    @log.setter
    def log(self, records: list[dict[str, Any]]) -> None:
        self._pending.clear()
        self._log = list(records)

    # ---------------------------------------------------------------- epochs
    def train_epoch(self) -> dict[str, Any]:
        """One pass over every anchor of the training sources; returns epoch means."""
        t0 = time.perf_counter()
        batches = category_batches(self.graph, self.sources, self.pairs.batch_size, self.cpu_gen,
                                   pack=self.pairs.pack_categories)
        if self.dist is not None:
            batches = ddp.rank_share(batches, self.dist)  # type: ignore[assignment]
        if self.phase.max_steps is not None:
            batches = batches[:max(0, self.phase.max_steps - self.step)]
        first = len(self.log)
        for b in batches:
            self._step(b)
        records = self.log[first:]
        self.epoch += 1
        stats: dict[str, Any] = {"epoch": self.epoch, "steps": len(records), "seconds": time.perf_counter() - t0}
        for key in records[0] if records else []:
            if key.startswith(("loss_", "align", "gate", "total")):
                vals = [r[key] for r in records if r[key] == r[key]]  # drop NaN (source absent)
                stats[key] = sum(vals) / len(vals) if vals else float("nan")
        return stats

    def fit(self, on_epoch_end: Callable[[Trainer, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Train until ``phase.epochs``; continues from ``self.epoch`` after a resume."""
        history = []
        while self.epoch < self.phase.epochs and (self.phase.max_steps is None or self.step < self.phase.max_steps):
            stats = self.train_epoch()
            history.append(stats)
            if on_epoch_end is not None:
                on_epoch_end(self, stats)
        over = self.epoch >= self.phase.epochs or (self.phase.max_steps is not None
                                                   and self.step >= self.phase.max_steps)
        if self.ema is not None and over:
            # the phase is over: its averaged weights are the model from here on (evaluation, phase 2)
            self.model.load_state_dict(self.ema, strict=False)
        return history

    @torch.no_grad()
    def _update_average(self) -> None:
        """ē ← d·ē + (1 − d)·w for every floating entry of the model's state (ē = w at the first step)."""
        state = {k: v for k, v in self.model.state_dict().items() if v.is_floating_point()}
        if self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in state.items()}
        else:
            for k, v in state.items():
                self.ema[k].lerp_(v, 1.0 - self.phase.ema_decay)
        self.ema_count += 1

    # ---------------------------------------------------------------- checkpoints
    def epoch_steps(self) -> int:
        """Optimisation steps in one epoch of this run's sources (a dry run of the batch sampler);
        per rank in a data-parallel run."""
        n = epoch_steps(self.graph, self.sources, self.pairs)
        return -(-n // self.dist.world_size) if self.dist is not None else n

    def state_dict(self) -> dict[str, Any]:
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "cpu_gen": self.cpu_gen.get_state(),
            "log": list(self.log),
        }
        if self.dev_gen is not self.cpu_gen:
            state["dev_gen"] = self.dev_gen.get_state()
        if self.weight_gen is not self.dev_gen:
            state["weight_gen"] = self.weight_gen.get_state()
        if self.weighting.parameters():
            state["weighting"] = [p.detach().cpu() for p in self.weighting.parameters()]
        if self.phase.ema_decay > 0:
            state["ema"] = {"count": self.ema_count,
                            "weights": {k: v.detach().cpu() for k, v in (self.ema or {}).items()}}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.cpu_gen.set_state(state["cpu_gen"])
        if self.dev_gen is not self.cpu_gen and "dev_gen" in state:
            self.dev_gen.set_state(state["dev_gen"])
        if self.weight_gen is not self.dev_gen and "weight_gen" in state:
            self.weight_gen.set_state(state["weight_gen"])
        for p, saved in zip(self.weighting.parameters(), state.get("weighting", []), strict=False):
            with torch.no_grad():
                p.copy_(saved)
        if self.phase.ema_decay > 0:
            if "ema" not in state:
                raise ConfigError("checkpoint has no weight average but the phase asks for one (ema_decay > 0)")
            self.ema_count = int(state["ema"]["count"])
            self.ema = {k: v.to(self.device) for k, v in state["ema"]["weights"].items()} if self.ema_count else None
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.log = list(state["log"])
