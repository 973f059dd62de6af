"""WeaveNet training curves: csv rows and a PNG of loss, validation stable rate and SEq against steps."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from crossmatch.twosided.weavenet.train import TrainResult


def curve_csv(results: Sequence[tuple[str, TrainResult]]) -> str:
    """The validation history of every model as csv text: one row per (model, validation step)."""
    cols = ["step", "loss_total", "loss_imit", "loss_m", "loss_s", "loss_f", "loss_b", "val_stable_rate", "val_seq",
            "val_seq_stable", "val_bal", "val_hungarian_blocking", "val_score"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model"] + cols)
    for name, result in results:
        for row in result.history:
            w.writerow([name, int(row["step"])] + [("" if c not in row else f"{row[c]:.6g}") for c in cols[1:]])
    return buf.getvalue()


def plot_curves(results: Sequence[tuple[str, TrainResult]], path: Path, *, title: str, binarize: str) -> None:
    """Three panels vs step, one line per model: training loss, validation stable rate, validation SEq
    (issue 13, part 6: a curve a person can read). ``path`` is a file the caller then moves into place."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for name, result in results:
        train_rows = [r for r in result.history if "loss_total" in r]
        line = axes[0].plot([r["step"] for r in train_rows], [r["loss_total"] for r in train_rows], label=name)
        steps = [r["step"] for r in result.history]
        axes[1].plot(steps, [r["val_stable_rate"] for r in result.history], color=line[0].get_color() if line else None,
                     label=f"{name} (selected step {result.best_step})")
        axes[2].plot(steps, [r["val_seq"] for r in result.history], color=line[0].get_color() if line else None, label=name)
    axes[0].set_ylabel("training loss (mean since last validation)")
    axes[1].set_ylabel(f"validation stable rate ({binarize})")
    axes[2].set_ylabel(f"validation mean SEq ({binarize}, all outputs)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
