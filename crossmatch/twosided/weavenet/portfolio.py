"""Best of several trained WeaveNets per instance: a portfolio at inference (issue 13; not in the paper).

Every model of a set solves the same instance; per instance the output kept is a *stable* one with the lowest
cost (SEq for the fair-matching target of §3.7), else, when no model is stable, the one with the fewest blocking
pairs (then a repair step has least to change). Both criteria read only the instance's preferences and the
models' own outputs — no reference solution — so the rule is available wherever the models run, and each kept
output is still one network's raw Hungarian-binarised matching: nothing is repaired. The price is one forward
pass per model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from crossmatch.twosided.weavenet.binarize import Binarize, binarize
from crossmatch.twosided.weavenet.model import WeaveNet
from crossmatch.twosided.weavenet.train import outcome, predict_logits


def pick(outcomes: Sequence[Mapping[str, np.ndarray]], cost: str = "seq") -> np.ndarray:
    """Per instance, the index of the outcome to keep: the lowest ``cost`` among stable outcomes, else the
    fewest blocking pairs; ties go to the earlier outcome. Each outcome is a :func:`~.train.outcome` dict
    (``stable``, ``blocking`` and ``cost`` arrays of one length)."""
    if not outcomes:
        raise ValueError("pick needs at least one outcome")
    n = len(outcomes[0]["stable"])
    for o in outcomes:
        if len(o["stable"]) != n or len(o[cost]) != n or len(o["blocking"]) != n:
            raise ValueError(f"every outcome must cover the same {n} instances")
    stable = np.stack([np.asarray(o["stable"], dtype=bool) for o in outcomes])
    costs = np.stack([np.where(o["stable"], np.asarray(o[cost], dtype=np.float64), np.inf) for o in outcomes])
    blocking = np.stack([np.asarray(o["blocking"], dtype=np.float64) for o in outcomes])
    # argmin returns the first of equal values: the earlier outcome wins a tie
    return np.where(stable.any(axis=0), np.argmin(costs, axis=0), np.argmin(blocking, axis=0))


def keep_best(sa: np.ndarray, sb: np.ndarray, matches: Sequence[np.ndarray],
              cost: str = "seq") -> tuple[np.ndarray, np.ndarray]:
    """Given binarised outputs ``matches`` (each [B, N]) of several models on one batch ``sa, sb``, keep per instance
    the one :func:`pick` chooses. Returns ``(match [B, N], chosen index [B])``; earlier outputs win ties."""
    if not matches:
        raise ValueError("keep_best needs at least one output")
    stacked = np.stack([np.asarray(m) for m in matches])
    if stacked.shape[1] != sa.shape[0]:
        raise ValueError(f"every output must have one row per instance ({sa.shape[0]}), got {stacked.shape[1:]}")
    chosen = pick([outcome(sa, sb, m) for m in stacked], cost)
    return stacked[chosen, np.arange(stacked.shape[1])], chosen


def best_of(models: Mapping[str, WeaveNet], sa: np.ndarray, sb: np.ndarray, device: torch.device,
            method: Binarize = "hungarian", cost: str = "seq",
            batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Solve a batch ``sa, sb`` ([B, N, M], [B, M, N] satisfactions) with every model and keep, per instance,
    the output :func:`pick` chooses. Returns ``(match [B, N], chosen model index [B], model names)``; the
    models are tried in the mapping's order (the first wins ties, so put the cell's own model first);
    ``batch_size`` instances per forward pass, as :func:`~.train.predict_logits`."""
    if not models:
        raise ValueError("best_of needs at least one model")
    names = list(models)
    match, chosen = keep_best(sa, sb, [binarize(predict_logits(models[k], sa, sb, device, batch_size), method)
                                       for k in names], cost)
    return match, chosen, names
