"""Stage ``evaluate``: collect every stage's metrics into headline metrics, figures and ``report.md``.

Reads the metrics JSON and plot CSVs the other stages wrote (a missing one drops its section
with a note), computes the Pareto front of ICPA phase 1's per-source losses and the
hypervolume under it, and writes:
    --headline  the few numbers the README results table shows (<= 25 keys: the file ``dvc exp show`` and
                ``dvc metrics diff`` display by default)
    --out       every summary metric, flat (``dvc metrics diff --targets`` it)
    --report    the human report, with PNG figures
    plots/pareto_front.{csv,png}
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from crossmatch.errors import ConfigError
from crossmatch.report import figures
from crossmatch.report.markdown import fmt, table
from crossmatch.report.readme import headline_metrics
from crossmatch.report.summary import blocking_rows, front_summary, headline, icpa_rows, icpa_sources
from stages._common import console, load_section, params_as, run, write_atomic, write_json, write_text


@dataclass(frozen=True)
class EvaluateParams:
    k: int = 10  # the k of the NDCG@k / F@k columns in the report

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"evaluate.k must be an integer >= 1, got {self.k}")


def _load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    return json.loads(path.read_text())


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
            for m in icpa if m.startswith("alignment.") and m.endswith(".hit@10")]
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
    parts = [
        f"Category blocking of `{b.get('left')}` × `{b.get('right')}` ({b.get('n_left_categories')} × "
        f"{b.get('n_right_categories')} categories, {fmt(b.get('n_true_pairs'))} true product pairs). "
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
    keys = [k for k in ("solver", "similarity", "n_pairs", "precision", "recall", "f1", "recall_ceiling_blocking") if k in m]
    return table([{k: m[k] for k in keys}], keys)


def twosided_section(w: dict[str, Any], tables_md: Path | None, report_dir: Path, img: str) -> str:
    parts = []
    if "check_cells" in w:
        parts.append(f"External check of our GS / PolyMin / DACC / PowerBalance means against the WeaveNet paper's "
                     f"Tables 2–3: {w.get('check_pass')} of {w.get('check_cells')} cells agree within sampling error.")
    if tables_md is not None and tables_md.exists():
        rel = os.path.relpath(tables_md.resolve(), report_dir).replace(os.sep, "/")
        parts.append(f"Full tables: [{tables_md.name}]({rel}).")
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


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="evaluate", help="params section to read")
    # Inputs: a path that does not exist (e.g. "none") drops that section from the report.
    ap.add_argument("--generate", default="metrics/generate.json")
    ap.add_argument("--edges", default="metrics/edges.json")
    ap.add_argument("--icpa", default="metrics/icpa.json")
    ap.add_argument("--blocking", default="metrics/blocking.json")
    ap.add_argument("--weavenet", default="metrics/weavenet_eval.json")
    ap.add_argument("--match", default="metrics/match.json")
    ap.add_argument("--front", default="plots/icpa_front.csv", help="per-step losses of ICPA phase 1")
    ap.add_argument("--plots-dir", default="plots")
    ap.add_argument("--front-stem", default="pareto_front", help="file stem of the Pareto-front plot")
    ap.add_argument("--ndcg-stem", default="icpa_ndcg_at_k", help="file stem of the NDCG@k plot")
    ap.add_argument("--blocking-stem", default="blocking", help="stem of the blocking plots")
    ap.add_argument("--weavenet-tables", default="reports/weavenet_tables.md")
    ap.add_argument("--title", default="crossmatch report: default pipeline (synthetic data)")
    ap.add_argument("--out", default="metrics/evaluate.json")
    ap.add_argument("--headline", default=None,
                    help="the README table's numbers, <= 25 keys (default: headline.json beside --out)")
    ap.add_argument("--report", default="report.md")
    args = ap.parse_args()
    params = params_as(EvaluateParams, load_section(args.section, args.params), args.section)

    pdir = Path(args.plots_dir)
    loaded = {name: _load(Path(getattr(args, name))) for name in ("generate", "edges", "icpa", "blocking", "match", "weavenet")}
    report_dir = Path(args.report).resolve().parent
    img = os.path.relpath(pdir.resolve(), report_dir).replace(os.sep, "/") + "/"

    front = None
    front_csv = Path(args.front)
    if front_csv.exists():
        df = pl.read_csv(front_csv)
        loss_cols = [c for c in df.columns if c.startswith("loss_")]
        losses = df.select(loss_cols).to_numpy().astype(np.float64)
        front = front_summary(losses)
        names = [c.removeprefix("loss_") for c in loss_cols]
        write_atomic(pdir / f"{args.front_stem}.csv",
                     lambda p: df.select("step", *loss_cols).with_columns(pl.Series("front", front["mask"])).write_csv(p))
        fig = figures.pareto_front_figure(losses, names, front["mask"], front["hypervolume_under"])
        write_atomic(pdir / f"{args.front_stem}.png", lambda p: figures.save_png(fig, p))

    summary = headline(icpa=loaded["icpa"], blocking=loaded["blocking"], match=loaded["match"],
                       weavenet=loaded["weavenet"], front=front)
    sections = [f"# {args.title}", "Generated by `python -m stages.evaluate` from `metrics/*.json` — do not edit by hand."]
    if loaded["edges"]:
        sections += ["## Data", data_section(loaded["generate"], loaded["edges"])]
    if loaded["icpa"]:
        sections += ["## ICPA: multi-source matching model",
                     icpa_section(loaded["icpa"], front, params.k, img, args.front_stem, args.ndcg_stem)]
    if loaded["blocking"]:
        sections += ["## BiPoly: category blocking", blocking_section(loaded["blocking"], img, args.blocking_stem)]
    if loaded["weavenet"]:
        sections += ["## Two-sided matching: WeaveNet and the stable-matching algorithms",
                     twosided_section(loaded["weavenet"], Path(args.weavenet_tables), report_dir, img)]
    if loaded["match"]:
        sections += ["## One-to-one product matching", match_section(loaded["match"])]
    missing = [n for n in ("icpa", "blocking", "weavenet", "match") if loaded[n] is None]
    if missing:
        sections.append(f"*Not in this run (no metrics file): {', '.join(missing)}.*")
    sections += ["## How to read this report", HOW_TO_READ]
    top = headline_metrics(icpa=loaded["icpa"], blocking=loaded["blocking"], weavenet=loaded["weavenet"],
                           match=loaded["match"])
    write_json(args.headline or Path(args.out).with_name("headline.json"), top)
    write_json(args.out, summary)
    write_text(args.report, "\n\n".join(sections) + "\n")
    console.print(f"evaluate: {len(top)} headline metrics; {len(summary)} summary metrics -> "
                  f"{args.out}; report -> {args.report}")


if __name__ == "__main__":
    run("evaluate", main)
