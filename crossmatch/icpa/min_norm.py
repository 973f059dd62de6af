"""Minimum-norm point in the convex hull of vectors (the MGDA / ParetoMTL sub-problem, §2.7).

``α* = argmin_{α ∈ Δ} ||Σ_p α_p q_p||² = argmin_{α ∈ Δ} αᵀ M α`` with ``M`` the Gram matrix.
The reference codes run a fixed number of projected-gradient iterations (20 in ICPA, 250 in
ParetoMTL). Here the problem is solved to a tolerance: the Sener–Koltun two-point rule gives
the start, then pairwise Frank–Wolfe steps with exact line search (linear convergence on the
simplex) run until the Frank–Wolfe duality gap — an upper bound on the distance to the
optimal value — falls below ``tol``. The result satisfies the KKT conditions of the QP:
``(Mα)_p ≥ αᵀMα`` for all ``p``, with equality on the support.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MinNormResult:
    weights: np.ndarray  # α on the simplex
    value: float  # αᵀ M α (in the units of the given Gram matrix)
    gap: float  # Frank–Wolfe duality gap at the end (same units)
    iterations: int


def _two_point(m11: float, m12: float, m22: float) -> tuple[float, float]:
    """Minimiser ``γ`` of ``||γ v1 + (1−γ) v2||²`` and its value (Sener & Koltun, Alg. 1)."""
    if m12 >= m11:
        return 0.999, m11
    if m12 >= m22:
        return 0.001, m22
    gamma = (m22 - m12) / (m11 + m22 - 2 * m12)
    return gamma, m22 + gamma * (m12 - m22)


def min_norm_simplex(gram: np.ndarray, *, tol: float = 1e-10, max_iter: int = 10_000) -> MinNormResult:
    """Solve ``min_{α ∈ Δ} αᵀ M α`` for a symmetric positive semi-definite ``M``.

    Args:
        gram: ``[n, n]`` Gram matrix ``M_pq = q_pᵀ q_q``.
        tol: stop when the duality gap, relative to ``max(diag M)``, is below ``tol``.
        max_iter: iteration cap (reached only for pathological inputs).

    Raises:
        ValueError: non-square, non-finite or asymmetric input.
    """
    M = np.asarray(gram, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(f"gram must be a non-empty square matrix, got shape {M.shape}")
    if not np.all(np.isfinite(M)):
        raise ValueError("gram contains non-finite values")
    scale = float(np.max(np.abs(np.diag(M)))) if M.size else 1.0
    if not np.allclose(M, M.T, atol=1e-8 * max(scale, 1.0)):
        raise ValueError("gram must be symmetric")
    n = M.shape[0]
    if n == 1:
        return MinNormResult(np.ones(1), float(M[0, 0]), 0.0, 0)
    if scale == 0.0:  # all vectors zero: every α is optimal
        return MinNormResult(np.full(n, 1.0 / n), 0.0, 0.0, 0)
    A = M / scale  # the minimiser is scale-free; tolerances become relative

    # Two-point initialisation: the best pair (p, q) and its optimal mix.
    alpha = np.zeros(n)
    best = np.inf
    for p in range(n):
        for q in range(p + 1, n):
            g, v = _two_point(A[p, p], A[p, q], A[q, q])
            if v < best:
                best, alpha[:] = v, 0.0
                alpha[p], alpha[q] = g, 1 - g
    iterations = 0
    gap = np.inf
    while iterations < max_iter:
        iterations += 1
        grad = A @ alpha  # half the gradient of αᵀAα
        s = int(np.argmin(grad))
        gap = float(alpha @ grad - grad[s])
        if gap <= tol:
            break
        support = np.flatnonzero(alpha > 0)
        v = int(support[np.argmax(grad[support])])
        if v == s:
            break
        # Pairwise step: move mass from the worst support vertex v to the best vertex s.
        d = np.zeros(n)
        d[s], d[v] = 1.0, -1.0
        curv = float(d @ A @ d)
        slope = float(d @ grad)
        cap = alpha[v]
        step = cap if curv <= 0 else min(cap, max(0.0, -slope / curv))
        alpha[s] += step
        # A full step empties v exactly (no round-off residue left in the support).
        alpha[v] = 0.0 if step >= cap else alpha[v] - step
    alpha = np.clip(alpha, 0.0, None)
    alpha /= alpha.sum()
    value = float(alpha @ M @ alpha)
    return MinNormResult(alpha, value, gap * scale, iterations)


def min_norm_simplex_torch(gram: torch.Tensor, mask: torch.Tensor | None = None, *, tol: float = 1e-10,
                           iterations: int = 200, exact_max: int = 8) -> torch.Tensor:
    """``min_{α ∈ Δ} αᵀ M α`` in torch on the Gram matrix's device, without host syncs (§2.7 solver).

    ParetoMTL solves this every phase-2 step on ≤ m + 1 vectors; reading a convergence test
    back to the host each iteration would idle the GPU. For ``n ≤ exact_max`` vectors the
    problem is solved exactly in one batched computation: for every candidate support ``S``
    (all ``2ⁿ − 1`` subsets of ``mask``) the KKT system ``M_S α_S = λ·1, 1ᵀα_S = 1`` is solved
    (pseudo-inverse, so singular ``M`` is fine) and the feasible (``α ≥ 0``) solution of least
    value is kept. An optimum whose support is minimal is the unique KKT solution on that
    support, so this is the global optimum. Unlike the pairwise Frank–Wolfe iteration of
    :func:`min_norm_simplex` it does not slow down on the rank-deficient Gram matrices of
    ParetoMTL's initialisation step (``m`` constraint rows of rank ≤ ``m − 1``; the NumPy
    solver can need >1 000 iterations there). Larger ``n`` uses that iteration with a fixed
    ``iterations`` count. ``tests/icpa/test_min_norm.py`` checks it against the NumPy solver.

    Args:
        gram: ``[n, n]`` symmetric PSD Gram matrix (not validated: validation would sync).
        mask: ``[n]`` bool, the vectors that may carry weight (ParetoMTL's active rows); the
            others get weight 0 — the same as solving on the sub-matrix. ``None``: all.
        tol: relative duality-gap tolerance of the iterative path.

    Returns:
        ``[n]`` float64 weights on the simplex over ``mask`` (uniform over ``mask`` when every
        masked vector is zero; all zeros when ``mask`` is empty).
    """
    n = gram.shape[0]
    if n > exact_max:
        return _pairwise_fw_torch(gram, mask, tol=tol, iterations=iterations)
    M = gram.to(torch.float64)
    dev = M.device
    ok = torch.ones(n, dtype=torch.bool, device=dev) if mask is None else mask.to(dev, torch.bool)
    diag = torch.diagonal(M)
    scale = torch.where(ok, diag.abs(), torch.zeros_like(diag)).max()
    A = M / torch.where(scale > 0, scale, torch.ones_like(scale))  # scale-free: tolerances become relative
    codes = torch.arange(1, 2 ** n, device=dev)
    subsets = (codes.unsqueeze(1) >> torch.arange(n, device=dev)) & 1 == 1  # [S, n]
    # Smallest supports first: among equal values argmin keeps the sparsest solution.
    subsets = subsets[torch.argsort(subsets.sum(1), stable=True)]
    inside = subsets.to(torch.float64)
    S = subsets.shape[0]
    kkt = torch.zeros(S, n + 1, n + 1, dtype=torch.float64, device=dev)
    eye = torch.eye(n, dtype=torch.float64, device=dev)
    # rows of S: (A α)_i − λ = 0 over the columns of S; rows outside S: α_i = 0; last row: Σ α = 1
    kkt[:, :n, :n] = torch.where(subsets.unsqueeze(2), A.unsqueeze(0) * inside.unsqueeze(1), eye.unsqueeze(0))
    kkt[:, :n, n] = -inside
    kkt[:, n, :n] = inside
    rhs = torch.zeros(n + 1, dtype=torch.float64, device=dev)
    rhs[n] = 1.0
    sol = torch.linalg.pinv(kkt) @ rhs  # [S, n + 1]
    alpha = sol[:, :n]
    resid = (kkt @ sol.unsqueeze(2)).squeeze(2) - rhs
    value = ((alpha @ A) * alpha).sum(1)
    feasible = ((subsets & ~ok).sum(1) == 0) & (alpha >= -1e-9).all(1) & (resid.abs().amax(1) <= 1e-8)
    best = torch.argmin(torch.where(feasible, value, torch.full_like(value, float("inf"))))
    out = alpha[best].clamp(min=0.0) * ok
    out = out / out.sum().clamp(min=1e-300)
    n_ok = ok.sum()
    single = ok.to(torch.float64)
    out = torch.where(n_ok == 0, torch.zeros_like(out), out)
    # all masked vectors zero: every α is optimal; the NumPy solver returns the uniform one
    return torch.where((scale == 0) & (n_ok > 0), single / n_ok.clamp(min=1), out)


def _pairwise_fw_torch(gram: torch.Tensor, mask: torch.Tensor | None = None, *, tol: float = 1e-10,
                       iterations: int = 100) -> torch.Tensor:
    """:func:`min_norm_simplex`'s algorithm in torch (two-point start, pairwise Frank–Wolfe), for
    ``n`` too large to enumerate supports. A fixed number of ``iterations``; a converged solve stops
    moving (device-side flag) instead of breaking out, so there is no host sync. Degenerate Gram
    matrices (fewer dimensions than vectors) can need more iterations than given."""
    M = gram.to(torch.float64)
    n = M.shape[0]
    dev = M.device
    ok = torch.ones(n, dtype=torch.bool, device=dev) if mask is None else mask.to(dev, torch.bool)
    diag = torch.diagonal(M)
    scale = torch.where(ok, diag.abs(), torch.zeros_like(diag)).max()
    A = M / torch.where(scale > 0, scale, torch.ones_like(scale))
    dA = torch.diagonal(A)
    m11, m22 = dA.unsqueeze(1).expand(n, n), dA.unsqueeze(0).expand(n, n)
    den = m11 + m22 - 2 * A
    mix = (m22 - A) / torch.where(den > 0, den, torch.ones_like(den))
    gamma = torch.where(A >= m11, torch.full_like(A, 0.999), torch.where(A >= m22, torch.full_like(A, 0.001), mix))
    cost = torch.where(A >= m11, m11, torch.where(A >= m22, m22, m22 + mix * (A - m22)))
    pair_ok = torch.triu(torch.ones(n, n, dtype=torch.bool, device=dev), 1) & ok.unsqueeze(1) & ok.unsqueeze(0)
    # argmin returns the first minimum in row-major order: the NumPy loop's (p < q, strict <) choice.
    best = torch.argmin(torch.where(pair_ok, cost, torch.full_like(cost, float("inf"))).reshape(-1))
    p, q = best // n, best % n
    eye = torch.eye(n, dtype=torch.float64, device=dev)
    g_pq = gamma.reshape(-1)[best]
    alpha = g_pq * eye[p] + (1 - g_pq) * eye[q]
    n_ok = ok.sum()
    # One usable vector: all weight on it; none: zeros; all-zero vectors: every α is optimal (uniform).
    single = ok.to(torch.float64)
    alpha = torch.where(n_ok == 1, single, alpha)
    alpha = torch.where(n_ok == 0, torch.zeros_like(alpha), alpha)
    uniform = single / n_ok.clamp(min=1)
    alpha = torch.where((scale == 0) & (n_ok > 1), uniform, alpha)
    done = (n_ok <= 1) | (scale == 0)
    inf = torch.full((n,), float("inf"), dtype=torch.float64, device=dev)
    idx = torch.arange(n, device=dev)
    for _ in range(iterations):
        grad = A @ alpha  # half the gradient of αᵀAα
        s = torch.argmin(torch.where(ok, grad, inf))
        gap = alpha @ grad - grad[s]
        done = done | (gap <= tol)
        support = (alpha > 0) & ok
        v = torch.argmax(torch.where(support, grad, -inf))
        done = done | (v == s)
        d = eye[s] - eye[v]
        curv = d @ A @ d
        slope = d @ grad
        cap = alpha[v]
        line = torch.clamp(-slope / torch.where(curv > 0, curv, torch.ones_like(curv)), min=0.0)
        step = torch.where(curv <= 0, cap, torch.minimum(cap, line))
        step = torch.where(done, torch.zeros_like(step), step)
        # Pairwise step: mass from v to s; a full step empties v exactly, as in the NumPy solver.
        emptied = torch.where(step >= cap, torch.zeros_like(cap), cap - step)
        alpha = torch.where(idx == v, emptied, alpha) + step * eye[s]
    alpha = alpha.clamp(min=0.0)
    return alpha / alpha.sum().clamp(min=1e-300)
