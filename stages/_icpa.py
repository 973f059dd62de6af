"""What the ICPA stages share: params, reading the data and models, per-run checkpoint files.

``train_align``, ``pareto_finetune`` and ``icpa_eval`` read the ``icpa`` section of the params
file (:class:`crossmatch.icpa.params.ICPAParams`) and the same inputs; the protocols themselves are
in the library (:mod:`crossmatch.icpa.phases`, :mod:`crossmatch.icpa.table`). Every training run
goes through :func:`crossmatch.icpa.runs.train_run`, which hands its state to :class:`Checkpoints`
after every ``checkpoint_every`` epochs: one atomic file per run, resumed when its fingerprint
matches the current params, data and code. Checkpoints of finished runs stay until the whole stage
succeeds (so a stage killed in its third run does not redo the first two), then
:meth:`Checkpoints.clear` removes them.

Over 150 lines (a shared helper of three stages, not a stage): the data and model readers, the per-run
checkpoint files, and the optional truth input of the ICPA stages.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from crossmatch.checkpoint import load_checkpoint, save_checkpoint
from crossmatch.errors import ConfigError, InputError
from crossmatch.icpa import ICPAModel, SourceFrames, Trainer, build_multisource_graph, model_from_payload
from crossmatch.icpa.data import Data
from crossmatch.icpa.params import EvalParams, ICPAParams, seed_file
from crossmatch.icpa.report import evaluate_source
from crossmatch.icpa.runs import train_run
from stages._common import console, load_section, params_as, write_atomic

__all__ = ["Checkpoints", "Data", "EvalParams", "ICPAParams", "evaluate_source", "load_data", "load_model",
           "load_params", "no_truth_metrics", "read_concepts", "seed_file", "train_run"]


def load_params(path: str | Path, section: str = "icpa") -> ICPAParams:
    params = params_as(ICPAParams, load_section(section, path), section)
    params.check()
    return params


def _read(path: Path, stage: str = "edges") -> pl.DataFrame:
    if not path.exists():
        raise InputError(f"file not found; run the {stage} stage first", file=str(path))
    return pl.read_parquet(path)


def _check_sources(ing: Path, sources: Sequence[str]) -> None:
    """A source of ``icpa.sources`` with no ingested folder is a params mismatch, not a missing stage run
    (e.g. the synthetic ``alpha, beta, gamma`` left in place on one's own data): say so and list what exists."""
    if not ing.is_dir():
        return  # _read names the missing file and the stage to run
    found = sorted(p.name for p in ing.iterdir() if p.is_dir() and (p / "items.parquet").exists())
    absent = [s for s in sources if s not in found]
    if absent and found:
        raise ConfigError(f"icpa.sources lists {absent} but the ingested data ({ing}) has the sources {found}; "
                          "set icpa.sources to yours (`crossmatch init` writes them)")


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
    _check_sources(ing, sources)
    for s in sources:
        items = _read(ing / s / "items.parquet", "ingest").sort("item_idx")
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


def no_truth_metrics(path: str | Path | None, hit_ks: Sequence[int], prefix: str) -> dict[str, Any]:
    """Metrics stating that the alignment hit@k are unavailable (null) and why: no concepts truth."""
    reason = f"no concepts truth ({path}): alignment hit@k needs the hidden cross-source correspondences"
    return {**{f"{prefix}hit@{k}": None for k in hit_ks}, f"{prefix}hits_unavailable": reason}


def load_model(path: str | Path) -> ICPAModel:
    """A saved model (``model_payload``: plain types + tensors), loaded without running pickled code."""
    return model_from_payload(load_checkpoint(path))


def read_concepts(path: str | Path | None) -> pl.DataFrame | None:
    """Hidden correspondences ``source, item_id, concept`` (None when the file is absent or ``"none"``:
    one's own data has no such truth, and only the alignment hit@k needs it)."""
    if path is None or str(path).lower() == "none" or not Path(path).exists():
        return None
    frame = pl.read_parquet(path)
    missing = {"source", "item_id", "concept"} - set(frame.columns)
    if missing:
        raise InputError(f"missing column(s) {sorted(missing)}", file=str(path))
    return frame.with_columns(pl.col("concept").cast(pl.Utf8), pl.col("item_id").cast(pl.Utf8))


class Checkpoints:
    """Atomic per-run checkpoints ``<dir>/<run>.pt`` tagged with a fingerprint
    (a :class:`crossmatch.icpa.runs.CheckpointStore`)."""

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
