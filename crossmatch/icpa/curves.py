"""Per-epoch training curves of ICPA's runs, from the per-step log the trainer already keeps.

:func:`epoch_curve` turns :attr:`crossmatch.icpa.train.Trainer.log` (one record per optimisation step)
into one row per epoch: nothing is evaluated or recomputed, so recording a curve cannot change a
training run, and a run resumed from a checkpoint (whose state carries the log) gives the whole curve.
The stages write the rows as CSV (DVC plots) beside a PNG (:func:`curves_figure`).

Columns of a row: ``epoch`` (1-based: epochs done), ``step`` (the run's last step in that epoch),
``loss`` (mean over the epoch's steps of the unweighted mean of the per-source losses present in the
step), ``total`` (the weighted objective that was minimised), ``align`` and ``gate`` (the alignment and
gate terms; 0 without alignment), then ``loss_<source>`` for every source that the run trained on.
The first four names are the same for every run and pipeline, so one plot definition covers them all.
The training loop computes no validation metric per epoch (only the stages evaluate, after training),
so the curves hold training losses only; the validation NDCG@10 of each run is in its metrics file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

GENERIC = ("loss", "total", "align", "gate")  # curve columns every run has (the DVC plot's y fields)


def _mean(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]  # NaN: a source absent from the step
    return sum(kept) / len(kept) if kept else float("nan")


def epoch_curve(log: Sequence[Mapping[str, Any]]) -> list[dict[str, float | int]]:
    """One row per epoch of ``log`` (a trainer's per-step records); see the module doc for the columns."""
    by_epoch: dict[int, list[Mapping[str, Any]]] = {}
    for rec in log:
        by_epoch.setdefault(int(rec["epoch"]), []).append(rec)
    sources = [k for k in (log[0] if log else {}) if k.startswith("loss_")]
    # a source the run never trained on (SOO's other sources) has no curve
    sources = [k for k in sources if any(not math.isnan(float(r[k])) for r in log)]
    rows: list[dict[str, float | int]] = []
    for epoch in sorted(by_epoch):
        recs = by_epoch[epoch]
        row: dict[str, float | int] = {"epoch": epoch + 1, "step": max(int(r["step"]) for r in recs)}
        row["loss"] = _mean([_mean([float(r[k]) for k in sources]) for r in recs])
        for key in ("total", "align", "gate"):
            row[key] = _mean([float(r[key]) for r in recs])
        for k in sources:
            row[k] = _mean([float(r[k]) for r in recs])
        rows.append(row)
    return rows


def curves_figure(curves: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str) -> Figure:
    """Three panels against the epoch, one line per run: mean source loss, weighted objective, alignment."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = (("loss", "mean source loss"), ("total", "weighted objective (total)"), ("align", "alignment term"))
    for name, rows in curves.items():
        epochs = [r["epoch"] for r in rows]
        for ax, (key, _) in zip(axes, panels, strict=True):
            ax.plot(epochs, [r[key] for r in rows], marker="o", markersize=3, label=name)
    for ax, (_, label) in zip(axes, panels, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if curves:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def curve_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """``rows`` (:func:`epoch_curve`) as CSV text; floats to 6 significant digits (``NaN`` where absent)."""
    if not rows:
        return "epoch,step," + ",".join(GENERIC) + "\n"
    cols = list(rows[0])
    lines = [",".join(cols)]
    for row in rows:
        lines.append(",".join(str(v) if isinstance(v, int) else f"{float(v):.6g}" for v in (row[c] for c in cols)))
    return "\n".join(lines) + "\n"
