"""Figures of the ICPA stages (matplotlib, Agg backend): each builder returns the Figure; :func:`png_bytes`
renders and closes it, and callers write the bytes.

* :func:`front_figure` — phase 1's per-source losses per epoch and the loss trajectory of two sources;
* :func:`ndcg_figure` — test NDCG@k vs k per method, macro mean and per source;
* :func:`bars_figure` — test NDCG@10 per source and method, mean ± std over seeds;
* :func:`png_bytes` — a figure as PNG, closed afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from crossmatch.icpa.methods import LABELS  # noqa: E402
from crossmatch.icpa.table import RANKER_METHODS  # noqa: E402


def front_figure(frame: pl.DataFrame, sources: Sequence[str]) -> Figure:
    """Left: per-source loss per epoch. Right: epoch-mean losses of the first two sources (the front).

    ``frame``: phase 1's per-step log (``epoch``, ``loss_<source>``).
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    if frame.height:
        per_epoch = frame.group_by("epoch").agg([pl.col(f"loss_{s}").fill_nan(None).mean() for s in sources]).sort("epoch")
        for s in sources:
            axes[0].plot(per_epoch["epoch"] + 1, per_epoch[f"loss_{s}"], marker="o", label=s)
        axes[0].set_xlabel("epoch")
        axes[0].set_ylabel("mean source loss L_j")
        axes[0].legend()
        if len(sources) >= 2:
            a, b = sources[0], sources[1]
            sc = axes[1].scatter(per_epoch[f"loss_{a}"], per_epoch[f"loss_{b}"], c=per_epoch["epoch"], cmap="viridis")
            fig.colorbar(sc, ax=axes[1], label="epoch")
            axes[1].set_xlabel(f"L_{a}")
            axes[1].set_ylabel(f"L_{b}")
    axes[0].set_title("phase 1: per-source losses")
    axes[1].set_title("loss trajectory (Pareto front view)")
    fig.tight_layout()
    return fig


def ndcg_figure(curve: pl.DataFrame, sources: Sequence[str], methods: Sequence[str]) -> Figure:
    """``curve``: ``k, <method>, <method>.<source>`` (:attr:`crossmatch.icpa.table.TableResult.curve`)."""
    fig, axes = plt.subplots(1, len(sources) + 1, figsize=(4 * (len(sources) + 1), 3.6), sharey=False)
    panels: list[tuple[str, str | None]] = [("macro mean over sources", None)] + [(s, s) for s in sources]
    colours = plt.get_cmap("tab20").colors  # type: ignore[attr-defined]  # more series than the default cycle
    for ax, (title, s) in zip(axes, panels, strict=True):
        for i, m in enumerate(methods):
            col = m if s is None else f"{m}.{s}"
            if col in curve.columns:
                style = "--" if m in RANKER_METHODS else "-"
                ax.plot(curve["k"], curve[col], style, marker="o", ms=3, color=colours[(2 * i) % 20 + (i >= 10)],
                        label=LABELS.get(m, m))
        ax.set_title(title)
        ax.set_xlabel("k")
        ax.set_xscale("log")
    axes[0].set_ylabel("NDCG@k (test)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def bars_figure(summary: dict[str, dict[str, dict[str, Any]]], sources: Sequence[str],
                methods: Sequence[str]) -> Figure:
    """Test NDCG@10 per source, mean ± std over seeds (error bars)."""
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(sources) * len(methods) / 4), 4))
    width = 0.8 / max(len(methods), 1)
    colours = plt.get_cmap("tab20").colors  # type: ignore[attr-defined]
    for i, m in enumerate(methods):
        xs = [si + i * width for si in range(len(sources))]
        ys = [summary[s].get(m, {}).get("ndcg@10", float("nan")) for s in sources]
        es = [summary[s].get(m, {}).get("ndcg@10_std", 0.0) for s in sources]
        ax.bar(xs, ys, width, yerr=es, capsize=2, color=colours[i % 20], label=LABELS.get(m, m),
               hatch="//" if m in RANKER_METHODS else None)
    ax.set_xticks([si + 0.4 - width / 2 for si in range(len(sources))], list(sources))
    ax.set_ylabel("NDCG@10 (test, mean ± std over seeds)")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return fig


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """``fig`` rendered as PNG; the figure is closed (its memory freed) afterwards."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buf.getvalue()
