"""Headline numbers and report tables from the stages' metrics dictionaries (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from crossmatch.metrics.hypervolume import hypervolume_under, pareto_front

Metrics = Mapping[str, Any]

ICPA_METHODS = ("icpa", "soo", "base", "mmoe", "wo_align", "wo_pareto", "wo_front", "gsage", "m2grl", "dgi",
                "icpa+ease", "soo+ease", "base+ease", "icpa+cooccurrence", "soo+cooccurrence",
                "popularity", "cooccurrence", "itemknn", "ease")


def _pm(mean: Any, std: Any) -> str | None:
    if mean is None:
        return None
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"


def icpa_rows(icpa: Metrics, sources: list[str], k: int = 10) -> list[dict[str, Any]]:
    """One row per (source, method): test NDCG@k (mean ± std over seeds), validation NDCG@k, F@k,
    steps, the paired-bootstrap difference to SOO and the verdicts vs SOO and vs the best ranker."""
    rows = []
    for s in sources:
        for m in ICPA_METHODS:
            if f"{s}.{m}.ndcg@{k}" not in icpa:
                continue
            lo, hi = icpa.get(f"{s}.{m}.vs_soo_lo"), icpa.get(f"{s}.{m}.vs_soo_hi")
            delta = icpa.get(f"{s}.{m}.delta_vs_soo")
            rows.append(
                {
                    "source": s,
                    "method": m,
                    "ndcg": _pm(icpa.get(f"{s}.{m}.ndcg@{k}"), icpa.get(f"{s}.{m}.ndcg@{k}_std")),
                    "valid": icpa.get(f"{s}.{m}.valid_ndcg@{k}"),
                    "f": icpa.get(f"{s}.{m}.f@{k}"),
                    "loo": icpa.get(f"{s}.{m}.loo_ndcg@{k}"),
                    "steps": icpa.get(f"{s}.{m}.steps"),
                    "delta": (f"{delta:+.4f} [{lo:+.4f}, {hi:+.4f}]" if delta is not None and lo is not None
                              else delta),
                    "nt": icpa.get(f"{s}.{m}.vs_soo", icpa.get(f"{s}.{m}.negative_transfer")),
                    "vs_best": icpa.get(f"verdicts.{s}.{m}_vs_best_ranker.verdict"),
                }
            )
    return rows


def icpa_sources(icpa: Metrics) -> list[str]:
    """Sources present in a flat ICPA metrics dict (keys ``<source>.<method>.<metric>``)."""
    found = []
    for key in icpa:
        parts = key.split(".")
        if len(parts) == 3 and parts[1] == "soo" and parts[0] not in found:
            found.append(parts[0])
    # The across-source mean row goes last.
    return sorted(found, key=lambda s: (s == "mean", s))


def front_summary(losses: np.ndarray) -> dict[str, Any]:
    """Pareto front of per-step per-source losses and the hypervolume under it (ICPA §2.6)."""
    mask = pareto_front(losses)
    front = losses[mask]
    # Normalise by the per-source worst loss so the volume is comparable across runs.
    scale = losses.max(axis=0)
    return {
        "points": int(len(losses)),
        "front_points": int(mask.sum()),
        "hypervolume_under": hypervolume_under(front),
        "hypervolume_under_normalised": hypervolume_under(front / scale),
        "mask": mask,
    }


def blocking_rows(blocking: Metrics) -> list[dict[str, Any]]:
    """One row per blocking method: coverage, reduction, tradeoff, pairs, objective, status (the run's wall
    times are in ``timings/``, outside git: see ``stages._common.write_json``)."""
    rows = []
    for name, m in sorted(blocking.get("methods", {}).items(), key=lambda kv: -float(kv[1].get("tradeoff") or 0)):
        rows.append({"method": name, **{k: m.get(k) for k in ("coverage", "reduction", "tradeoff", "n_pairs",
                                                               "objective", "status", "similarity")}})
    return rows


def headline(
    *,
    icpa: Metrics | None = None,
    blocking: Metrics | None = None,
    match: Metrics | None = None,
    weavenet: Metrics | None = None,
    front: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The flat headline metrics of a pipeline run (what ``metrics/evaluate.json`` holds)."""
    out: dict[str, Any] = {}
    if icpa:
        for s in icpa_sources(icpa):
            # every method, ablations included (issue: F@10 and NDCG@10 per source for ICPA,
            # SOO, Base and the ablations)
            for m in ICPA_METHODS:
                for metric in ("ndcg@10", "f@10"):
                    key = f"{s}.{m}.{metric}"
                    if key in icpa:
                        out[f"icpa.{key}"] = icpa[key]
            if f"{s}.icpa.negative_transfer" in icpa:
                out[f"icpa.{s}.negative_transfer"] = bool(icpa[f"{s}.icpa.negative_transfer"])
        flags = [v for k, v in out.items() if k.endswith(".negative_transfer")]
        if flags:
            out["icpa.negative_transfer_sources"] = int(sum(flags))
    if front:
        out["icpa.front.points"] = front["points"]
        out["icpa.front.front_points"] = front["front_points"]
        out["icpa.front.hypervolume_under"] = front["hypervolume_under"]
        out["icpa.front.hypervolume_under_normalised"] = front["hypervolume_under_normalised"]
    if blocking:
        sel = blocking.get("selected")
        for name, m in blocking.get("methods", {}).items():
            out[f"blocking.{name}.tradeoff"] = m.get("tradeoff")
        if sel and sel in blocking.get("methods", {}):
            for k in ("coverage", "reduction", "tradeoff"):
                out[f"blocking.selected.{k}"] = blocking["methods"][sel].get(k)
            cat = blocking.get("category_truth", {}).get(sel)
            if cat:
                out["blocking.selected.category_precision"] = cat.get("precision")
                out["blocking.selected.category_recall"] = cat.get("recall")
    if match:
        for k in ("precision", "recall", "f1"):
            if k in match:
                out[f"match.{k}"] = match[k]
    if weavenet:
        for k, v in weavenet.items():
            if k.startswith("check_") or (k.startswith("WeaveNet/") and k.endswith("/stable_rate")):
                out[f"twosided.{k.replace('/', '.')}"] = v
        for target in ("SEq", "Bal"):
            for n in (20, 30):
                wins = [v for k, v in weavenet.items() if k.startswith(f"{target}/N{n}/") and k.endswith("/WeaveNet/win")]
                if wins:
                    out[f"twosided.{target}.N{n}.weavenet_win_rate"] = float(np.mean(wins))
    return {k: v for k, v in out.items() if v is not None}
