"""Eq. 10 retrieval without an items² matrix (ALGORITHMS.md §2.9, AU protocol; issue 11 part 2).

``score(y | x) = Σ_{y' ∈ H_x} w(x, y') / Σ w · π(<a_{y'}, c_y>)`` with ``a`` the anchor and ``c`` the
context embeddings and ``π`` one of :data:`SCORES` (:func:`pair_scores`). The item–item matrix
``π(A Cᵀ)`` has items² entries (7.2 GB in float32 at 42 k items), so it is never built:

* **exact** (:func:`exact_topk`, :class:`EmbeddingScorer`): candidate items in blocks; for each block
  ``π(A C_blockᵀ)`` (``[n, block]``) times the history rows, merged into a running top-k
  (``torch.topk``). Memory ``O(n·d + n·block + users_chunk·block + users·k)``; the scores are the
  exact eq. 10 scores, so rankings equal the dense matrix's up to float rounding at ties.
* **knn** (:func:`knn_graph`, :class:`GraphScorer`): the item-kNN way. Each history item keeps only
  its top-``K`` candidates by inner product (faiss ``IndexFlatIP``, an exact search), giving a sparse
  ``[n, n]`` graph with ``n·K`` entries, and the scores are one sparse product ``H_norm @ S``, computed
  per chunk of users on threads (one per core, at most 4; identical results for any count).
  Eq. 10's tail is not zero (``σ(s) ≥ σ(−1) ≈ 0.27``), so each row ``y'`` is stored minus a
  per-row *floor* ``f_{y'}``: ``Σ_{y'} w f_{y'}`` is the same for every candidate of a user, so
  the subtraction leaves the exact ranking unchanged, and the truncation then drops the terms
  ``π(s) − f`` of the non-neighbours instead of ``π(s)``. The floor (:func:`default_floor`) is the
  row's mean pair score for ``sigmoid`` (dropped terms centred on 0) and the row's lower bound
  ``π(−‖a‖·max‖c‖)`` for the γ-sharpened scores (dropped terms in ``[0, π(s_K) − f]``, near 0 for
  ``e^{γs}``); ``none`` is kept for comparison. With ``K ≥ n`` no term is dropped and the ranking
  is the exact one.

Both scorers are :data:`crossmatch.icpa.evaluate.Scorer` callables (dense ``[u, n]`` scores for a
chunk of users, what hybrids and the sampled protocol need) and also carry a ``topk`` method that
:func:`crossmatch.icpa.evaluate.topk` uses for all users at once.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from crossmatch.icpa.sparse_topk import BUDGET, sparse_topk

SCORES = ("sigmoid", "sigmoid_gamma", "exp_gamma")  # pair-level terms (pair_scores, knn_graph, exact_topk)
# what icpa.eval.score accepts: the pair-level terms and softmax (embedding_scorer, via softmax_augment)
EVAL_SCORES = (*SCORES, "softmax")
RETRIEVALS = ("exact", "knn")
FLOORS = ("min", "mean", "none")
_SUB = 64  # columns per sparse product: a [n, 64] float32 block of π stays in cache


def pair_scores(s: Tensor, score: str = "sigmoid", gamma: float = 5.0) -> Tensor:
    """The item–item term of eq. 10 from cosines ``s``.

    ``sigmoid``: ``σ(s)`` (paper, eq. 10; Ambiguity 2.9-B recommendation). ``sigmoid_gamma``:
    ``σ(γ·s)``, the matching probability the model is trained to output. ``exp_gamma``:
    ``e^{γ·s}`` — **deviation**: with uniform negatives the BCE-optimal logit is
    ``γ·s(a, b) = log p(b | a) + const(a)``, so ``e^{γ·s}`` is proportional to the model's
    estimate of the walk probability ``p(y | y')`` and eq. 10 becomes the history-weighted sum
    of those probabilities, the same form as the co-occurrence ranker. ``σ(s)`` of a cosine is
    nearly linear, so the sum over a long history averages cosines and flattens the ranking
    (synthetic preset, Base: NDCG@10 0.27 / 0.28 / 0.31 for the three scores on alpha).
    All three are increasing in ``s`` (the knn floors rely on it).
    """
    if score == "sigmoid":
        return torch.sigmoid(s)
    if score == "sigmoid_gamma":
        return torch.sigmoid(gamma * s)
    if score == "exp_gamma":
        return torch.exp(gamma * s)
    if score == "softmax":
        raise ValueError("score 'softmax' normalises each history item's row over all items: use "
                         "softmax_augment (embedding_scorer does), not pair_scores")
    raise ValueError(f"score must be one of {SCORES}, got {score!r}")


@torch.no_grad()
def softmax_augment(A: Tensor, C: Tensor, gamma: float, *, block: int | None = None) -> tuple[Tensor, Tensor]:
    """Embeddings whose ``exp_gamma`` term is the row-normalised ``softmax`` term of eq. 10.

    ``softmax`` (deviation): ``π(y', y) = e^{γ s(y', y)} / Σ_z e^{γ s(y', z)}``, the model's
    ``p(y | y')`` normalised over all items. A softmax-trained model (``pairs.objective: softmax``)
    identifies ``γ·s(y', ·)`` only up to a constant per ``y'``, so without the normaliser the
    history items with a large partition function dominate the sum of eq. 10. Appending
    ``−log Z_{y'} / γ`` to the anchors and ``1`` to the contexts makes ``γ <a', c'> = γ s − log Z``,
    so both retrievals (exact and knn) use the normalised term unchanged. ``log Z`` is computed in
    candidate blocks (memory ``O(n · block)``, no items² matrix).
    """
    _check(A, C)
    n = C.shape[0]
    b = _block(n, block)
    log_z = torch.full((n,), float("-inf"), dtype=torch.float64, device=A.device)
    for lo in range(0, n, b):
        part = torch.logsumexp((gamma * (A @ C[lo:lo + b].T)).double(), dim=1)
        log_z = torch.logaddexp(log_z, part)
    shift = (-log_z / gamma).to(A.dtype).unsqueeze(1)
    return torch.cat([A, shift], 1), torch.cat([C, torch.ones(n, 1, dtype=C.dtype, device=C.device)], 1)


def _check(A: Tensor, C: Tensor, H: sp.spmatrix | None = None, k: int = 1) -> None:
    """Clear errors for inputs that would otherwise fail deep inside a matmul, or silently."""
    if A.ndim != 2 or C.ndim != 2 or A.shape != C.shape:
        raise ValueError(f"anchor and context embeddings must both be [n_items, d], got {tuple(A.shape)} and "
                         f"{tuple(C.shape)}")
    if H is not None and (not sp.issparse(H) or H.ndim != 2 or H.shape[1] != C.shape[0]):
        raise ValueError(f"history must be a sparse [users, n_items={C.shape[0]}] matrix, got "
                         f"{type(H).__name__} {getattr(H, 'shape', None)}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")


def _torch_csr(H: sp.csr_matrix) -> Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(H.indptr.astype(np.int64)),
                                       torch.from_numpy(H.indices.astype(np.int64)),
                                       torch.from_numpy(H.data.astype(np.float32)), size=H.shape,
                                       check_invariants=False)


def _block(n: int, block: int | None) -> int:
    if block is not None:
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        return block
    # [n, block] of π at most BUDGET elements, a whole number of _SUB columns.
    return max(_SUB, min(1024, BUDGET // max(n, 1)) // _SUB * _SUB)


def exact_scores(A: Tensor, C: Tensor, H: sp.csr_matrix, *, score: str = "sigmoid", gamma: float = 5.0,
                 block: int | None = None) -> np.ndarray:
    """Dense eq. 10 scores ``[u, n]`` (float64) for a chunk of users' normalised history rows ``H``.

    Only the anchors of the items in the chunk's histories enter (``π(A_U C_blockᵀ)``, ``[|U|, block]``
    per block), and the product with ``H`` is in float64 as the former dense ``H @ π(A Cᵀ)`` was
    (equal to it up to the last bit of the float32 cosines, which BLAS may round differently for a block).
    """
    _check(A, C, H)
    H = sp.csr_matrix(H)
    n = C.shape[0]
    used = np.unique(H.indices)
    Hu = H[:, used]
    Au = A[torch.from_numpy(used.astype(np.int64))]
    out = np.empty((H.shape[0], n), dtype=np.float64)
    b = _block(n, block)
    with torch.no_grad():
        for lo in range(0, n, b):
            P = pair_scores(Au @ C[lo:lo + b].T, score, gamma).numpy().astype(np.float64)
            out[:, lo:lo + b] = Hu @ P
    return out


def _history_keys(H: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the history entries, sorted by column (block slices by ``searchsorted``)."""
    rows = np.repeat(np.arange(H.shape[0]), np.diff(H.indptr))
    order = np.argsort(H.indices, kind="stable")
    return rows[order], H.indices[order].astype(np.int64)


def _merge(best_v: Tensor, best_i: Tensor, out: Tensor, lo: int) -> None:
    """Merge one block's scores ``out`` (``[n_sub, m, _SUB]``: item ``lo + s·_SUB + c``) into the running
    top-k ``best_v`` / ``best_i`` (``[m, k]``, best first) of the same ``m`` users, in place.

    Until every user has ``k`` entries (the first block) this is a stable sort over the block. Ties go to the
    smaller item id (on every CPU, unlike ``torch.topk``'s pick).
    After that only entries above a user's current k-th best can enter, and they are few: the
    ``_SUB``-wide segments whose maximum beats it are found first (one cheap ``amax`` pass), and only
    their winning entries are sorted together with the touched users' current lists. A ``topk``
    over every user's whole block each time costs several times more (measured).
    """
    m, k = best_v.shape
    thr = best_v[:, k - 1]
    if bool(torch.isinf(thr).any()):
        flat = out.permute(1, 0, 2).reshape(m, -1)
        # a stable sort, not torch.topk: among tied scores the smaller item id (best_v's ids precede the
        # block's, which ascend), whatever CPU kernel runs (crossmatch.topk)
        v, j = torch.sort(torch.cat([best_v, flat], 1), dim=1, descending=True, stable=True)
        v, j = v[:, :k], j[:, :k]
        ids = torch.cat([best_i, (lo + torch.arange(flat.shape[1])).expand(m, -1)], 1)
        best_i.copy_(torch.gather(ids, 1, j))
        best_v.copy_(v)
        return
    s, r = (out.amax(dim=2) > thr[None, :]).nonzero(as_tuple=True)
    if s.numel() == 0:
        return
    seg = out[s, r]  # [segments, _SUB]
    p, c = (seg > thr[r][:, None]).nonzero(as_tuple=True)
    hit = torch.unique(r)
    # every hit user keeps its k current entries in play; they come first, so the stable sorts below give a tie
    # to the smaller item id (the current ones are from earlier blocks; the block's ascend in s, then c)
    rows = torch.cat([hit.repeat_interleave(k), r[p]])
    vals = torch.cat([best_v[hit].reshape(-1), seg[p, c]])
    items = torch.cat([best_i[hit].reshape(-1), lo + s[p] * _SUB + c])
    by_value = torch.argsort(vals, descending=True, stable=True)
    perm = by_value[torch.argsort(rows[by_value], stable=True)]  # grouped by user, best first
    rows = rows[perm]
    _, counts = torch.unique_consecutive(rows, return_counts=True)
    rank = torch.arange(rows.numel()) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    keep = rank < k
    best_v[rows[keep], rank[keep]] = vals[perm][keep]
    best_i[rows[keep], rank[keep]] = items[perm][keep]


def exact_topk(A: Tensor, C: Tensor, H: sp.csr_matrix, k: int, *, score: str = "sigmoid", gamma: float = 5.0,
               exclude_history: bool = True, block: int | None = None,
               user_chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items (``[u, k]`` ids, best first) and their eq. 10 scores for every row of ``H``.

    ``H`` holds normalised history rows (``w / Σ w``). Candidate blocks are the outer loop, so
    ``π`` is evaluated once per item pair (``n²·d`` work, like the dense matrix) but only ``n·block``
    of it is alive; users are processed in chunks of ``user_chunk`` rows against each block and
    merged into the running ``[u, k]`` top-k (:func:`_merge`). History items get the lowest finite
    score (not ``-inf``, which marks the empty slots of the running top-k), so when a user has
    fewer than ``k`` candidates the list is completed by history items, as the dense ranking did.
    Float32 throughout (the dense matrix summed in float64): rankings agree up to near-ties.
    """
    _check(A, C, H, k)
    H = sp.csr_matrix(H)
    n, u = C.shape[0], H.shape[0]
    k = min(int(k), n)
    b = _block(n, block)
    chunk = user_chunk or max(1, BUDGET // b)
    excluded = torch.finfo(torch.float32).min
    best_v = torch.full((u, k), -torch.inf)
    best_i = torch.zeros((u, k), dtype=torch.int64)
    chunks = []
    for r0 in range(0, u, chunk):
        Hc = H[r0:r0 + chunk]
        hrows, hcols = _history_keys(Hc) if exclude_history else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        chunks.append((r0, _torch_csr(Hc), torch.from_numpy(hrows), torch.from_numpy(hcols), hcols))
    n_sub = -(-b // _SUB)
    # One reused buffer: a fresh [m, block] tensor per product costs page faults (a third of the time).
    buf = torch.empty((n_sub, min(chunk, u), _SUB))
    with torch.no_grad():
        A, C = A.float().contiguous(), C.float().contiguous()
        for lo in range(0, n, b):
            hi = min(n, lo + b)
            subs = [pair_scores(A @ C[s:min(hi, s + _SUB)].T, score, gamma).contiguous() for s in range(lo, hi, _SUB)]
            for r0, Ht, rows, cols, cols_np in chunks:
                m = Ht.shape[0]
                out = buf[:len(subs), :m]
                for i, P in enumerate(subs):
                    if P.shape[1] == _SUB:
                        torch.mm(Ht, P, out=out[i])
                    else:  # a narrower sub-block (the catalogue's end): its padding never enters the top-k
                        out[i].fill_(-torch.inf)
                        out[i, :, :P.shape[1]] = Ht @ P
                a, z = np.searchsorted(cols_np, lo), np.searchsorted(cols_np, hi)
                off = cols[a:z] - lo
                out[off // _SUB, rows[a:z], off % _SUB] = excluded
                _merge(best_v[r0:r0 + m], best_i[r0:r0 + m], out, lo)
    vals = best_v.numpy().astype(np.float64)
    vals[vals == excluded] = -np.inf
    return best_i.numpy(), vals


def default_floor(score: str) -> str:
    """``mean`` for ``sigmoid`` (its pair scores are spread symmetrically around the row mean),
    ``min`` for the γ-sharpened scores, whose rows are a few large values over a tail near the minimum:
    there ``mean`` turns most of the kept neighbours negative, below every dropped item (measured:
    XMarket in / SOO, exp_gamma, test NDCG@10 0.405 exact, 0.405 min, 0.078 mean)."""
    return "mean" if score == "sigmoid" else "min"


def row_floor(A: Tensor, C: Tensor, floor: str = "min", *, score: str = "sigmoid", gamma: float = 5.0,
              sample: int = 2048, seed: int = 0) -> Tensor:
    """Per-row floor ``f_{y'}`` subtracted from the knn graph (see the module docstring).

    ``mean``: the mean of ``π(<a_{y'}, c_y>)`` over all items ``y``, estimated from ``sample`` items
    drawn once (exact when ``n ≤ sample``). ``min``: ``π(−‖a_{y'}‖·max‖c‖)``, a lower bound of the row
    (``π(−1)`` for unit vectors). ``none``: zeros.
    """
    n = C.shape[0]
    if floor == "none":
        return torch.zeros(n)
    if floor == "min":
        return pair_scores(-A.norm(dim=1) * C.norm(dim=1).max(), score, gamma)
    if floor == "mean":
        cand = C if n <= sample else C[torch.from_numpy(np.random.default_rng(seed).choice(n, sample, replace=False))]
        return torch.cat([pair_scores(A[s:s + 4096] @ cand.T, score, gamma).mean(dim=1) for s in range(0, n, 4096)])
    raise ValueError(f"floor must be one of {FLOORS}, got {floor!r}")


def knn_graph(A: Tensor, C: Tensor, k: int = 200, *, score: str = "sigmoid", gamma: float = 5.0,
              floor: str | None = None) -> sp.csr_matrix:
    """The sparse item–item graph ``[n, n]``: row ``y'`` holds ``π(<a_{y'}, c_y>) − f_{y'}`` for the ``k``
    items ``y`` of largest inner product (faiss ``IndexFlatIP``: exact search; the item itself is one
    of them when its anchor and context agree — it is a history item and never a candidate)."""
    import faiss  # imported here: only the knn retrieval needs it

    _check(A, C, None, k)
    n, d = C.shape
    kk = min(int(k), n)
    with torch.no_grad():
        A32 = np.ascontiguousarray(A.detach().cpu().float().numpy())
        index = faiss.IndexFlatIP(d)
        index.add(np.ascontiguousarray(C.detach().cpu().float().numpy()))
        sims, nbrs = index.search(A32, kk)
        f = row_floor(A.cpu().float(), C.cpu().float(), floor or default_floor(score), score=score, gamma=gamma)
        vals = (pair_scores(torch.from_numpy(sims), score, gamma) - f[:, None]).numpy()
    return sp.csr_matrix((vals.ravel().astype(np.float64), nbrs.ravel(),
                          np.arange(0, n * kk + 1, kk)), shape=(n, n))


class EmbeddingScorer:
    """Exact eq. 10 from anchor / context embeddings: a Scorer (:func:`exact_scores`) with a
    ``topk`` method (:func:`exact_topk`) for all users at once."""

    def __init__(self, A: Tensor, C: Tensor, *, score: str = "sigmoid", gamma: float = 5.0) -> None:
        _check(A, C)
        pair_scores(torch.zeros(1), score, gamma)  # an unknown score fails here, not at the first user
        self.A, self.C = A.detach().cpu().float().contiguous(), C.detach().cpu().float().contiguous()
        self.score, self.gamma = score, gamma

    def __call__(self, Hu: sp.csr_matrix) -> np.ndarray:
        return exact_scores(self.A, self.C, Hu, score=self.score, gamma=self.gamma)

    def topk(self, H: sp.csr_matrix, k: int, exclude_history: bool = True) -> np.ndarray:
        return exact_topk(self.A, self.C, H, k, score=self.score, gamma=self.gamma,
                          exclude_history=exclude_history)[0]


class GraphScorer:
    """``H_norm @ S`` for a sparse item graph (:func:`knn_graph`): a Scorer with a ``topk`` method."""

    def __init__(self, S: sp.csr_matrix) -> None:
        if not sp.issparse(S) or S.shape[0] != S.shape[1]:
            raise ValueError(f"item graph must be a sparse square matrix, got {type(S).__name__} "
                             f"{getattr(S, 'shape', None)}")
        self.S = sp.csr_matrix(S)

    def __call__(self, Hu: sp.csr_matrix) -> np.ndarray:
        return np.asarray((Hu @ self.S).todense(), dtype=np.float64)

    def topk(self, H: sp.csr_matrix, k: int, exclude_history: bool = True) -> np.ndarray:
        return sparse_topk(H, self.S, k, exclude_history=exclude_history)


def embedding_scorer(A: Tensor, C: Tensor, *, retrieval: str = "exact", score: str = "sigmoid",
                     gamma: float = 5.0, knn_k: int = 200, floor: str | None = None) -> EmbeddingScorer | GraphScorer:
    """The eq. 10 scorer of ``retrieval`` (``exact`` | ``knn``) for anchor / context embeddings."""
    if score == "softmax":
        A, C = softmax_augment(A.detach().cpu().float(), C.detach().cpu().float(), gamma)
        score = "exp_gamma"
    if retrieval == "exact":
        return EmbeddingScorer(A, C, score=score, gamma=gamma)
    if retrieval == "knn":
        return GraphScorer(knn_graph(A, C, knn_k, score=score, gamma=gamma, floor=floor))
    raise ValueError(f"retrieval must be one of {RETRIEVALS}, got {retrieval!r}")
