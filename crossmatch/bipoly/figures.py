"""Figures of the blocking protocol (matplotlib, Agg backend): each builder returns the plotted table and the
Figure; callers write both (the table is what DVC plots reads) and close the figure with :func:`save_png`.

* :func:`tradeoff_figure` — coverage, reduction and tradeoff per method (paper Table III / Fig. 4);
* :func:`grid_figure` — one method's tradeoff over the ω/η grid (paper Sec. V-C, Fig. 5);
* :func:`recall_curve_figure` — meta-blocking candidate-set size vs recall (paper Sec. V-F).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from crossmatch.bipoly.grid import GridRow  # noqa: E402


def tradeoff_figure(methods: dict[str, Any]) -> tuple[pl.DataFrame, Figure]:
    """``methods``: per method a mapping with ``coverage``, ``reduction`` and ``tradeoff``."""
    # coverage / tradeoff are null without labels (nothing tuned): drawn as no bar
    trade = pl.DataFrame([{"method": k, "coverage": v["coverage"], "reduction": v["reduction"], "tradeoff": v["tradeoff"]}
                          for k, v in methods.items()],
                         schema={"method": pl.String, "coverage": pl.Float64, "reduction": pl.Float64, "tradeoff": pl.Float64})
    fig, ax = plt.subplots(figsize=(7, 0.35 * trade.height + 1.2))
    y = np.arange(trade.height)
    for off, col in ((-0.27, "coverage"), (0.0, "reduction"), (0.27, "tradeoff")):
        ax.barh(y + off, trade[col].fill_null(0.0).to_numpy(), height=0.27, label=col)
    ax.set_yticks(y, trade["method"].to_list())
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("category blocking per method")
    fig.tight_layout()
    return trade, fig


def grid_figure(grid: Sequence[tuple[str, GridRow]], select: str) -> tuple[pl.DataFrame, Figure]:
    """Every grid row (with its similarity kind); the heat-map shows ``select`` (else the first method),
    the best tradeoff per (ω_L, η_L)."""
    g = pl.DataFrame([{"similarity": k, **r.as_dict()} for k, r in grid])
    if g.height == 0:  # nothing tuned (no labels): an empty table and a figure that says so
        fig, ax = plt.subplots(figsize=(6.5, 2.0))
        ax.axis("off")
        ax.text(0.5, 0.5, "no labelled pairs: the ω/η grid was not run", ha="center", va="center")
        cols = ["similarity", "method", "omega_l", "omega_r", "eta_l", "eta_r", "coverage", "reduction", "tradeoff",
                "n_pairs", "objective"]
        return pl.DataFrame(schema={c: pl.String if c in ("similarity", "method") else pl.Float64 for c in cols}), fig
    pick = select if select in set(g["method"].to_list()) else g["method"][0]
    sub = g.filter(pl.col("method") == pick).group_by("omega_l", "eta_l").agg(pl.col("tradeoff").max())
    om, et = sorted(set(sub["omega_l"].to_list())), sorted(set(sub["eta_l"].to_list()))
    heat = np.full((len(et), len(om)), np.nan)
    for o, e, t in sub.iter_rows():
        heat[et.index(e), om.index(o)] = t
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    im = ax.imshow(heat, origin="lower", aspect="auto", extent=(om[0], om[-1], et[0], et[-1]), cmap="viridis")
    fig.colorbar(im, ax=ax, label="tradeoff")
    ax.set_xlabel("ω (reclusivity)")
    ax.set_ylabel("η (receptivity)")
    ax.set_title(f"{pick}: tradeoff over the ω/η grid")
    fig.tight_layout()
    return g, fig


def recall_curve_figure(curve: pl.DataFrame, budget: int) -> tuple[pl.DataFrame, Figure]:
    """``curve``: ``n_pairs`` then one recall column per (variant, labels); the budget is marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for col in curve.columns[1:]:
        ax.plot(curve["n_pairs"].to_numpy(), curve[col].to_numpy(), label=col.removeprefix("recall_").replace("_", " ", 1),
                linestyle="-" if "valid" in col else ":")
    ax.axvline(budget, color="grey", linewidth=0.8)
    ax.axhline(0.99, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlabel("candidate pairs")
    ax.set_ylabel("recall of labelled true pairs")
    ax.set_ylim(0.8, 1.0)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("meta-blocking: candidate-set size vs recall")
    fig.tight_layout()
    return curve, fig


def save_png(fig: Figure, path: object) -> None:
    """Save as PNG at 110 dpi whatever the file name ends with (atomic writes use temporary names), then close."""
    fig.savefig(path, format="png", dpi=110)  # type: ignore[arg-type]
    plt.close(fig)
