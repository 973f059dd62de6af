"""Stage ``blocking`` on the tiny preset: outputs, contract columns, metrics, clean errors."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import yaml

from crossmatch.bipoly.blocking import BlockingRun, run_blocking
from crossmatch.bipoly.config import BlockingParams
from crossmatch.truth import oriented_truth
from tests.conftest import run_stage

PARAMS = """
blocking:
  left: alpha
  right: beta
  similarity: best
  top_k: 10
  partition_by: category
  select: bipoly_c
  runner: {runner}
  workers: 2
  grid: {{omega: [-1.0, 1.0, 0.5], eta: [-1.0, 1.0, 0.5], tie_sides: true}}
  ilp: {{time_limit: 5, mip_gap: 0.0, grid: [-1.0, 1.0, 1.0]}}
  scenario: {{enabled: true, p: 0.2, seed: 0, top_k: 5}}
"""


def _run(tiny_data, tmp_path, runner: str = "process", truth=None):
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.format(runner=runner))
    return run_stage(
        "blocking", "--params", str(params), "--ingested", str(tiny_data.ingested),
        "--truth-pairs", str(truth or tiny_data.truth / "product_matches.parquet"),
        "--truth-categories", str(tiny_data.truth / "fine_categories.parquet"),
        "--out", str(tmp_path / "blocking"), "--metrics", str(tmp_path / "blocking.json"),
        "--plots", str(tmp_path / "plots" / "blocking"),
    )


def test_blocking_stage_on_tiny(tiny_data, tmp_path) -> None:
    # a recall curve left by an earlier run (outputs are `persist: true`): no curve this time, so it goes
    stale = [tmp_path / "plots" / f"blocking_recall_curve{suffix}" for suffix in (".csv", ".png")]
    stale[0].parent.mkdir(parents=True)
    for path in stale:
        path.write_text("stale")
    proc = _run(tiny_data, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not any(path.exists() for path in stale)
    out = tmp_path / "blocking"
    pairs = pl.read_parquet(out / "category_pairs.parquet")
    blocks = pl.read_parquet(out / "blocks.parquet")
    cand = pl.read_parquet(out / "candidate_pairs.parquet")
    assert pairs.columns == ["method", "left", "right"]
    assert blocks.columns == ["block_id", "left", "right"]
    assert cand.columns == ["left_item_id", "right_item_id", "block_id"]
    assert blocks.height == pairs.filter(pl.col("method") == "bipoly_c").height
    assert cand.get_column("block_id").is_in(blocks.get_column("block_id").implode()).all()
    assert cand.get_column("left_item_id").str.starts_with("alpha").all()
    metrics = json.loads((tmp_path / "blocking.json").read_text())
    expected = {"bipoly_s", "bipoly_c", "poly", "bipartite", "uflp", "kcore", "ilp_bipoly", "ilp_bipoly_maxweight",
                "ilp_poly", "ilp_poly_maxweight", "ilp_bipartite", "ilp_bipartite_maxweight", "ilp_uflp", "ilp_uflp_maxweight"}
    assert set(metrics["methods"]) == expected
    assert set(pairs.get_column("method").unique()) == expected
    # wall times are not in the metrics (a re-run would change a git-tracked file) but in timings/<name>
    timings = json.loads((tmp_path / "timings" / "blocking.json").read_text())
    assert "seconds" not in metrics and timings["seconds"]["total"] > 0
    for name, m in metrics["methods"].items():
        assert 0 <= m["coverage"] <= 1 and 0 <= m["reduction"] <= 1 and 0 <= m["tradeoff"] <= 1, name
        assert {"n_pairs", "objective", "status"} <= set(m) and "seconds" not in m
        assert timings["methods"][name]["seconds"] >= 0
        if name.startswith("ilp_"):
            # the branch-and-bound node count: the machine-independent measure of the solve's work
            assert m["status"] == "Optimal" and m["gap"] == 0.0 and isinstance(m["nodes"], int) and m["nodes"] >= 0
    assert set(metrics["category_truth"]["bipoly_c"]) >= {"precision", "recall"}
    assert "bipoly_s" in metrics["entity_scenario"]
    for name in ("tradeoff", "grid"):
        assert (tmp_path / "plots" / f"blocking_{name}.csv").exists()
        assert (tmp_path / "plots" / f"blocking_{name}.png").stat().st_size > 1000
    grid = pl.read_csv(tmp_path / "plots" / "blocking_grid.csv")
    assert {"similarity", "method", "omega_l", "eta_l", "tradeoff"} <= set(grid.columns)
    # determinism: the thread runner gives the same pairs and scores
    again = tmp_path / "again"
    again.mkdir()
    proc = _run(tiny_data, again, runner="thread")
    assert proc.returncode == 0, proc.stderr
    assert pl.read_parquet(again / "blocking" / "category_pairs.parquet").equals(pairs)
    # every figure of the two runs is identical, timings aside (issue 14, part 4: two runs give identical metrics)
    m2 = json.loads((again / "blocking.json").read_text())
    assert _without_seconds(m2) == _without_seconds(metrics)
    # the stage is I/O around one library call: run in-process (no executor), the library gives the same tables
    lib = _library_run(tiny_data, tmp_path)
    assert lib.category_pairs.equals(pairs) and lib.blocks.equals(blocks) and lib.candidates.equals(cand)
    assert _without_seconds(json.loads(json.dumps(lib.metrics, default=lambda o: o.item()))) == _without_seconds(metrics)


def _library_run(tiny_data, tmp_path) -> BlockingRun:
    section = yaml.safe_load((tmp_path / "params.yaml").read_text())["blocking"]
    params = BlockingParams(**section)
    items = {s: pl.read_parquet(tiny_data.ingested / s / "items.parquet") for s in (params.left, params.right)}
    tax = pl.read_parquet(tiny_data.ingested / "taxonomy.parquet")
    cats = {s: sorted(tax.filter(pl.col("source") == s).get_column("fine_category").unique().to_list()) for s in items}
    truth = oriented_truth(pl.read_parquet(tiny_data.truth / "product_matches.parquet"), params.left, params.right,
                           file="product_matches.parquet")
    return run_blocking(params, left_items=items[params.left], right_items=items[params.right], truth_pairs=truth,
                        left_categories=cats[params.left], right_categories=cats[params.right],
                        category_truth=pl.read_parquet(tiny_data.truth / "fine_categories.parquet"))


def _without_seconds(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [_without_seconds(v) for v in obj]
    return obj


def test_blocking_stage_bad_truth_ids_exit_2_without_traceback(tiny_data, tmp_path) -> None:
    bad = tmp_path / "truth.parquet"
    pl.DataFrame({"source_a": ["alpha"], "item_a": ["alpha-nope"], "source_b": ["beta"], "item_b": ["beta-i000001"]}).write_parquet(bad)
    proc = _run(tiny_data, tmp_path, truth=bad)
    assert proc.returncode == 2
    assert "not in the left catalogue" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "blocking").exists()
