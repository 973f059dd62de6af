"""Data-parallel ICPA training with ``torch.distributed`` (issue 11 part 4).

``icpa.world_size: N > 1`` makes the ``train_align`` stage start itself ``N`` times through
``torchrun`` (:func:`launch`); every process (rank) then runs the same training with a
:class:`DistContext`:

* **Process group.** ``gloo`` on the CPU, ``nccl`` on CUDA (rank ``r`` uses GPU ``LOCAL_RANK``);
  rendezvous from torchrun's environment (``MASTER_ADDR``/``MASTER_PORT`` or ``--rdzv-endpoint``).
* **Who trains on what.** Every rank builds the same epoch of category batches (the batch
  order generator is seeded ``seed + ORDER_OFFSET`` on every rank) and takes every ``N``-th
  batch starting at its rank (wrapping round so that all ranks run the same number of steps),
  so one epoch still visits every anchor once, split over the ranks.
* **Seed split.** Random walks, negatives and neighbour draws of rank ``r`` come from a
  generator seeded ``seed + r``; the random convex λ of phase 1 from one seeded
  ``seed + WEIGHTING_OFFSET`` on every rank, so that all ranks weigh the losses alike.
* **Gradients.** After ``backward`` every rank's gradients are averaged with one
  ``all_reduce`` (:func:`average_gradients`): the step is the gradient of the mean of the ranks'
  losses, as with ``DistributedDataParallel``. DDP's module wrapper is not used because the
  trainer calls the model through several entry points (``encode``, gates) rather than one
  ``forward``, which DDP needs to schedule its reductions. Weightings that look at the losses or
  gradients (ParetoMTL) see their average over ranks (:func:`mean_over_ranks`).
* **Outputs.** Only rank 0 writes models, metrics and plots; each rank checkpoints its own
  trainer state (``<run>.rank<r>.pt``) so a resumed run continues every rank's random streams.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from crossmatch.errors import ConfigError

ORDER_OFFSET = 1_000_003  # batch-order stream: the same on every rank
WEIGHTING_OFFSET = 2_000_003  # λ stream of the weighting: the same on every rank


@dataclass(frozen=True)
class DistContext:
    """This process's place in the group."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def under_torchrun() -> bool:
    """True inside a process started by torchrun (it sets ``RANK`` and ``WORLD_SIZE``)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun set up; returns the context and this rank's device.

    Raises:
        ConfigError: not started by torchrun, or CUDA asked with fewer GPUs than local ranks.
    """
    if not under_torchrun():
        raise ConfigError("icpa.world_size > 1 needs the processes torchrun starts (RANK/WORLD_SIZE unset)")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(f"local rank {local} has no GPU ({torch.cuda.device_count()} visible)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank, world, local), device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_share(items: Sequence[object], ctx: DistContext) -> list[object]:
    """Every ``world_size``-th item from ``rank``; all ranks get ``ceil(n / world_size)`` items
    (the last ranks wrap round to the start) so that their collective calls pair up."""
    n = len(items)
    if n == 0:
        return []
    per = -(-n // ctx.world_size)
    return [items[(ctx.rank + i * ctx.world_size) % n] for i in range(per)]


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (they start equal anyway: same init seed)."""
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def average_gradients(params: Sequence[Tensor], world_size: int) -> None:
    """Average ``.grad`` over ranks with one ``all_reduce`` of a flat buffer.

    A parameter without a gradient on a rank contributes zeros; one without a gradient on
    every rank keeps ``grad = None`` (so the optimiser skips it, as in a single process).
    """
    if not params:
        return
    ref = params[0]
    flats, flags = [], []
    for p in params:
        flats.append(p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=ref.device,
                                                                                 dtype=p.dtype))
        flags.append(1.0 if p.grad is not None else 0.0)
    buf = torch.cat([torch.cat(flats).to(torch.float32), torch.tensor(flags, device=ref.device)])
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    # The flags are read on the host only when some local gradient is missing (that read syncs).
    used = buf[-len(params):].tolist() if any(p.grad is None for p in params) else None
    off = 0
    for i, p in enumerate(params):
        n = p.numel()
        g = (buf[off:off + n] / world_size).view_as(p).to(p.dtype)
        off += n
        if p.grad is not None:
            p.grad.copy_(g)
        elif used is not None and used[i] > 0:
            p.grad = g.clone()


def mean_over_ranks(values: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
    """Per-source mean of ``values`` over the ranks where the source is ``present``, and the
    union of ``present`` (one ``all_reduce`` of ``[values·present, present]``)."""
    m = values.shape[0]
    stack = torch.cat([values.to(torch.float64) * present, present.to(torch.float64)])
    dist.all_reduce(stack, op=dist.ReduceOp.SUM)
    count = stack[m:]
    mean = stack[:m] / count.clamp(min=1)
    return mean.to(values.dtype), count > 0


def mean_rows(rows: Tensor) -> Tensor:
    """Element-wise mean of a tensor over ranks (per-source gradients of ParetoMTL)."""
    out = rows.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def launch(world_size: int, module: str, argv: Sequence[str]) -> int:
    """Re-run ``python -m <module> <argv>`` as ``world_size`` local processes through torchrun.

    One machine: ``--standalone`` rendezvous. Several machines: run torchrun yourself on each
    (README, "ICPA on several processes"); the stage then sees ``RANK`` set and does not relaunch.
    """
    if world_size < 2:
        raise ConfigError(f"launch needs world_size >= 2, got {world_size}")
    torchrun = shutil.which("torchrun")
    cmd = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    cmd += ["--standalone", f"--nproc_per_node={world_size}", "-m", module, *argv]
    return subprocess.call(cmd)
