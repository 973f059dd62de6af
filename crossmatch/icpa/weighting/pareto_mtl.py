"""``pareto_mtl``: ParetoMTL weights for a target source (Lin et al., NeurIPS 2019), as ICPA's
phase 2 uses them (ALGORITHMS.md §2.7; upstream: github.com/Xi-L/ParetoMTL).

The loss space is cut into cones around preference vectors ``u_1..u_K``; sub-problem ``k``
(the target's preference ``(1, ε, …)``) keeps the loss vector inside its cone. While some
cone constraint is violated the *initialisation step* descends on the violated constraints;
otherwise the *main step* is the min-norm (MGDA) common descent direction of the tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from crossmatch.errors import ConfigError
from crossmatch.icpa.min_norm import min_norm_simplex, min_norm_simplex_torch
from crossmatch.icpa.weighting.abstract import AbsWeighting


def preference_set(n_sources: int, target: int, epsilon: float, include_uniform: bool = True) -> tuple[np.ndarray, int]:
    """Preference vectors ``z_j = (ε, …, 1 at j, …, ε)/Σ`` for every source (+ uniform) and the
    row index of the target's vector.

    The reference code uses ``{e_1..e_m, (1/m)·1}`` with ε = 0 (§2.6 phase 2, discrepancy 5);
    the paper asks for ``(1, ε, …)`` with a small ε ≥ 0 — both are this set.
    """
    u = np.full((n_sources, n_sources), float(epsilon))
    np.fill_diagonal(u, 1.0)
    if include_uniform and n_sources > 1:
        u = np.vstack([u, np.ones((1, n_sources))])
    return u / u.sum(axis=1, keepdims=True), target


@dataclass(frozen=True)
class PMTLStep:
    weights: np.ndarray  # [m] task weights w (not necessarily convex in the init step)
    mode: str  # "init" | "main"
    active: list[int]  # indices (into the preference rows) of the violated constraints
    alpha: np.ndarray  # min-norm coefficients over the rows used


def pmtl_weights(losses: np.ndarray, grads: np.ndarray, preferences: np.ndarray, k: int, *,
                 sign: str = "icpa", rescale: bool = False, tol: float = 1e-10) -> PMTLStep:
    """One ParetoMTL weight computation (§2.7 steps 1–5).

    Args:
        losses: ``[m]`` losses ``L ≥ 0``.
        grads: ``[m, P]`` flattened gradients ``g_i`` of the shared parameters.
        preferences: ``[K, m]`` preference vectors (rows sum to 1).
        k: row of the target sub-problem.
        sign: ``icpa`` — constraint ``c_j = u_k − u_j`` (ICPA reference code; makes the target's
            normalised loss the smallest, Ambiguity 2.7-A recommendation) — or ``original``
            (``c_j = u_j − u_k``, ParetoMTL).
        rescale: original ParetoMTL's ``w ← w·m / Σ|w_i|`` (the ICPA port does not).
        tol: min-norm solver tolerance.

    Returns:
        :class:`PMTLStep`. Init step (some ``c_jᵀ L̂ > 0``): ``w = Σ_{j∈A} β_j c_j`` with ``β`` the
        min-norm point of ``{c_jᵀ g}``; it decreases every violated constraint. Main step:
        ``w = α`` with ``α`` the min-norm point of the task gradients (a convex combination).
    """
    L = np.asarray(losses, dtype=np.float64)
    G = np.asarray(grads, dtype=np.float64)
    U = np.array(preferences, dtype=np.float64)
    m = L.shape[0]
    if L.ndim != 1 or G.ndim != 2 or G.shape[0] != m or U.ndim != 2 or U.shape[1] != m:
        raise ValueError(f"shapes must be losses [m], grads [m, P], preferences [K, m]; got {L.shape}, "
                         f"{G.shape}, {U.shape}")
    if not 0 <= k < U.shape[0]:
        raise ValueError(f"k must index a preference row (0..{U.shape[0] - 1}), got {k}")
    if sign not in ("icpa", "original"):
        raise ValueError(f"sign must be 'icpa' or 'original', got {sign!r}")
    positive = L > 0
    if not positive.any():
        return PMTLStep(np.zeros(m), "main", [], np.zeros(0))
    # Step 1: zero-loss protection, then normalised losses.
    U[:, ~positive] = 0.0
    sums = U.sum(axis=1, keepdims=True)
    U = np.divide(U, sums, out=np.zeros_like(U), where=sums > 0)
    L_hat = L / np.linalg.norm(L)
    # Step 2: cone constraints of sub-problem k and the active (violated) set.
    # Rows left all-zero by the protection (preference only on zero-loss tasks) define no cone;
    # if the target's own row is one of them (target absent, ε = 0) only the main step remains.
    valid = sums[:, 0] > 0
    others = [j for j in range(U.shape[0]) if valid[k] and valid[j] and j != k and np.any(U[j] != U[k])]
    C = np.array([(U[k] - U[j]) if sign == "icpa" else (U[j] - U[k]) for j in others]).reshape(-1, m)
    active = [others[i] for i in np.flatnonzero(C @ L_hat > 0)] if len(others) else []
    C_act = np.array([C[others.index(j)] for j in active]).reshape(-1, m)
    if active:
        # Step 3: initialisation step over the violated constraints.
        if len(active) == 1:
            w, alpha = C_act[0].copy(), np.ones(1)
        else:
            Q = C_act @ G
            alpha = min_norm_simplex(Q @ Q.T, tol=tol).weights
            w = alpha @ C_act
        mode = "init"
    else:
        # Step 4: main step; with no active constraint the rows are the tasks with L_i > 0.
        idx = np.flatnonzero(positive)
        Gp = G[idx]
        alpha = min_norm_simplex(Gp @ Gp.T, tol=tol).weights
        w = np.zeros(m)
        w[idx] = alpha
        mode = "main"
    if rescale and np.abs(w).sum() > 0:
        w = w * m / np.abs(w).sum()
    return PMTLStep(w, mode, active, alpha)


def pmtl_weights_torch(losses: Tensor, gram: Tensor, preferences: Tensor, k: int, *, sign: str = "icpa",
                       rescale: bool = False, tol: float = 1e-10, iterations: int = 100) -> Tensor:
    """:func:`pmtl_weights` on the device, without host syncs (issue 11 part 5).

    Same steps 1–5 of §2.7, written with masks instead of the data-dependent index lists of
    the NumPy version (a list built from a device value would wait for the GPU): both the
    initialisation step (min-norm over the active constraint rows) and the main step (min-norm
    over the tasks with ``L_i > 0``) are computed and one is selected by ``any(active)``; with a
    single active row the min-norm weight is that row alone, the NumPy version's ``w = c_j``.
    Only the ``[m, m]`` Gram matrix of the task gradients is needed: the constraint vectors'
    Gram matrix is ``C (G Gᵀ) Cᵀ`` (the NumPy version forms ``Q = C G`` first; the two agree
    to float64 round-off).

    Args:
        losses: ``[m]`` losses.
        gram: ``[m, m]`` Gram matrix ``G Gᵀ`` of the flattened task gradients.
        preferences: ``[K, m]`` preference rows; ``k`` the target's row.

    Returns:
        ``[m]`` float64 weights ``w`` on ``losses.device``.
    """
    L = losses.to(torch.float64)
    Gm = gram.to(torch.float64)
    U = preferences.to(device=L.device, dtype=torch.float64)
    m = L.shape[0]
    positive = L > 0
    # Step 1: zero-loss protection and normalised losses.
    U = torch.where(positive.unsqueeze(0), U, torch.zeros_like(U))
    sums = U.sum(dim=1, keepdim=True)
    U = U / torch.where(sums > 0, sums, torch.ones_like(sums))
    L_hat = L / torch.linalg.vector_norm(L).clamp(min=1e-300)
    # Step 2: cone constraints of sub-problem k; rows without a cone (all-zero) are unusable.
    valid = sums[:, 0] > 0
    rows = torch.arange(U.shape[0], device=L.device)
    use = valid[k] & valid & (rows != k) & (U != U[k]).any(dim=1)
    C = (U[k].unsqueeze(0) - U) if sign == "icpa" else (U - U[k].unsqueeze(0))
    active = use & (C @ L_hat > 0)
    # Step 3: initialisation step over the violated constraints.
    beta = min_norm_simplex_torch(C @ Gm @ C.T, active, tol=tol, iterations=iterations)
    w_init = beta @ C
    # Step 4: main step over the tasks with a positive loss.
    w_main = min_norm_simplex_torch(Gm, positive, tol=tol, iterations=iterations)
    w = torch.where(active.any(), w_init, w_main)
    w = torch.where(positive.any(), w, torch.zeros_like(w))
    if rescale:
        total = w.abs().sum()
        w = torch.where(total > 0, w * m / total.clamp(min=1e-300), w)
    return w


@dataclass(frozen=True)
class ParetoMTLOptions:
    epsilon: float = 0.1  # preference (1, ε, …) of the target
    sign: str = "icpa"
    include_uniform: bool = True  # add (1/m)·1 to the preference set, as the reference code
    rescale: bool = False
    tol: float = 1e-10
    # auto: the NumPy solver when the losses live on the CPU (today's results, bit for bit),
    # the torch one on the device otherwise (no host sync, no gradient copy to the host).
    solver: str = "auto"

    def __post_init__(self) -> None:
        if self.solver not in ("auto", "numpy", "torch"):
            raise ConfigError(f"pareto_mtl.solver must be 'auto', 'numpy' or 'torch', got {self.solver!r}")
        if not 0 <= self.epsilon <= 1:
            raise ConfigError(f"pareto_mtl.epsilon must lie in [0, 1], got {self.epsilon}")
        if self.sign not in ("icpa", "original"):
            raise ConfigError(f"pareto_mtl.sign must be 'icpa' or 'original', got {self.sign!r}")


class ParetoMTLWeighting(AbsWeighting):
    """ParetoMTL with the target's preference, re-checking the cone every step (ICPA code)."""

    name = "pareto_mtl"
    needs_grads = True
    Options = ParetoMTLOptions

    def __init__(self, n_sources: int, target: int | None = None, options: ParetoMTLOptions | None = None) -> None:
        super().__init__(n_sources, target, options)
        if target is None:
            raise ConfigError("pareto_mtl needs a target source")
        self.preferences, self.k = preference_set(n_sources, target, self.options.epsilon,
                                                  self.options.include_uniform)
        self.last: PMTLStep | None = None

    def weights(self, losses: Tensor, present: Tensor, grads: Tensor | None,
                generator: torch.Generator | None) -> Tensor:
        assert grads is not None
        solver = self.options.solver
        if solver == "torch" or (solver == "auto" and losses.device.type != "cpu"):
            L0 = torch.where(present, losses, torch.zeros_like(losses))
            g = grads.to(torch.float64)
            w = pmtl_weights_torch(L0, g @ g.T, torch.as_tensor(self.preferences), self.k, sign=self.options.sign,
                                   rescale=self.options.rescale, tol=self.options.tol)
            self.last = None  # the step's mode and active set stay on the device (reading them would sync)
            return w.to(losses.dtype)
        L = torch.where(present, losses, torch.zeros_like(losses)).double().cpu().numpy()
        step = pmtl_weights(L, grads.double().cpu().numpy(), self.preferences, self.k,
                            sign=self.options.sign, rescale=self.options.rescale, tol=self.options.tol)
        self.last = step
        return torch.as_tensor(step.weights, dtype=losses.dtype, device=losses.device)
