"""Figures for the report (matplotlib, Agg backend). Each builder returns a Figure; callers save it."""

from __future__ import annotations

from itertools import combinations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def pareto_front_figure(losses: np.ndarray, names: list[str], mask: np.ndarray, hypervolume: float) -> Figure:
    """Per-step source losses of ICPA phase 1, pairwise, with the Pareto-front points highlighted."""
    pairs = list(combinations(range(losses.shape[1]), 2)) or [(0, 0)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.8), squeeze=False)
    order = np.arange(len(losses))
    for ax, (i, j) in zip(axes[0], pairs, strict=True):
        sc = ax.scatter(losses[:, i], losses[:, j], c=order, cmap="viridis", s=12, alpha=0.6)
        ax.scatter(losses[mask, i], losses[mask, j], facecolors="none", edgecolors="red", s=60, linewidths=1.4,
                   label="Pareto front")
        ax.set_xlabel(f"L_{names[i]}")
        ax.set_ylabel(f"L_{names[j]}")
        ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(sc, ax=axes[0].tolist(), label="training step")
    fig.suptitle(f"ICPA phase 1: per-source losses ({int(mask.sum())} front points of {len(losses)}; "
                 f"hypervolume under the front {hypervolume:.4g})", fontsize=10)
    return fig


def save_png(fig: Figure, path: object) -> None:
    """Save as PNG whatever the file name ends with (atomic writes use temporary names)."""
    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")  # type: ignore[arg-type]
    plt.close(fig)
