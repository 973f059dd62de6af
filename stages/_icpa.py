"""What the ICPA stages share: typed ``icpa`` params, data loading, resumable runs, evaluation.

``train_align``, ``pareto_finetune`` and ``icpa_eval`` all read the ``icpa`` section of the
params file (model, pairs, alignment, schedule, evaluation). Every training run goes
through :func:`train_run`, which shows a rich progress bar per epoch and writes an atomic
checkpoint after every ``checkpoint_every`` epochs; a run whose checkpoint matches the
current params, data and code resumes from it. Checkpoints of finished runs stay until the
whole stage succeeds (so a stage killed in its third run does not redo the first two),
then :meth:`Checkpoints.clear` removes them.

Size (over 400 lines): typed ``icpa`` params, data loading, resumable checkpoints and the alignment
report shared by three stages; splitting the params dataclasses into their own module is open (issue 15).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

import crossmatch.icpa as icpa_pkg
from crossmatch.checkpoint import load_checkpoint, save_checkpoint
from crossmatch.errors import ConfigError, InputError
from crossmatch.icpa import (
    AlignConfig,
    ICPAModel,
    ModelConfig,
    MultiSourceGraph,
    PairConfig,
    PhaseConfig,
    Schedule,
    SourceFrames,
    Trainer,
    build_multisource_graph,
    item_embeddings,
    model_from_payload,
    resolve_device,
)
from crossmatch.icpa.comparison import Evaluator
from crossmatch.icpa.distributed import DistContext
from crossmatch.icpa.evaluate import leave_one_out_split, protocol_splits
from crossmatch.icpa.inference import SCORES, learned_scorer
from crossmatch.icpa.methods import METHODS, check_methods
from crossmatch.icpa.rankers import RANKERS
from crossmatch.icpa.retrieval import RETRIEVALS
from crossmatch.metrics.alignment_hits import alignment_hits, partner_pairs
from stages._common import console, load_section, params_as, write_atomic


@dataclass(frozen=True)
class EvalParams:
    ks: tuple[int, ...] = (1, 5, 10, 20, 50)  # NDCG@k / F@k cut-offs (10 is the headline)
    hit_ks: tuple[int, ...] = (1, 10)  # alignment hit@k
    exclude_history: bool = True  # candidates exclude the user's training items (§2.9, 2.9-B)
    user_weighting: str = "uniform"  # uniform | frequency (held-out events per user as query frequency)
    score: str = "sigmoid"  # eq. 10 item-item term: sigmoid (paper) | sigmoid_gamma | exp_gamma (inference.pair_scores)
    # eq. 10 retrieval without an items² matrix (crossmatch.icpa.retrieval): exact (blocked, running
    # top-k) | knn (each item's knn_k nearest candidates by inner product, faiss; approximate).
    retrieval: str = "exact"
    knn_k: int = 200
    # Non-learned rankers (crossmatch.icpa.rankers): their one setting is chosen on validation.
    # ease is a dense items² model (refused above 30 k items): leave it out for large catalogues.
    rankers: tuple[str, ...] = ("popularity", "cooccurrence", "itemknn", "ease")
    ease_lambdas: tuple[float, ...] = (10.0, 50.0, 200.0, 500.0)
    knn_ks: tuple[int, ...] = (50, 200)
    # Hybrids "<method>+<ranker>": (1 - w)·z(ranker) + w·z(method), w chosen on validation per source and seed.
    hybrid_methods: tuple[str, ...] = ("icpa", "soo")
    hybrid_rankers: tuple[str, ...] = ("ease",)
    hybrid_weights: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
    bootstrap: int = 2000  # paired-bootstrap resamples over users (negative-transfer verdict)
    # XMarket papers' protocol (crossmatch.icpa.sampled): the test positive among this many sampled
    # negatives, NDCG@10 / HR@10 (0: off). Reported beside the full-catalogue figures.
    sampled_negatives: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(int(k) for k in self.ks))
        object.__setattr__(self, "hit_ks", tuple(int(k) for k in self.hit_ks))
        for name in ("ease_lambdas", "hybrid_weights"):
            vals = getattr(self, name)
            if not isinstance(vals, (list, tuple)) or not vals or \
                    not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in vals):
                raise ConfigError(f"icpa.eval.{name} must be a non-empty list of numbers > 0, got {vals!r}")
            object.__setattr__(self, name, tuple(float(v) for v in vals))
        if not self.knn_ks or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in self.knn_ks):
            raise ConfigError(f"icpa.eval.knn_ks must be a non-empty list of integers >= 1, got {self.knn_ks!r}")
        object.__setattr__(self, "knn_ks", tuple(self.knn_ks))
        object.__setattr__(self, "hybrid_methods", tuple(self.hybrid_methods))
        object.__setattr__(self, "hybrid_rankers", tuple(self.hybrid_rankers))
        object.__setattr__(self, "rankers", tuple(self.rankers))
        if not set(self.rankers) <= set(RANKERS) or not set(self.rankers) - {"popularity"}:
            raise ConfigError(f"icpa.eval.rankers must name rankers of {list(RANKERS)}, one besides popularity; "
                              f"got {list(self.rankers)!r}")
        bad = sorted(set(self.hybrid_rankers) - ({"cooccurrence", "itemknn", "ease"} & set(self.rankers)))
        if bad:
            raise ConfigError(f"icpa.eval.hybrid_rankers: unknown ranker(s) {bad}; known: cooccurrence, itemknn, ease "
                              "(and listed in icpa.eval.rankers)")
        if not isinstance(self.sampled_negatives, int) or isinstance(self.sampled_negatives, bool) \
                or self.sampled_negatives < 0:
            raise ConfigError(f"icpa.eval.sampled_negatives must be an integer >= 0, got {self.sampled_negatives!r}")
        if not isinstance(self.bootstrap, int) or isinstance(self.bootstrap, bool) or self.bootstrap < 100:
            raise ConfigError(f"icpa.eval.bootstrap must be an integer >= 100, got {self.bootstrap!r}")
        if not self.ks or min(self.ks) < 1 or not self.hit_ks or min(self.hit_ks) < 1:
            raise ConfigError("icpa.eval.ks and icpa.eval.hit_ks must be non-empty lists of integers >= 1")
        if 10 not in self.ks:
            raise ConfigError("icpa.eval.ks must contain 10 (the headline NDCG@10 / F@10)")
        if self.score not in SCORES:
            raise ConfigError(f"icpa.eval.score must be one of {list(SCORES)}, got {self.score!r}")
        if self.retrieval not in RETRIEVALS:
            raise ConfigError(f"icpa.eval.retrieval must be one of {list(RETRIEVALS)}, got {self.retrieval!r}")
        if not isinstance(self.knn_k, int) or isinstance(self.knn_k, bool) or self.knn_k < 1:
            raise ConfigError(f"icpa.eval.knn_k must be an integer >= 1, got {self.knn_k!r}")
        if self.user_weighting not in ("uniform", "frequency"):
            raise ConfigError(f"icpa.eval.user_weighting must be 'uniform' or 'frequency', got {self.user_weighting!r}")


@dataclass(frozen=True)
class ICPAParams:
    """The ``icpa`` section of the params file."""

    sources: list[str] = field(default_factory=list)
    seed: int = 0
    seeds: int = 1  # repeats: seeds seed, seed + 1, ...; every figure is mean ± std over them
    device: str = "auto"
    # CUDA only (the CPU is always deterministic): deterministic kernels + CUBLAS_WORKSPACE_CONFIG
    # (crossmatch.icpa.train.configure_determinism); false lets CUDA pick its fastest kernels.
    deterministic: bool = True
    # > 1: train_align runs as this many processes through torchrun (crossmatch.icpa.distributed)
    world_size: int = 1
    checkpoint_every: int = 1
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    model: dict[str, Any] = field(default_factory=dict)
    pairs: dict[str, Any] = field(default_factory=dict)
    align: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ConfigError(f"icpa.sources must be a non-empty list of distinct names, got {self.sources!r}")
        check_methods(self.methods)
        if not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 1:
            raise ConfigError(f"icpa.seeds must be an integer >= 1 (the number of repeats), got {self.seeds!r}")
        if not isinstance(self.world_size, int) or isinstance(self.world_size, bool) or self.world_size < 1:
            raise ConfigError(f"icpa.world_size must be an integer >= 1, got {self.world_size!r}")
        if not isinstance(self.deterministic, bool):
            raise ConfigError(f"icpa.deterministic must be true or false, got {self.deterministic!r}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 1:
            raise ConfigError(f"icpa.checkpoint_every must be an integer >= 1, got {self.checkpoint_every!r}")

    @property
    def model_config(self) -> ModelConfig:
        return params_as(ModelConfig, self.model, "icpa.model")

    @property
    def pair_config(self) -> PairConfig:
        return params_as(PairConfig, self.pairs, "icpa.pairs")

    @property
    def align_config(self) -> AlignConfig:
        return params_as(AlignConfig, self.align, "icpa.align")

    @property
    def schedule_config(self) -> Schedule:
        cfg = dict(self.schedule)
        cfg.setdefault("beta", self.align_config.beta)
        return params_as(Schedule, cfg, "icpa.schedule")

    @property
    def eval_config(self) -> EvalParams:
        return params_as(EvalParams, self.eval, "icpa.eval")

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + r for r in range(self.seeds)]

    def check(self) -> None:
        """Build every typed sub-config once so that a bad key fails before any training."""
        _ = (self.model_config, self.pair_config, self.align_config, self.schedule_config, self.eval_config)


def load_params(path: str | Path, section: str = "icpa") -> ICPAParams:
    params = params_as(ICPAParams, load_section(section, path), section)
    params.check()
    return params


# ------------------------------------------------------------------------------------ data
def seed_file(name: str, seed: int, first: int) -> str:
    """``<name>.pt`` for the first seed (what single-seed consumers read), ``<name>.seed<k>.pt`` after."""
    return f"{name}.pt" if seed == first else f"{name}.seed{seed}.pt"


@dataclass
class Data:
    graph: MultiSourceGraph
    item_ids: dict[str, list[str]]
    heldout: dict[str, pl.DataFrame]
    signature: dict[str, Any]
    valid: dict[str, pl.DataFrame] = field(default_factory=dict)
    user_item: dict[str, pl.DataFrame] = field(default_factory=dict)
    item_item: dict[str, pl.DataFrame] = field(default_factory=dict)
    _evaluators: dict[str, Evaluator] = field(default_factory=dict)

    def evaluator(self, source: str, cfg: EvalParams) -> Evaluator:
        """The protocol's splits of one source (issue 10; cached per source): validation, test and,
        with ``sampled_negatives``, the leave-one-out split of the XMarket papers."""
        if source not in self._evaluators:
            g = self.graph.sources[self.graph.index(source)]
            ui, va, te = self.user_item[source], self.valid[source], self.heldout[source]
            splits = protocol_splits(ui, va, te, g.user_item.n_rows, g.schema.n_items,
                                     exclude_history=cfg.exclude_history)
            n_users = splits["test"].history.shape[0]
            sampled = ((*leave_one_out_split(ui, va, te, n_users, g.schema.n_items), cfg.sampled_negatives)
                       if cfg.sampled_negatives else None)
            self._evaluators[source] = Evaluator(splits, cfg.ks, exclude_history=cfg.exclude_history,
                                                 frequency_weighting=cfg.user_weighting == "frequency",
                                                 sampled=sampled)
        return self._evaluators[source]


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise InputError("file not found; run the edges stage first", file=str(path))
    return pl.read_parquet(path)


def _rows(path: Path) -> int:
    """Row count of a parquet file from its metadata (nothing is read into memory)."""
    if not path.exists():
        raise InputError("file not found; run the edges stage first", file=str(path))
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def load_data(ingested: str | Path, edges: str | Path, sources: Sequence[str],
              eval_sources: Sequence[str] | None = None) -> Data:
    """Items from ``ingested/<s>/items.parquet``, edges and hold-out from ``edges/<s>/``.

    The model covers every source, so every source's items (features, categories) and training graph
    (``item_item``, ``user_item``) are loaded. The validation and test events are loaded only for
    ``eval_sources`` (default: all); for the others only their row counts enter ``signature``, which
    is therefore the same either way (a per-target ``pareto_finetune`` item reads one target's splits).
    """
    ing, edg = Path(ingested), Path(edges)
    evaluated = set(sources if eval_sources is None else eval_sources)
    frames, item_ids, heldout, sig = {}, {}, {}, {}
    valid: dict[str, pl.DataFrame] = {}
    uis: dict[str, pl.DataFrame] = {}
    iis: dict[str, pl.DataFrame] = {}
    for s in sources:
        items = _read(ing / s / "items.parquet").sort("item_idx")
        ii = _read(edg / s / "item_item.parquet")
        ui = _read(edg / s / "user_item.parquet")
        vpath = edg / s / "valid.parquet"
        if s in evaluated:
            heldout[s] = _read(edg / s / "heldout.parquet")
            valid[s] = pl.read_parquet(vpath) if vpath.exists() else heldout[s].head(0)
            n_heldout, n_valid = heldout[s].height, valid[s].height
        else:
            n_heldout, n_valid = _rows(edg / s / "heldout.parquet"), (_rows(vpath) if vpath.exists() else 0)
        frames[s] = SourceFrames(items, ii, ui)
        uis[s], iis[s] = ui, ii
        item_ids[s] = items.get_column("item_id").cast(pl.Utf8).to_list() if "item_id" in items.columns else \
            [str(i) for i in items.get_column("item_idx").to_list()]
        sig[s] = {"items": items.height, "item_item": ii.height, "user_item": ui.height,
                  "ii_weight": float(ii.get_column("weight").sum() or 0), "heldout": n_heldout,
                  "valid": n_valid}
    return Data(build_multisource_graph(frames), item_ids, heldout, sig, valid=valid, user_item=uis, item_item=iis)


def load_model(path: str | Path) -> ICPAModel:
    """A saved model (``model_payload``: plain types + tensors), loaded without running pickled code."""
    return model_from_payload(load_checkpoint(path))


def code_hash() -> str:
    """Hash of the ICPA library sources: a checkpoint from other code is never resumed."""
    h = hashlib.sha256()
    root = Path(icpa_pkg.__file__).parent
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


# ------------------------------------------------------------------------------ training
class Checkpoints:
    """Atomic per-run checkpoints ``<dir>/<run>.pt`` tagged with a fingerprint."""

    def __init__(self, directory: str | Path | None, every: int = 1) -> None:
        self.dir = Path(directory) if directory else None
        self.every = every

    def path(self, run: str) -> Path | None:
        return self.dir / f"{run}.pt" if self.dir else None

    def load(self, run: str, tag: str) -> dict[str, Any] | None:
        p = self.path(run)
        if p is None or not p.exists():
            return None
        try:
            blob = load_checkpoint(p)  # tensors and plain types only; a planted object is refused
        except Exception as exc:  # a truncated/foreign/refused file: start over (nothing of it ran)
            console.print(f"[yellow]{run}: ignoring unreadable checkpoint {p} ({type(exc).__name__})[/]")
            return None
        if blob.get("fingerprint") != tag:
            console.print(f"[yellow]{run}: checkpoint {p} is from other params/data/code; starting over[/]")
            return None
        return blob["state"]

    def save(self, run: str, tag: str, trainer: Trainer) -> None:
        p = self.path(run)
        if p is None:
            return
        blob = {"fingerprint": tag, "state": trainer.state_dict()}
        write_atomic(p, lambda tmp: save_checkpoint(blob, tmp))

    def clear(self) -> None:
        if self.dir and self.dir.exists():
            shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True, exist_ok=True)


def train_run(
    run: str,
    model: ICPAModel,
    data: Data,
    phase: PhaseConfig,
    params: ICPAParams,
    checkpoints: Checkpoints,
    *,
    frozen: ICPAModel | None = None,
    tag: str,
    dist: DistContext | None = None,
    device: torch.device | None = None,
) -> Trainer:
    """Train ``model`` for ``phase`` (resuming from a matching checkpoint); progress per epoch.

    ``dist``: this process's rank in a data-parallel run; each rank keeps its own checkpoint.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    device = device if device is not None else resolve_device(params.device)
    trainer = Trainer(model, data.graph, phase, pairs=params.pair_config, align=params.align_config,
                      seed=params.seed, device=device, frozen=frozen, deterministic=params.deterministic, dist=dist)
    if dist is not None and dist.world_size > 1:
        run = f"{run}.rank{dist.rank}"
    state = checkpoints.load(run, tag)
    if state is not None:
        trainer.load_state_dict(state)
        console.print(f"{run}: resumed from checkpoint at epoch {trainer.epoch}/{phase.epochs}")
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"{run} [{device.type}]", total=phase.epochs, completed=trainer.epoch)

        def on_epoch_end(tr: Trainer, stats: dict[str, Any]) -> None:
            if tr.epoch % checkpoints.every == 0 or tr.epoch == phase.epochs:
                checkpoints.save(run, tag, tr)
            losses = " ".join(f"{k[5:]}={v:.3f}" for k, v in stats.items() if k.startswith("loss_") and v == v)
            progress.update(task, completed=tr.epoch,
                            description=f"{run} [{device.type}] epoch {tr.epoch}/{phase.epochs} {losses}")

        trainer.fit(on_epoch_end)
    if phase.epochs:
        last = trainer.log[-1] if trainer.log else {}
        console.print(f"{run}: {phase.epochs} epochs, {trainer.step} steps in {time.perf_counter() - t0:.1f}s "
                      f"(total loss {last.get('total', float('nan')):.3f})")
    trainer.model.cpu()
    return trainer


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_source(model: ICPAModel, data: Data, source: str, cfg: EvalParams) -> dict[str, Any]:
    """NDCG@k, F@k, precision@k, recall@k on validation and test of one source (eq. 10 retrieval)."""
    scorer = learned_scorer(model, data.graph.sources[data.graph.index(source)], data.graph.index(source),
                            score=cfg.score, retrieval=cfg.retrieval, knn_k=cfg.knn_k)
    return data.evaluator(source, cfg).all(scorer)


def strip_per_user(res: dict[str, Any]) -> dict[str, Any]:
    """A result without its per-user arrays (for JSON)."""
    return {split: {k: v for k, v in r.items() if k != "per_user"} if split != "loo" else r
            for split, r in res.items()}


def per_user_arrays(res: dict[str, Any], prefix: str, k: int = 10) -> dict[str, np.ndarray]:
    """``{"<prefix>/<split>/<metric>@k": per-user array}`` for an npz file."""
    out = {}
    for split, r in res.items():
        if split == "loo":
            continue
        for metric, arr in r.get("per_user", {}).get(str(k), {}).items():
            if metric in ("ndcg", "f"):
                out[f"{prefix}/{split}/{metric}@{k}"] = arr
    return out


@torch.no_grad()
def source_embeddings(model: ICPAModel, data: Data, tower: str = "anchor") -> dict[str, np.ndarray]:
    model.eval()
    return {s: item_embeddings(model, data.graph.sources[j], j, tower).cpu().numpy()
            for j, s in enumerate(data.graph.names)}


def read_concepts(path: str | Path | None) -> pl.DataFrame | None:
    """Hidden correspondences ``source, item_id, concept`` (None when the file is absent)."""
    if path is None or not Path(path).exists():
        return None
    frame = pl.read_parquet(path)
    missing = {"source", "item_id", "concept"} - set(frame.columns)
    if missing:
        raise InputError(f"missing column(s) {sorted(missing)}", file=str(path))
    return frame.with_columns(pl.col("concept").cast(pl.Utf8), pl.col("item_id").cast(pl.Utf8))


def alignment_accuracy(emb: dict[str, np.ndarray], data: Data, concepts: pl.DataFrame | None,
                       ks: Sequence[int]) -> dict[str, Any]:
    """hit@k of true cross-source partners, per ordered source pair and averaged (§2.9)."""
    if concepts is None:
        return {}
    per_source = {}
    for s in data.graph.names:
        sub = concepts.filter(pl.col("source") == s)
        m = dict(zip(sub.get_column("item_id").to_list(), sub.get_column("concept").to_list(), strict=True))
        per_source[s] = np.array([m.get(i) for i in data.item_ids[s]], dtype=object)
    pairs: dict[str, Any] = {}
    for a in data.graph.names:
        for b in data.graph.names:
            if a == b:
                continue
            P = partner_pairs(per_source[a], per_source[b])
            if P.shape[0]:
                pairs[f"{a}->{b}"] = alignment_hits(emb[a], emb[b], P, ks)
    out: dict[str, Any] = {"pairs": pairs}
    if pairs:
        total = sum(v["queries"] for v in pairs.values())
        for k in ks:
            for key in (f"hit@{k}", f"chance@{k}"):
                out[key] = float(sum(v[key] * v["queries"] for v in pairs.values()) / total)
        out["queries"] = total
    return out


def embeddings_frame(emb: np.ndarray, item_ids: Sequence[str]) -> pl.DataFrame:
    """``item_idx, item_id, embedding`` (fixed-size float32 array, L2-normalised)."""
    d = emb.shape[1]
    return pl.DataFrame({
        "item_idx": pl.Series(np.arange(emb.shape[0], dtype=np.int32)),
        "item_id": pl.Series(list(item_ids), dtype=pl.Utf8),
        "embedding": pl.Series(emb.astype(np.float32)).cast(pl.Array(pl.Float32, d)),
    })


def params_snapshot(params: ICPAParams) -> dict[str, Any]:
    return asdict(params)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts → flat ``a.b.c`` keys (DVC metrics files stay flat); lists become strings."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = ",".join(str(x) for x in v)
        else:
            out[key] = v
    return out
