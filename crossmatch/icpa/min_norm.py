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
