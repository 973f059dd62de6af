"""Report and match on data without truth: truth-based figures are null and the report says why."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from crossmatch.report.readme import headline_metrics
from crossmatch.report.sections import blocking_section, icpa_section, match_section
from crossmatch.report.summary import blocking_rows
from crossmatch.twosided.block_match import label_free
from stages.match import read_items


def test_match_reads_items_without_title_or_fine_category(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    pl.DataFrame({"item_idx": [0, 1], "item_id": ["x", "y"], "category": ["home_audio", "tv"]}) \
        .write_parquet(tmp_path / "a" / "items.parquet")
    items = read_items(tmp_path, "a")
    assert items.columns == ["item_id", "title", "fine_category"]
    assert items.get_column("title").to_list() == ["home audio", "tv"]  # category names stand in
    assert items.get_column("fine_category").to_list() == ["home_audio", "tv"]


def test_label_free_match_metrics() -> None:
    pairs = pl.DataFrame({"similarity": [0.5, 1.0]})
    m = label_free({"precision": 0.0, "f1": 0.0, "pairs": 2}, pairs, 4, 2, "no truth")
    assert m["precision"] is None and m["f1"] is None and m["truth_unavailable"] == "no truth"
    assert (m["left_matched_share"], m["right_matched_share"], m["mean_similarity"]) == (0.5, 1.0, 0.75)
    text = match_section(m)
    assert "Precision, recall and F1 unavailable: no truth." in text and "mean_similarity" in text
    assert headline_metrics(match=m) == {"match.pairs": 2}


def test_untuned_blocking_and_missing_hits_are_explained() -> None:
    b = {"left": "a", "right": "b", "tuned": False, "selected": "bipoly_c", "n_candidate_pairs": 10,
         "methods": {"bipoly_c": {"coverage": None, "reduction": 0.5, "tradeoff": None},
                     "poly": {"coverage": None, "reduction": 0.7, "tradeoff": None}}}
    assert [r["method"] for r in blocking_rows(b)] == ["bipoly_c", "poly"]  # null tradeoffs sort, no error
    assert "every method ran untuned" in blocking_section(b, "plots/", "blocking")
    icpa = {"a.soo.ndcg@10": 0.1, "a.icpa.ndcg@10": 0.2, "alignment.icpa_phase1.hit@10": None,
            "alignment.icpa_phase1.hits_unavailable": "no concepts truth (none)"}
    text = icpa_section(icpa, None, 10, "plots/", "front", "ndcg")
    assert "Alignment accuracy (hit@k) unavailable: no concepts truth (none)." in text
    assert "hit@10 of the true" not in text
