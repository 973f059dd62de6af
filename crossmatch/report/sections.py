"""Sections of the pipeline report (``report.md``): pure functions from metrics dictionaries to markdown.

The ``evaluate`` stage reads the metrics files and writes the report; the text is built here.
"""

from __future__ import annotations

from typing import Any

from crossmatch.report.markdown import fmt, table
from crossmatch.report.summary import blocking_rows, icpa_rows, icpa_sources


def _img(rel: str, caption: str) -> str:
    return f"![{caption}]({rel})\n\n*{caption}*"


def data_section(gen: dict[str, Any] | None, edges: dict[str, Any] | None) -> str:
    rows = []
    for s, e in (edges or {}).get("sources", {}).items():
        rows.append({"source": s, "users": e.get("users"), "items": e.get("items"), "train": e.get("events_train"),
                     "heldout": e.get("events_heldout"), "ii": e.get("item_item_edges")})
    head = ""
    if gen:
        head = (f"Synthetic world: preset `{gen.get('preset')}`, seed {gen.get('seed')}, {fmt(gen.get('events'))} events, "
                f"{gen.get('categories')} shared categories, {gen.get('fine_categories')} fine categories.\n\n")
    return head + table(rows, ["source", "users", "items", "train", "heldout", "ii"],
                        ["source", "users", "items", "train events", "held-out events", "item–item edges"])


def icpa_section(icpa: dict[str, Any], front: dict[str, Any] | None, k: int, img: str, front_stem: str,
                 ndcg_stem: str) -> str:
    sources = icpa_sources(icpa)
    rows = icpa_rows(icpa, sources, k)
    best = {s: icpa.get(f"settings.{s}.best_ranker") for s in sources}
    parts = [
        f"Test NDCG@{k} (mean ± std over seeds; settings chosen on the validation split, whose NDCG@{k} is "
        f"the *valid* column) and F@{k} on each source; *1+99* is NDCG@{k} under the XMarket papers' protocol "
        "(the test item among 99 sampled negatives) where it ran. Δ vs SOO is the paired-bootstrap difference "
        "over users with its 95 % interval; *vs SOO* is the verdict (negative transfer only when the interval "
        "lies below 0); *vs best ranker* compares with the non-learned ranker that was best on validation "
        f"({', '.join(f'{s}: {b}' for s, b in best.items() if b)}).",
        table(rows, ["source", "method", "ndcg", "valid", "f", "loo", "steps", "delta", "nt", "vs_best"],
              ["source", "method", f"NDCG@{k} test", f"NDCG@{k} valid", f"F@{k}", "1+99", "steps", "Δ vs SOO",
               "vs SOO", "vs best ranker"], digits=4),
    ]
    verdicts = {key.split(".")[1]: icpa[key] for key in icpa if key.startswith("negative_transfer.") and key.endswith(".verdict")}
    if verdicts:
        parts.append("Negative-transfer verdicts:\n\n" + "\n".join(f"* {v}" for v in verdicts.values()))
    hits = [(m.split(".")[1], icpa.get(f"alignment.{m.split('.')[1]}.hit@10"), icpa.get(f"alignment.{m.split('.')[1]}.chance@10"))
            for m in icpa if m.startswith("alignment.") and m.endswith(".hit@10") and icpa[m] is not None]
    no_hits = icpa.get("alignment.icpa_phase1.hits_unavailable")
    if no_hits:
        parts.append(f"Alignment accuracy (hit@k) unavailable: {no_hits}.")
    if hits:
        parts.append("Alignment accuracy (hit@10 of the true cross-source partner among the nearest items of the "
                     "other source): " + "; ".join(f"{m} {fmt(h)} (chance {fmt(c)})" for m, h, c in hits) + ".")
    if front:
        parts.append(
            f"Pareto front of phase 1: {front['front_points']} of {front['points']} per-step loss vectors are "
            f"non-dominated; hypervolume under the front {front['hypervolume_under']:.4g} "
            f"({front['hypervolume_under_normalised']:.4g} after scaling each loss by its maximum; smaller is better)."
        )
        parts.append(_img(f"{img}{front_stem}.png", "ICPA phase 1 per-source losses and their Pareto front"))
    parts.append(_img(f"{img}{ndcg_stem}.png", "NDCG@k against k per method"))
    parts.append(_img(f"{img}{ndcg_stem}_bars.png", "test NDCG@10 per source, mean ± std over seeds"))
    return "\n\n".join(parts)


def blocking_section(b: dict[str, Any], img: str, stem: str) -> str:
    untuned = b.get("tuned") is False  # no labelled product pairs: nothing tuned, coverage unknown
    truth = ("no labelled product pairs: every method ran untuned; coverage and tradeoff need labels and are "
             "unavailable, reduction and candidate pairs need none" if untuned
             else f"{fmt(b.get('n_true_pairs'))} true product pairs")
    parts = [
        f"Category blocking of `{b.get('left')}` × `{b.get('right')}` ({b.get('n_left_categories')} × "
        f"{b.get('n_right_categories')} categories, {truth}). "
        f"Selected method: **{b.get('selected')}** ({fmt(b.get('n_candidate_pairs'))} candidate pairs).",
        table(blocking_rows(b), ["method", "similarity", "coverage", "reduction", "tradeoff", "n_pairs", "status"],
              ["method", "similarity", "coverage", "reduction", "tradeoff", "category pairs", "status"]),
    ]
    refs = b.get("references", {})
    if refs:
        parts.append("References: " + "; ".join(f"{name} tradeoff {fmt(r.get('tradeoff'))} (coverage {fmt(r.get('coverage'))})"
                                               for name, r in refs.items() if isinstance(r, dict)) + ".")
    cats = b.get("category_truth", {})
    if cats:
        rows = [{"method": m, **v} for m, v in cats.items() if isinstance(v, dict)]
        parts.append("Matched category pairs against the planted category truth:\n\n"
                     + table(rows, ["method", "precision", "recall", "f1"]))
    parts.append(_img(f"{img}{stem}_tradeoff.png", "Tradeoff (harmonic mean of coverage and reduction) by method"))
    parts.append(_img(f"{img}{stem}_grid.png", "ω/η grid: tradeoff over the reward parameters"))
    return "\n\n".join(parts)


def match_section(m: dict[str, Any]) -> str:
    reason = m.get("truth_unavailable")
    if reason:  # what needs no labels: how many items found a partner, and how alike the pairs are
        keys: list[str] = [k for k in ("solver", "similarity", "candidate_pairs", "pairs", "left_matched_share",
                            "right_matched_share", "mean_similarity") if k in m]
        return table([{k: m[k] for k in keys}], keys) + f"\n\nPrecision, recall and F1 unavailable: {reason}."
    keys = [k for k in ("solver", "similarity", "n_pairs", "precision", "recall", "f1", "recall_ceiling_blocking") if k in m]
    return table([{k: m[k] for k in keys}], keys)


def twosided_section(w: dict[str, Any], tables_link: tuple[str, str] | None, img: str) -> str:
    """The two-sided part of the report; ``tables_link`` = (name, relative path) of the full tables, if any."""
    parts = []
    if "check_cells" in w:
        parts.append(f"External check of our GS / PolyMin / DACC / PowerBalance means against the WeaveNet paper's "
                     f"Tables 2–3: {w.get('check_pass')} of {w.get('check_cells')} cells agree within sampling error.")
    if tables_link is not None:
        parts.append(f"Full tables: [{tables_link[0]}]({tables_link[1]}).")
    parts.append(_img(f"{img}weavenet_train.png", "WeaveNet training curve"))
    return "\n\n".join(parts)


HOW_TO_READ = """\
* **ICPA** rows compare the multi-source model with its baselines on each source's held-out interactions.
  The question is whether sharing helps *every* source: a negative Δ vs SOO marks negative transfer.
* **Blocking** trades coverage (share of true product pairs still compared) against reduction (share of all
  cross-source pairs skipped); the tradeoff is their harmonic mean. The references bound what any category
  matching can reach on this data.
* **Matching** precision/recall/F1 are of the final one-to-one product pairs against the product-match truth;
  recall cannot exceed the blocking's coverage.
* Numbers come from `metrics/*.json`; compare runs with `dvc metrics diff` (the headline file) or
  `dvc metrics diff --targets metrics/<file>.json` (any other) and `dvc plots diff`. Wall times are not in the
  metrics (they differ on every run): each stage writes them to `timings/<metrics file>`, outside git."""
