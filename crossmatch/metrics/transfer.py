"""Per-source comparison against single-source training and the negative-transfer flag (§2.10).

Negative transfer: a multi-source method does worse on a source than training on that
source alone (SOO). The table lists, per source and method, the metric, its difference to
SOO and the flag; the verdict names the sources where a method transfers negatively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def transfer_table(scores: Mapping[str, Mapping[str, float]], methods: Sequence[str], *,
                   baseline: str = "soo", tolerance: float = 0.0) -> list[dict[str, Any]]:
    """Rows ``{source, method, score, baseline, delta, negative_transfer}``.

    Args:
        scores: ``scores[source][method]`` (e.g. NDCG@10); methods missing for a source are skipped.
        methods: methods to compare with ``baseline``.
        tolerance: a method counts as negative transfer only when ``score < baseline − tolerance``.
    """
    rows = []
    for source, per in scores.items():
        if baseline not in per:
            continue
        ref = float(per[baseline])
        for m in methods:
            if m == baseline or m not in per:
                continue
            s = float(per[m])
            rows.append({"source": source, "method": m, "score": s, "baseline": ref, "delta": s - ref,
                         "negative_transfer": bool(s < ref - tolerance)})
    return rows


def verdict(rows: Sequence[Mapping[str, Any]], method: str) -> dict[str, Any]:
    """``{"negative_sources": [...], "n_sources": n, "text": ...}`` for one method."""
    mine = [r for r in rows if r["method"] == method]
    neg = sorted(r["source"] for r in mine if r["negative_transfer"])
    if not mine:
        text = f"{method}: no comparison with SOO available"
    elif neg:
        text = f"{method}: negative transfer on {len(neg)}/{len(mine)} source(s): {', '.join(neg)}"
    else:
        text = f"{method}: no negative transfer (>= SOO on all {len(mine)} sources)"
    return {"negative_sources": neg, "n_sources": len(mine), "text": text}
