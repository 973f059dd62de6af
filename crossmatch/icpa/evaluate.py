"""The ranking protocol of issue 10: validation / test splits, one scorer interface, per-user metrics.

Every method — learned (eq. 10 over the model's item–item term), non-learned
(:mod:`crossmatch.icpa.rankers`) or a hybrid of both — is a *scorer*: a function from a chunk
of users' history weights (``[u, n]`` sparse, rows summing to 1) to dense scores ``[u, n]``.
All are evaluated on the same users, candidates and exclusions (ALGORITHMS.md §2.9):

* ``valid``: history = training events, relevant = the validation events. Settings are chosen here.
* ``test``: history = training + validation events, relevant = the test events. Reported once.

The item–item parts (co-occurrence, EASE, the GNN) are fitted on training events only, so
neither evaluation leaks; using validation events as *history* at test time is the usual
leave-one-out practice (the model is not re-fitted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from crossmatch.metrics.ranking import per_user_metrics
from crossmatch.topk import best_k

Scorer = Callable[[sp.csr_matrix], np.ndarray]


@dataclass(frozen=True)
class Split:
    """One evaluation split: histories of all users and the relevant items of the evaluated ones."""

    history: sp.csr_matrix  # [n_users, n_items] summed interaction weights
    users: np.ndarray  # evaluated users (have history and at least one retrievable relevant item)
    indptr: np.ndarray  # CSR over ``users`` into ``items``
    items: np.ndarray
    events: np.ndarray  # relevant events per evaluated user (query-frequency weights)

    @property
    def n_items(self) -> int:
        return int(self.history.shape[1])


def _frame(f: pl.DataFrame) -> pl.DataFrame:
    cols = [pl.col("user_idx").cast(pl.Int64), pl.col("item_idx").cast(pl.Int64)]
    w = pl.col("weight").cast(pl.Float64) if "weight" in f.columns else pl.lit(1.0)
    return f.select(*cols, w.alias("weight"))


def make_split(history: Sequence[pl.DataFrame], relevant: pl.DataFrame, n_users: int, n_items: int, *,
               exclude_history: bool = True) -> Split:
    """Build a :class:`Split` from history frames and the relevant events (``user_idx, item_idx[, weight]``).

    Users with no history cannot be scored by eq. 10 and are left out; with
    ``exclude_history`` so are relevant items already in the history (never retrievable).
    """
    hist = pl.concat([_frame(f) for f in history]) if history else pl.DataFrame(
        schema={"user_idx": pl.Int64, "item_idx": pl.Int64, "weight": pl.Float64})
    hist = hist.filter((pl.col("user_idx") < n_users) & (pl.col("item_idx") < n_items))
    H = sp.csr_matrix((hist.get_column("weight").to_numpy(),
                       (hist.get_column("user_idx").to_numpy(), hist.get_column("item_idx").to_numpy())),
                      shape=(n_users, n_items))
    H.sum_duplicates()
    rel = _frame(relevant).filter((pl.col("user_idx") < n_users) & (pl.col("item_idx") < n_items))
    events = rel.group_by("user_idx").len()
    pairs = rel.select("user_idx", "item_idx").unique()
    if exclude_history and pairs.height and hist.height:
        pairs = pairs.join(hist.select("user_idx", "item_idx").unique(), on=["user_idx", "item_idx"], how="anti")
    has_hist = np.diff(H.indptr) > 0
    if pairs.height:
        pairs = pairs.filter(pl.Series(has_hist[pairs.get_column("user_idx").to_numpy()]))
    pairs = pairs.sort("user_idx", "item_idx")
    users, counts = np.unique(pairs.get_column("user_idx").to_numpy(), return_counts=True)
    ev = dict(zip(events.get_column("user_idx").to_list(), events.get_column("len").to_list(), strict=True))
    return Split(history=H, users=users.astype(np.int64),
                 indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                 items=pairs.get_column("item_idx").to_numpy().astype(np.int64),
                 events=np.array([ev.get(int(u), 0) for u in users], dtype=np.float64))


def protocol_splits(train: pl.DataFrame, valid: pl.DataFrame, test: pl.DataFrame, n_users: int, n_items: int, *,
                    exclude_history: bool = True) -> dict[str, Split]:
    """The two splits of the protocol: ``valid`` (history = train) and ``test`` (history = train + valid)."""
    n_users = max([n_users] + [int(f.get_column("user_idx").to_numpy().max()) + 1 for f in (valid, test) if f.height])
    return {"valid": make_split([train], valid, n_users, n_items, exclude_history=exclude_history),
            "test": make_split([train, valid], test, n_users, n_items, exclude_history=exclude_history)}


def leave_one_out_split(train: pl.DataFrame, valid: pl.DataFrame, test: pl.DataFrame, n_users: int,
                        n_items: int) -> tuple[Split, sp.csr_matrix]:
    """Each user's earliest test event against train + valid history, and every known interaction
    (train, valid, test) — the inputs of :func:`crossmatch.icpa.sampled.sampled_ranking`."""
    te = test.with_row_index("_row")
    first = te.sort("timestamp", "_row").group_by("user_idx", maintain_order=True).first()
    loo = make_split([train, valid], first, n_users, n_items)
    known = make_split([train, valid, test], test.head(0), n_users, n_items).history
    return loo, known


def normalised_rows(H: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum 1 (eq. 10's ``w(x, y') / Σ w``)."""
    s = np.asarray(H.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(s, 1e-12)) @ H)


def matrix_scorer(S: sp.spmatrix | np.ndarray, tie_break: np.ndarray | None = None) -> Scorer:
    """``h_u S`` for an item–item matrix; ``S`` 1-D means the same scores for everybody (popularity).

    ``tie_break`` (e.g. popularity) adds a tiny term so items the matrix gives no score to are
    still ordered deterministically and sensibly.
    """
    tb = None if tie_break is None else 1e-9 * tie_break / max(float(np.max(tie_break, initial=0.0)), 1.0)

    def score(Hu: sp.csr_matrix) -> np.ndarray:
        if S.ndim == 1:
            out = np.tile(np.asarray(S, dtype=np.float64), (Hu.shape[0], 1))
        else:
            prod = Hu @ S
            out = np.asarray(prod.todense() if sp.issparse(prod) else prod, dtype=np.float64)
        return out + tb if tb is not None else out

    return score


def hybrid_scorer(learned: Scorer, ranker: Scorer, weight: float) -> Scorer:
    """``(1 − w)·z(ranker) + w·z(learned)``: per-user standardised scores, ``w`` chosen on validation.

    Standardising per user puts the two score scales on one footing, so ``w`` is the share of
    the ranking decided by the learned model (a learned correction on top of the ranker).
    """

    def z(x: np.ndarray) -> np.ndarray:
        mu = x.mean(axis=1, keepdims=True)
        sd = x.std(axis=1, keepdims=True)
        return (x - mu) / np.maximum(sd, 1e-12)

    def score(Hu: sp.csr_matrix) -> np.ndarray:
        return (1.0 - weight) * z(ranker(Hu)) + weight * z(learned(Hu))

    return score


def topk(scorer: Scorer, split: Split, k: int, *, exclude_history: bool = True, chunk: int | None = None) -> np.ndarray:
    """``[len(split.users), k]`` best items per evaluated user (history items excluded), best first; tied scores
    go to the smaller item id on every CPU (:mod:`crossmatch.topk`; both retrieval ``topk`` methods keep that rule).

    A scorer with a ``topk(H, k, exclude_history)`` method (the eq. 10 scorers of
    :mod:`crossmatch.icpa.retrieval`) ranks all users at once without dense ``[u, n]`` scores.
    Otherwise users go in chunks of ``chunk`` rows; by default as many as keep the dense
    ``[chunk, n]`` float64 scores at ~128 MB (1024 users up to 16 k items).
    """
    k = min(k, split.n_items)
    fast = getattr(scorer, "topk", None)
    if callable(fast):
        return np.asarray(fast(normalised_rows(split.history[split.users]), k, exclude_history), dtype=np.int64)
    chunk = chunk or max(1, min(1024, (1 << 24) // max(split.n_items, 1)))
    out = []
    for s in range(0, split.users.size, chunk):
        Hu = normalised_rows(split.history[split.users[s:s + chunk]])
        scores = scorer(Hu)
        if exclude_history:
            r, c = Hu.nonzero()
            scores[r, c] = -np.inf
        out.append(best_k(scores, k)[0])  # ties (popularity counts, zeros) by the smaller item id, on any CPU
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def evaluate_scorer(scorer: Scorer, split: Split, ks: Sequence[int], *, exclude_history: bool = True,
                    frequency_weighting: bool = False) -> dict[str, object]:
    """Mean and per-user NDCG@k / F@k / precision / recall of one scorer on one split.

    Returns ``{"users": n, "<k>": {metric: mean}, "per_user": {"<k>": {metric: array}}}``;
    the per-user arrays (aligned with ``split.users``) feed the paired bootstrap.
    """
    out: dict[str, object] = {"users": int(split.users.size)}
    if split.users.size == 0:
        for k in ks:
            out[str(k)] = {m: float("nan") for m in ("ndcg", "f", "precision", "recall")}
        out["per_user"] = {}
        return out
    top = topk(scorer, split, max(ks), exclude_history=exclude_history)
    per = per_user_metrics(top, split.indptr, split.items, ks)
    w = split.events if frequency_weighting else np.ones(split.users.size)
    for k, vals in per.items():
        out[str(k)] = {m: float(np.average(v, weights=w)) for m, v in vals.items()}
    out["per_user"] = {str(k): {m: v.astype(np.float32) for m, v in vals.items()} for k, vals in per.items()}
    return out


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict[str, float]:
    """Paired bootstrap over users of ``mean(a − b)``; ``a``, ``b`` are ``[seeds, users]`` or ``[users]``.

    With several seeds the per-user difference is first averaged over seeds (the same users are
    evaluated in every seed), then users are resampled: the interval covers user sampling noise
    of the seed-averaged comparison (issue 10, item 3).
    """
    a2, b2 = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a2.shape != b2.shape:
        raise ValueError(f"paired bootstrap needs equal shapes, got {a2.shape} and {b2.shape}")
    d = (a2 - b2).mean(axis=0)
    if d.size == 0:
        return {"delta": float("nan"), "lo": float("nan"), "hi": float("nan"), "users": 0}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    alpha = (1.0 - level) / 2
    return {"delta": float(d.mean()), "lo": float(np.quantile(means, alpha)),
            "hi": float(np.quantile(means, 1 - alpha)), "users": int(d.size)}


def transfer_verdict(ci: dict[str, float]) -> str:
    """``negative`` when the whole interval lies below 0, ``positive`` above, else ``no significant difference``."""
    if ci["hi"] < 0:
        return "negative"
    if ci["lo"] > 0:
        return "positive"
    return "no significant difference"
