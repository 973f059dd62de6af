"""A benchmark that ships its test split: scored and reported like valid, and never read by a choice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from crossmatch.er import BlockingConfig, MatchConfig, block, make_benchmark, match
from crossmatch.er.scorer import ScorerConfig
from crossmatch.er.tables import Benchmark, positives
from tests.conftest import run_stage
from tests.er.helpers import synthetic_tables

BLOCKING = BlockingConfig(k_left=3, k_grid=(1, 3, 5))
MATCH = MatchConfig(scorer=ScorerConfig(max_iter=50, folds=3))


def _said(proc: Any) -> str:
    """What a stage printed, on either stream, with the console's line wrapping undone."""
    return " ".join((proc.stdout + proc.stderr).split())


def _even_records(pairs: pl.DataFrame) -> pl.Series:
    """A split of labelled pairs by their left record (even / odd number), so both halves hold positives."""
    return pairs.get_column("ltable_id").str.slice(1).cast(pl.Int64) % 2 == 0


@pytest.fixture(scope="module")
def halves() -> tuple[pl.DataFrame, ...]:
    left, right, train, valid = synthetic_tables()
    first = _even_records(valid)
    return left, right, train, valid.filter(first), valid.filter(~first)


def _bench(halves: tuple[pl.DataFrame, ...], valid: int | None, test: int | None) -> Benchmark:
    left, right, train = halves[:3]
    return make_benchmark(left=left, right=right, train=train, valid=None if valid is None else halves[valid],
                          test=None if test is None else halves[test])


def _split_figures(metrics: dict[str, Any], split: str) -> dict[str, Any]:
    """Every figure the match reports on ``split``: the scorer's, each post-processing's, the unsupervised rows', the
    reference classifier's."""
    out = {"scorer": metrics["scorer"][split], "scorer_at_0.5": metrics["scorer"][f"{split}_at_0.5"]}
    out |= {m: e[split] for m, e in metrics["postprocess"].items()}
    out |= {k: metrics[k][split] for k in ("unsupervised", "unsupervised_mixture", "reference")}
    return out


def test_test_split_is_scored_like_valid_and_changes_no_choice(halves: tuple[pl.DataFrame, ...]) -> None:
    plain, with_test, roles_swapped = _bench(halves, 3, None), _bench(halves, 3, 4), _bench(halves, 4, 3)
    blocks = [block(b, config=BLOCKING) for b in (plain, with_test, roles_swapped)]
    # the blocking chooses on train only: the same candidates and k, whatever is held out
    assert blocks[0].candidates.equals(blocks[1].candidates) and blocks[1].candidates.equals(blocks[2].candidates)
    assert blocks[0].metrics["k"] == blocks[1].metrics["k"] and "recall_test" not in blocks[0].metrics
    assert blocks[1].metrics["recall_test"] == blocks[2].metrics["recall_valid"]
    assert blocks[1].metrics["recall_valid"] == blocks[0].metrics["recall_valid"]
    assert "recall_test" in blocks[1].curve.columns

    cands = blocks[0].candidates
    p, t, s = (match(b, cands, config=MATCH) for b in (plain, with_test, roles_swapped))
    # no choice reads test: threshold, token vocabulary, output, and valid's figures as without it
    assert p.metrics["scorer"]["threshold"] == t.metrics["scorer"]["threshold"]
    assert p.metrics["scorer"]["token_vocab"] == t.metrics["scorer"]["token_vocab"]
    assert p.metrics["output_choice"] == t.metrics["output_choice"]
    assert p.metrics["scorer"]["valid"] == t.metrics["scorer"]["valid"]
    assert p.metrics["postprocess"]["threshold"]["valid"] == t.metrics["postprocess"]["threshold"]["valid"]
    assert p.metrics["unsupervised"]["valid"] == t.metrics["unsupervised"]["valid"]
    assert p.metrics["reference"]["valid"] == t.metrics["reference"]["valid"] and "test" not in p.metrics["reference"]
    assert "test" not in p.metrics["scorer"] and p.metrics["scorer"]["pr_split"] == "valid"
    # test is scored exactly as valid is: the two halves' roles exchanged exchange every figure
    assert _split_figures(t.metrics, "test") == _split_figures(s.metrics, "valid")
    assert _split_figures(t.metrics, "valid") == _split_figures(s.metrics, "test")
    assert t.metrics["scorer"]["pr_split"] == "test" and t.pr is not None and t.pr.height
    assert t.pairs.equals(s.pairs)
    # every test pair is in the scored pool, inside the candidates or not
    pool = set(zip(t.pairs.get_column("l").to_list(), t.pairs.get_column("r").to_list(), strict=True))
    assert positives(with_test.test) <= pool
    # the end-to-end truth is every labelled positive, test's included
    n_truth = len(positives(with_test.train) | positives(with_test.valid) | positives(with_test.test))
    e = t.metrics["postprocess"]["threshold"]["end_to_end"]
    assert e["labelled_positive"] == pytest.approx(e["recall"] * n_truth)
    # the swapped benchmark keeps its test split, flipped like the others
    assert with_test.swapped().swapped().test.equals(with_test.test)  # type: ignore[union-attr]


def test_a_folder_with_test_csv_reports_test_with_valid_beside_it(tmp_path: Path) -> None:
    d = tmp_path / "bench"
    d.mkdir()
    left, right, train, valid = synthetic_tables()
    first = _even_records(valid)
    left.write_csv(d / "tableA.csv")
    right.write_csv(d / "tableB.csv")
    train.write_csv(d / "train.csv")
    valid.filter(first).write_csv(d / "valid.csv")
    valid.filter(~first).with_columns(pl.lit("b999").alias("rtable_id")).head(2).vstack(
        valid.filter(~first).tail(-2)).write_csv(d / "test.csv")
    (tmp_path / "params.yaml").write_text("er:\n  blocking: {k_left: 3, k_grid: [1, 3, 5]}\n"
                                          "  scorer: {max_iter: 50, folds: 3}\n"
                                          "  match: {postprocess: [threshold, hungarian]}\n")
    common = ["--params", str(tmp_path / "params.yaml"), "--data", str(d)]
    bad = run_stage("er_block", *common, "--out", str(tmp_path / "out/c.parquet"), "--metrics",
                    str(tmp_path / "out/block.json"), "--curve", str(tmp_path / "out/curve"))
    # an id that is in neither table: the file, column and rows, as for train and valid
    assert bad.returncode == 2 and "test.csv" in bad.stderr + bad.stdout and "rtable_id" in bad.stderr + bad.stdout
    assert not (tmp_path / "out/c.parquet").exists()
    valid.filter(~first).write_csv(d / "test.csv")
    b = run_stage("er_block", *common, "--out", str(tmp_path / "out/c.parquet"), "--metrics",
                  str(tmp_path / "out/block.json"), "--curve", str(tmp_path / "out/curve"))
    assert b.returncode == 0, b.stderr
    assert "recall test 1.0000" in _said(b)
    m = run_stage("er_match", *common, "--candidates", str(tmp_path / "out/c.parquet"), "--out",
                  str(tmp_path / "out/pairs.parquet"), "--metrics", str(tmp_path / "out/match.json"),
                  "--pr", str(tmp_path / "out/pr"))
    assert m.returncode == 0, m.stderr
    assert "scorer valid F1" in _said(m) and "scorer test F1" in _said(m)
    metrics = json.loads((tmp_path / "out/match.json").read_text())
    assert metrics["scorer"]["test"]["f1"] >= 0.9 and metrics["scorer"]["pr_split"] == "test"
    assert all("test" in e for e in metrics["postprocess"].values()) and "test" in metrics["unsupervised"]
    mdir = tmp_path / "metrics"
    mdir.mkdir()
    shutil.copy(tmp_path / "out/block.json", mdir / "real_er_block_bench.json")
    shutil.copy(tmp_path / "out/match.json", mdir / "real_er_match_bench.json")
    r = run_stage("er_report", "--benchmarks", "bench", "--metrics-dir", str(mdir), "--finetune-dir", str(tmp_path),
                  "--out", str(tmp_path / "er.md"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "er.md").read_text()
    assert "| method (test, labelled-pair protocol)" in text and "valid F1 |" in text
    block_metrics = json.loads((tmp_path / "out/block.json").read_text())
    assert f"**test {block_metrics['recall_test']:.4f}**" in text
    scorer_row = next(line for line in text.splitlines() if line.startswith("| feature scorer"))
    assert f"**{metrics['scorer']['test']['f1']:.3f}**" in scorer_row
    assert scorer_row.rstrip().endswith(f"| {metrics['scorer']['valid']['f1']:.3f} |")
    # --no-labels ignores test.csv too
    n = run_stage("er_match", *common, "--candidates", str(tmp_path / "out/c.parquet"), "--out",
                  str(tmp_path / "out/u.parquet"), "--metrics", str(tmp_path / "out/u.json"),
                  "--pr", str(tmp_path / "out/upr"), "--no-labels")
    assert n.returncode == 0, n.stderr
    assert "test" not in json.loads((tmp_path / "out/u.json").read_text())["unsupervised"]


def test_resolve_takes_a_test_split(halves: tuple[pl.DataFrame, ...]) -> None:
    import crossmatch

    left, right, train, valid, test = halves
    res = crossmatch.resolve(left=left, right=right, train=train, valid=valid, test=test, blocking=BLOCKING,
                             matching=MATCH)
    assert res.metrics["blocking"]["recall_test"] > 0.9 and res.metrics["matching"]["scorer"]["test"]["f1"] > 0.9


def test_pairs_shared_with_train_are_counted_and_said(halves: tuple[pl.DataFrame, ...], tmp_path: Path) -> None:
    left, right, train, valid, test = halves
    leaky = pl.concat([test, train.head(3), train.head(1)])  # three distinct train pairs, one of them twice
    bench = make_benchmark(left=left, right=right, train=train, valid=valid, test=leaky)
    assert bench.train_overlap() == {"test": 3} and _bench(halves, 3, 4).train_overlap() == {}
    cands = block(bench, config=BLOCKING).candidates
    assert match(bench, cands, config=MATCH).metrics["train_overlap"] == {"test": 3}
    d = tmp_path / "bench"
    d.mkdir()
    for name, frame in (("tableA", left), ("tableB", right), ("train", train), ("valid", valid), ("test", leaky)):
        frame.write_csv(d / f"{name}.csv")
    (tmp_path / "params.yaml").write_text("er:\n  blocking: {k_left: 3, k_grid: [1, 3, 5]}\n")
    b = run_stage("er_block", "--params", str(tmp_path / "params.yaml"), "--data", str(d), "--out",
                  str(tmp_path / "c.parquet"), "--metrics", str(tmp_path / "b.json"), "--curve", str(tmp_path / "c"))
    assert b.returncode == 0, b.stderr
    assert f"{d / 'test.csv'}: 3 pair(s) also in train.csv; their figures are not held out" in b.stderr
