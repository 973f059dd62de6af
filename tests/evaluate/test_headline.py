"""The headline metrics file: the README table's numbers, small enough for `dvc exp show` (issue 14, part 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from crossmatch.report.markdown import fmt
from crossmatch.report.readme import MAX_HEADLINE_KEYS, headline_metrics, results_rows

ROOT = Path(__file__).resolve().parents[2]
# headline file -> the detail files its evaluate stage reads (as in dvc.yaml and pipelines/real/dvc.yaml)
PIPELINES = {
    "headline": {"icpa": "icpa", "blocking": "blocking", "weavenet": "weavenet_eval", "match": "match"},
    "real_headline": {"icpa": "real_icpa_xmarket", "blocking": "real_blocking_walmart_amazon",
                      "match": "real_match_walmart_amazon"},
}


def _load(stem: str) -> dict[str, Any]:
    return json.loads((ROOT / "metrics" / f"{stem}.json").read_text())


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_committed_headline_is_small_and_shows_the_readme_numbers(name: str) -> None:
    detail = {arg: _load(stem) for arg, stem in PIPELINES[name].items()}
    head = headline_metrics(**detail)
    assert 10 <= len(head) <= MAX_HEADLINE_KEYS
    assert _load(name) == json.loads(json.dumps(head)), f"metrics/{name}.json is not what evaluate writes"
    rows = results_rows({stem: detail[arg] for arg, stem in PIPELINES[name].items()})
    shown = {(r["area"], r["metric"]): r["value"] for r in rows}
    for method in ("icpa", "soo", "base", "icpa+ease", "ease", "cooccurrence"):
        assert shown[("ICPA", f"mean test NDCG@10, {method}")] == fmt(head[f"icpa.ndcg@10.{method}"], 3)
    assert shown[("ICPA", "alignment hit@10 (chance)")] == (
        f"{fmt(head['icpa.alignment.hit@10'])} ({fmt(head['icpa.alignment.chance@10'])})")
    best = head["blocking.best.method"]
    assert shown[("BiPoly blocking", f"{best}: coverage / reduction / tradeoff")] == " / ".join(
        fmt(head[f"blocking.best.{k}"]) for k in ("coverage", "reduction", "tradeoff"))
    assert shown[("One-to-one match", "precision / recall / F1")] == " / ".join(
        fmt(head[f"match.{k}"]) for k in ("precision", "recall", "f1"))
    verdict = shown[("ICPA", "negative transfer (ICPA vs SOO)")]
    assert ("no significant" in verdict) == (head["icpa.negative_transfer_sources"] == 0)
    if "weavenet" in detail:
        assert shown[("Two-sided", "algorithm means within sampling error")] == (
            f"{head['twosided.paper_cells.pass']} / {head['twosided.paper_cells.total']} cells")
        rates = [v for k, v in sorted(head.items()) if k.startswith("twosided.weavenet_stable_rate.")]
        assert rates and any(r["value"] == " / ".join(fmt(v) for v in rates) for r in rows)


def test_headline_keys_are_stable_and_skip_what_did_not_run() -> None:
    blocking = {"selected": "a", "methods": {"a": {"coverage": 0.9, "reduction": 0.5, "tradeoff": 0.6},
                                             "b": {"coverage": 0.7, "reduction": 0.9, "tradeoff": 0.8}}}
    head = headline_metrics(blocking=blocking, match={"precision": 0.5, "recall": 0.25, "f1": 1 / 3})
    assert head["blocking.selected.method"] == "a" and head["blocking.best.method"] == "b"
    assert head["blocking.best.tradeoff"] == 0.8 and head["match.recall"] == 0.25
    assert not [k for k in head if k.startswith(("icpa.", "twosided."))]
    assert headline_metrics() == {}


@pytest.mark.parametrize("dvcfile", ["dvc.yaml", "pipelines/real/dvc.yaml"])
def test_only_the_headline_is_a_dvc_metric(dvcfile: str) -> None:
    """`dvc exp show` / `dvc metrics diff` with no flags show the declared metrics only: the headline file.
    The detail files are plain `cache: false` outs (git-tracked; `dvc metrics diff --targets` reads them)."""
    stages = yaml.safe_load((ROOT / dvcfile).read_text())["stages"]
    declared = [next(iter(e)) if isinstance(e, dict) else e
                for stage in stages.values() for e in stage.get("do", stage).get("metrics", [])]
    assert declared == ["metrics/headline.json" if dvcfile == "dvc.yaml" else "metrics/real_headline.json"]
    detail = [(next(iter(e)), e[next(iter(e))]) for stage in stages.values()
              for e in stage.get("do", stage).get("outs", []) if isinstance(e, dict)
              and next(iter(e)).startswith("metrics/")]
    assert len(detail) >= 5 and all(flags == {"persist": True, "cache": False} for _, flags in detail)
