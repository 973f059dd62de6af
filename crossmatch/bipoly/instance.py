"""A BiPoly problem instance: two node sets, a sparse similarity ĥ and the per-side rewards.

ALGORITHMS.md §1.1–§1.3. Every solver in :mod:`crossmatch.bipoly` takes an :class:`Instance`
(the candidate pairs ``(l, r)`` with their rescaled similarity ``ĥ(l, r)``) and a
:class:`Rewards` (reclusivity ``ω`` and receptivity ``η`` per side, §1.3 "tied per side").

Pairs absent from the instance have similarity 0 and are not candidates. Greedy methods
skip zero pairs anyway (§1.5 step 1, §1.6-C); the ILP optimises over exactly the pairs of
the instance, so a dense instance built with ``keep_zeros=True`` reproduces the paper's
all-pairs model while a top-k instance restricts it (see :mod:`crossmatch.bipoly.ilp`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import numpy as np
import scipy.sparse as sp

from crossmatch.errors import ConfigError, InputError

T = TypeVar("T")

Side = Literal["left", "right"]


@dataclass(frozen=True)
class Rewards:
    """Reclusivity ``ω`` and receptivity ``η`` per side (paper eq. 3, Table I).

    A reclusive host on side L earns ``omega_l``; a receptive host on side L earns ``eta_l``.
    ``Rewards()`` (all zero) is the max-weight objective (eq. 1).
    """

    omega_l: float = 0.0
    omega_r: float = 0.0
    eta_l: float = 0.0
    eta_r: float = 0.0

    def __post_init__(self) -> None:
        for name in ("omega_l", "omega_r", "eta_l", "eta_r"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(float(v)):
                raise ConfigError(f"BiPoly reward '{name}' must be a finite number, got {v!r}")

    @classmethod
    def tied(cls, omega: float, eta: float) -> Rewards:
        """``ω_L = ω_R = omega`` and ``η_L = η_R = eta`` (the paper's grid, §1.3)."""
        return cls(omega, omega, eta, eta)

    def omega(self, side: Side) -> float:
        return self.omega_l if side == "left" else self.omega_r

    def eta(self, side: Side) -> float:
        return self.eta_l if side == "left" else self.eta_r

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.omega_l, self.omega_r, self.eta_l, self.eta_r)


MAX_WEIGHT = Rewards()


@dataclass(frozen=True)
class Instance:
    """Candidate pairs of ``L × R`` with their similarity ``ĥ ∈ [0, 1]`` (§1.1).

    Attributes:
        n_left, n_right: ``m = |L|`` and ``n = |R|``.
        left, right: int64 arrays, one entry per candidate pair, sorted by ``(left, right)``
            and free of duplicates.
        weight: float64 ``ĥ(left[e], right[e])``.
        left_names, right_names: optional labels (category names) for reports.
    """

    n_left: int
    n_right: int
    left: np.ndarray
    right: np.ndarray
    weight: np.ndarray
    left_names: tuple[str, ...] | None = field(default=None, repr=False)
    right_names: tuple[str, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.n_left < 1 or self.n_right < 1:
            raise InputError(
                f"a BiPoly instance needs at least one node per side, got {self.n_left} x {self.n_right}"
            )
        if not (len(self.left) == len(self.right) == len(self.weight)):
            raise InputError("pair arrays 'left', 'right' and 'weight' differ in length")
        w = self.weight
        if w.size and not np.isfinite(w).all():
            bad = np.flatnonzero(~np.isfinite(w))
            raise InputError(
                f"similarity contains NaN or infinite values at pair(s) "
                f"{[(int(self.left[i]), int(self.right[i])) for i in bad[:5]]}",
                n_bad=int(bad.size),
            )
        if w.size and (w.min() < 0.0 or w.max() > 1.0 + 1e-12):
            raise InputError(
                f"similarity must lie in [0, 1] (rescale it first, ALGORITHMS.md §1.2); "
                f"found range [{w.min():.4g}, {w.max():.4g}]"
            )
        if self.left.size:
            if self.left.min() < 0 or self.left.max() >= self.n_left:
                raise InputError(f"left index out of range 0..{self.n_left - 1}")
            if self.right.min() < 0 or self.right.max() >= self.n_right:
                raise InputError(f"right index out of range 0..{self.n_right - 1}")
            key = self.left * self.n_right + self.right
            if np.any(np.diff(key) <= 0):
                raise InputError("candidate pairs must be sorted by (left, right) without duplicates")
        for names, n, side in ((self.left_names, self.n_left, "left"), (self.right_names, self.n_right, "right")):
            if names is not None and len(names) != n:
                raise InputError(f"{len(names)} {side} names for {n} {side} nodes")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_pairs(
        cls,
        n_left: int,
        n_right: int,
        left: np.ndarray,
        right: np.ndarray,
        weight: np.ndarray,
        *,
        left_names: tuple[str, ...] | None = None,
        right_names: tuple[str, ...] | None = None,
    ) -> Instance:
        """Sort and validate unsorted pairs (duplicates are an error)."""
        left = np.asarray(left, dtype=np.int64)
        right = np.asarray(right, dtype=np.int64)
        weight = np.asarray(weight, dtype=np.float64)
        order = np.lexsort((right, left))
        left, right, weight = left[order], right[order], weight[order]
        if left.size:
            key = left * n_right + right
            dup = np.flatnonzero(np.diff(key) == 0)
            if dup.size:
                raise InputError(
                    f"duplicate candidate pair(s) {[(int(left[i]), int(right[i])) for i in dup[:5]]}",
                    n_bad=int(dup.size),
                )
        return cls(n_left, n_right, left, right, weight, left_names, right_names)

    @classmethod
    def from_sparse(cls, matrix: sp.spmatrix | sp.sparray, **names: tuple[str, ...] | None) -> Instance:
        """Instance from a sparse ``m × n`` matrix of ĥ; stored zeros are dropped."""
        coo = sp.coo_matrix(matrix)
        keep = coo.data != 0
        m, n = coo.shape
        return cls.from_pairs(m, n, coo.row[keep], coo.col[keep], coo.data[keep], **names)

    @classmethod
    def from_dense(cls, matrix: np.ndarray, *, keep_zeros: bool = False, **names: tuple[str, ...] | None) -> Instance:
        """Instance from a dense ``m × n`` array of ĥ.

        ``keep_zeros=True`` keeps every pair as a candidate, so the ILP is the paper's all-pairs
        model (eq. 3–11); greedy methods ignore zero pairs either way.
        """
        a = np.asarray(matrix, dtype=np.float64)
        if a.ndim != 2:
            raise InputError(f"similarity must be a 2-d matrix, got shape {a.shape}")
        m, n = a.shape
        if m == 0 or n == 0:
            raise InputError(f"similarity matrix is empty (shape {a.shape})")
        if keep_zeros:
            rr, cc = np.divmod(np.arange(m * n, dtype=np.int64), n)
            return cls(m, n, rr, cc, a.reshape(-1).copy(), names.get("left_names"), names.get("right_names"))
        rr, cc = np.nonzero(a)
        return cls(m, n, rr.astype(np.int64), cc.astype(np.int64), a[rr, cc], names.get("left_names"), names.get("right_names"))

    # ------------------------------------------------------------------ derived data, computed once
    def memo(self, key: str, build: Callable[[], T]) -> T:
        """``build()``, computed once per instance and kept with it: orderings that depend on the pairs only
        (e.g. the greedy's sorted candidate lists), which the ω/η grid would otherwise rebuild at every point
        (about two thirds of a grid point's time at 4,000 categories per side). The arrays are shared:
        callers must not write to them. Not pickled (worker processes rebuild it once per task)."""
        cache: dict[str, Any] = self.__dict__.setdefault("_memo", {})
        if key not in cache:
            cache[key] = build()
        return cast(T, cache[key])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_memo", None)
        return state

    # ------------------------------------------------------------------ views
    @property
    def n_pairs(self) -> int:
        return int(self.weight.size)

    @property
    def n_nodes(self) -> int:
        return self.n_left + self.n_right

    def csr(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.weight, (self.left, self.right)), shape=(self.n_left, self.n_right))

    def dense(self) -> np.ndarray:
        out = np.zeros((self.n_left, self.n_right))
        out[self.left, self.right] = self.weight
        return out

    def lookup(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """ĥ of arbitrary pairs (0 for pairs that are not candidates)."""
        left = np.asarray(left, dtype=np.int64)
        right = np.asarray(right, dtype=np.int64)
        key = self.left * self.n_right + self.right
        q = left * self.n_right + right
        pos = np.searchsorted(key, q)
        pos_c = np.minimum(pos, max(key.size - 1, 0))
        hit = (pos < key.size) & (key[pos_c] == q) if key.size else np.zeros(q.size, dtype=bool)
        return np.where(hit, self.weight[pos_c] if key.size else 0.0, 0.0)

    def positive(self) -> Instance:
        """The same instance without zero-similarity pairs (what the greedy methods see)."""
        keep = self.weight > 0
        if keep.all():
            return self
        return Instance(self.n_left, self.n_right, self.left[keep], self.right[keep], self.weight[keep],
                        self.left_names, self.right_names)

    def transpose(self) -> Instance:
        """Swap the roles of L and R."""
        return Instance.from_pairs(self.n_right, self.n_left, self.right, self.left, self.weight,
                                   left_names=self.right_names, right_names=self.left_names)

    def restrict(self, keep: np.ndarray) -> Instance:
        """Only the candidate pairs where ``keep`` (bool, one per pair) is true."""
        return Instance(self.n_left, self.n_right, self.left[keep], self.right[keep], self.weight[keep],
                        self.left_names, self.right_names)


def rescale_minmax(values: np.ndarray, *, n_total: int | None = None) -> tuple[np.ndarray, float, float]:
    """Global min–max rescaling ``ĥ = (S − min S) / (max S − min S)`` (ALGORITHMS.md §1.2).

    Args:
        values: the stored (non-zero) similarities.
        n_total: number of entries of the full ``m × n`` matrix. When it exceeds
            ``len(values)`` the implicit zeros take part in the minimum, as in the code's dense
            matrix, so a non-negative similarity is simply divided by its maximum.

    Returns:
        ``(rescaled values, min, max)``.

    Raises:
        InputError: NaN values, or a constant similarity (all zero included) that cannot be rescaled.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size and np.isnan(v).any():
        raise InputError(f"similarity contains NaN values ({int(np.isnan(v).sum())} entries)")
    implicit_zero = n_total is not None and n_total > v.size
    lo = float(v.min()) if v.size else 0.0
    hi = float(v.max()) if v.size else 0.0
    if implicit_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if not v.size or hi <= lo:
        raise InputError(
            "all similarities are equal (all zero?): the categories share no tokens, nothing can be matched"
        )
    return (v - lo) / (hi - lo), lo, hi
