"""Stages er_block / er_match: outputs, bad input, and the unsupervised path on real Walmart–Amazon."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.er_finetune import merge
from tests.conftest import ROOT, run_stage
from tests.er.helpers import synthetic_tables

PARAMS = """
er:
  blocking: {k_left: 3, k_grid: [1, 3, 5]}
  scorer: {max_iter: 50, folds: 3}
  match: {postprocess: [threshold, hungarian]}
  withheld_positives: {bench: 7, elsewhere: 3}
"""


def _folder(tmp: Path, labels: bool = True) -> Path:
    d = tmp / "bench"
    d.mkdir()
    left, right, train, valid = synthetic_tables()
    left.write_csv(d / "tableA.csv")
    right.write_csv(d / "tableB.csv")
    if labels:
        train.write_csv(d / "train.csv")
        valid.write_csv(d / "valid.csv")
    (tmp / "params.yaml").write_text(PARAMS)
    return d


def _run(tmp: Path, data: Path, *extra: str) -> tuple[object, object]:
    b = run_stage("er_block", "--params", str(tmp / "params.yaml"), "--data", str(data), "--out",
                  str(tmp / "out/c.parquet"), "--metrics", str(tmp / "out/block.json"), "--curve",
                  str(tmp / "out/curve"), *extra)
    m = run_stage("er_match", "--params", str(tmp / "params.yaml"), "--data", str(data), "--candidates",
                  str(tmp / "out/c.parquet"), "--out", str(tmp / "out/pairs.parquet"), "--metrics",
                  str(tmp / "out/match.json"), "--pr", str(tmp / "out/pr"), *extra)
    return b, m


def test_stages_write_candidates_pairs_metrics_and_plots(tmp_path: Path) -> None:
    data = _folder(tmp_path)
    b, m = _run(tmp_path, data)
    assert b.returncode == 0, b.stderr  # type: ignore[attr-defined]
    assert m.returncode == 0, m.stderr  # type: ignore[attr-defined]
    cands = pl.read_parquet(tmp_path / "out/c.parquet")
    assert {"left_id", "right_id", "similarity"} <= set(cands.columns)
    block = json.loads((tmp_path / "out/block.json").read_text())
    assert block["k"] in (1, 3, 5) and block["recall_valid"] >= 0.95
    assert block["proposer"] in ("left", "right") and set(block["proposers_tried"]) == {"left", "right"}
    assert pl.read_csv(tmp_path / "out/curve.csv")["proposer"].to_list() == [block["proposer"]] * 3
    pairs = pl.read_parquet(tmp_path / "out/pairs.parquet")
    assert {"left_id", "right_id", "probability", "decision", "in_threshold", "in_hungarian"} <= set(pairs.columns)
    metrics = json.loads((tmp_path / "out/match.json").read_text())
    assert metrics["mode"] == "supervised" and metrics["scorer"]["valid"]["f1"] >= 0.9
    assert metrics["postprocess"]["threshold"]["end_to_end_estimate"]["withheld_positives"] == 7  # by folder name
    for f in ("curve.csv", "curve.png", "pr.csv", "pr.png"):
        assert (tmp_path / "out" / f).stat().st_size > 0
    # er_report reads these metrics and, beside them, a fine-tune benchmark's file with its form and blend
    mdir = tmp_path / "metrics"
    mdir.mkdir()
    shutil.copy(tmp_path / "out/block.json", mdir / "real_er_block_bench.json")
    shutil.copy(tmp_path / "out/match.json", mdir / "real_er_match_bench.json")
    row = {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    runs = [{"benchmark": "bench", "epochs": [{"epoch": 1, "dev_f1": 0.4}, {"epoch": 2, "dev_f1": 0.6}],
             "train_seconds": 12.0, "config": {"form": "siamese", "seed": seed}, "finetuned_minilm": row,
             "feature_scorer": row, "ensemble_mean": row, "ensemble_weighted": {**row, "f1": f1},
             "thresholds": {"encoder_weight": 0.3},
             "feature_scorer_setup": {"token_vocab": 64, "features": metrics["scorer"]["features"]}}
            for seed, f1 in ((0, 0.625), (1, 0.575))]
    runs[0]["chosen_epoch"] = 2
    (tmp_path / "er_finetune_bench.json").write_text(json.dumps(merge(runs)))
    r = run_stage("er_report", "--benchmarks", "bench", "--metrics-dir", str(mdir), "--finetune-dir", str(tmp_path),
                  "--out", str(tmp_path / "er.md"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "er.md").read_text()
    side = "tableA" if block["proposer"] == "left" else "tableB"
    assert f"Blocking: {side} proposes (table" in text and f"k = {block['k']} (chosen on train" in text
    assert "fine-tuned MiniLM (seed 0, siamese form, 2 epochs, epoch 2 kept, 12 s)" in text
    assert "weighted mean, seed 0, encoder weight 0.3" in text and "0.625" in text
    assert "feature scorer as er_match builds it, in that run (token vocabulary 64)" in text
    assert "weighted mean, mean over seeds 0, 1 (F1 0.600 ± 0.035)" in text and "earlier feature set" not in text
    # a fine-tune file from before er_match's feature set changed says so (it is a benchmark, not a stage)
    for run in runs:
        run["feature_scorer_setup"]["features"] = metrics["scorer"]["features"] - 3
    (tmp_path / "er_finetune_bench.json").write_text(json.dumps(merge(runs)))
    r = run_stage("er_report", "--benchmarks", "bench", "--metrics-dir", str(mdir), "--finetune-dir", str(tmp_path),
                  "--out", str(tmp_path / "er.md"))
    assert r.returncode == 0, r.stderr
    n = metrics["scorer"]["features"]
    assert (f"(token vocabulary 64; {n - 3} features, where er_match now builds {n}: an earlier feature set)"
            in (tmp_path / "er.md").read_text())
    est = metrics["postprocess"]["threshold"]["end_to_end_estimate"]
    capped = ", capped: as many found as unlabelled" if est["capped"] else ""
    assert f"est. {est['f1']:.3f} ({est['f1_low']:.3f}–{est['f1_high']:.3f}{capped})" in text


def test_unlabelled_folder_runs_unsupervised(tmp_path: Path) -> None:
    data = _folder(tmp_path, labels=False)
    b, m = _run(tmp_path, data)
    assert b.returncode == 0 and m.returncode == 0, m.stderr  # type: ignore[attr-defined]
    metrics = json.loads((tmp_path / "out/match.json").read_text())
    assert metrics["mode"] == "unsupervised" and 40 <= metrics["output_pairs"] <= 100
    assert "end_to_end_estimate" not in metrics["unsupervised"]  # a withheld count for "bench", but no valid labels
    # no labelled pair: no recall, as JSON's null (json.dumps wrote NaN, which strict JSON readers refuse)
    block = json.loads((tmp_path / "out/block.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert block["recall_train"] is None and block["true_pairs_train"] == 0
    assert "recall" not in b.stderr  # type: ignore[attr-defined]


def test_too_few_labelled_positives_run_unsupervised_and_say_why(tmp_path: Path) -> None:
    data = _folder(tmp_path)
    train = pl.read_csv(data / "train.csv", infer_schema_length=0)
    pl.concat([train.filter(pl.col("label") == "1").head(2), train.filter(pl.col("label") == "0")]).write_csv(
        data / "train.csv")
    b, m = _run(tmp_path, data)
    assert b.returncode == 0 and m.returncode == 0, m.stderr  # type: ignore[attr-defined]
    metrics = json.loads((tmp_path / "out/match.json").read_text())
    assert metrics["mode"] == "unsupervised" and "2 positive" in metrics["mode_reason"]
    said = " ".join((m.stdout + m.stderr).split())  # type: ignore[attr-defined]
    assert "2 positive" in said and "unsupervised rule" in said and metrics["output_pairs"] > 0


@pytest.mark.parametrize(("breakage", "needle"), [
    (lambda d: (d / "tableB.csv").unlink(), "tableB.csv not found"),
    (lambda d: (d / "train.csv").write_text("ltable_id,rtable_id,label\na0,nope,1\n"), "column 'rtable_id'"),
    (lambda d: (d / "tableA.csv").write_bytes(b"\xff\xfe\x00garbage"), "tableA.csv"),
])
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(tmp_path: Path, breakage, needle: str) -> None:  # type: ignore[no-untyped-def]
    data = _folder(tmp_path)
    breakage(data)
    b, _ = _run(tmp_path, data)
    assert b.returncode == 2  # type: ignore[attr-defined]
    assert needle in b.stderr.replace("\n", " ") and "Traceback" not in b.stderr  # type: ignore[attr-defined]
    assert not (tmp_path / "out/c.parquet").exists()


def test_unknown_param_is_a_config_error(tmp_path: Path) -> None:
    data = _folder(tmp_path)
    (tmp_path / "params.yaml").write_text("er:\n  blocking: {k_left: 3, colour: red}\n")
    b, _ = _run(tmp_path, data)
    assert b.returncode == 2 and "colour" in b.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize(("value", "needle"), [
    ("[193]", "must be a mapping"), ("{bench: -1}", "bench must be an integer >= 0"),
    ("{bench: true}", "bench must be an integer >= 0"), ("{bench: many}", "bench must be an integer >= 0")])
def test_bad_withheld_positives_is_a_config_error(tmp_path: Path, value: str, needle: str) -> None:
    data = _folder(tmp_path)
    (tmp_path / "params.yaml").write_text(PARAMS.replace("{bench: 7, elsewhere: 3}", value))
    b, _ = _run(tmp_path, data)
    assert b.returncode == 2 and needle in b.stderr.replace("\n", " ")  # type: ignore[attr-defined]
    assert "Traceback" not in b.stderr  # type: ignore[attr-defined]


@pytest.mark.realdata
@pytest.mark.slow
def test_walmart_amazon_without_truth_gives_a_sensible_matching(tmp_path: Path, shared_data: Path) -> None:
    """Issue 12 §2: the unsupervised path on the real catalogues with every label removed."""
    data = tmp_path / "walmart_amazon"
    data.mkdir()
    for f in ("tableA.csv", "tableB.csv"):
        shutil.copy(shared_data / "walmart_amazon" / f, data / f)
    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "pipelines/real/params.yaml", tmp_path / "params.yaml")
    b, m = _run(tmp_path, data)
    assert b.returncode == 0 and m.returncode == 0, m.stderr  # type: ignore[attr-defined]
    metrics = json.loads((tmp_path / "out/match.json").read_text())
    assert metrics["mode"] == "unsupervised" and "end_to_end" not in metrics["unsupervised"]
    pairs = pl.read_parquet(tmp_path / "out/pairs.parquet").filter(pl.col("decision"))
    # a real share of the 2,554 Walmart items matched, nearly all to one partner (thresholded, not forced 1:1)
    assert 500 <= pairs.height <= 2554
    assert pairs.get_column("left_id").n_unique() >= 0.85 * pairs.height
    # evaluated afterwards against the labelled positives it never saw: far better than chance
    truth = pl.concat([pl.read_csv(shared_data / "walmart_amazon" / f"{s}.csv") for s in ("train", "valid")]) \
        .filter(pl.col("label") == 1).select(pl.col("ltable_id").cast(pl.Utf8), pl.col("rtable_id").cast(pl.Utf8))
    hits = pairs.join(truth, left_on=["left_id", "right_id"], right_on=["ltable_id", "rtable_id"], how="inner")
    assert hits.height / truth.height >= 0.6 and hits.height / pairs.height >= 0.35


def test_a_table_that_is_not_utf8_is_read_as_windows_1252(tmp_path: Path) -> None:
    """Catalogue exports are often Windows-1252 (™, é, smart quotes), or UTF-8 with a few such bytes pasted in:
    read them (valid UTF-8 as it is, header included), do not refuse them; a broken CSV is still refused."""
    from crossmatch.errors import InputError
    from stages._er import read_benchmark

    d = _folder(tmp_path)
    left = pl.read_csv(d / "tableA.csv", infer_schema_length=0)
    first, second = pl.int_range(pl.len()) == 0, pl.int_range(pl.len()) == 1
    left = left.with_columns(pl.when(first).then(pl.lit("Café ™ “deluxe”")).when(second).then(pl.lit("naïve"))
                             .otherwise(pl.col("title")).alias("title")).rename({"brand": "marque_é"})
    right = pl.read_csv(d / "tableB.csv", infer_schema_length=0).rename({"brand": "marque_é"})
    right = right.with_columns(pl.when(first).then(pl.lit("été STRAY")).otherwise(pl.col("title")).alias("title"))
    (d / "tableA.csv").write_bytes(left.write_csv().encode("cp1252"))
    # UTF-8 with one Windows-1252 byte pasted in
    (d / "tableB.csv").write_bytes(right.write_csv().encode("utf-8").replace(b"STRAY", "™".encode("cp1252")))
    bench = read_benchmark(d)
    assert bench.left.get_column("title").to_list()[:2] == ["café ™ “deluxe”", "naïve"]
    assert bench.right.get_column("title")[0] == "été ™"
    assert set(bench.attributes) == {"title", "marque_é", "price"} and bench.train is not None
    assert (bench.left.height, bench.right.height) == (left.height, right.height)
    (d / "tableB.csv").write_bytes(b"id,title\n1,a,b,c\n")
    with pytest.raises(InputError, match="not a readable CSV"):
        read_benchmark(d)


def test_finetune_reblend_pairs_stored_encoder_probabilities_with_er_match_s_scorer(tmp_path: Path) -> None:
    """``benchmarks.er_finetune --reblend``: a run's kept encoder probabilities are blended with the feature scorer
    the current params build, which is er_match's (its valid F1 equals the stage's), without fine-tuning again."""
    from benchmarks.er_finetune import probabilities_file
    from crossmatch.er.finetune import dev_split

    data = _folder(tmp_path)
    b, m = _run(tmp_path, data)
    assert b.returncode == 0 and m.returncode == 0, m.stderr  # type: ignore[attr-defined]
    stage = json.loads((tmp_path / "out/match.json").read_text())["scorer"]
    ty = pl.read_csv(data / "train.csv").get_column("label").to_numpy()
    vy = pl.read_csv(data / "valid.csv").get_column("label").to_numpy()
    dev = dev_split(ty, 0.1, np.random.default_rng(3))
    run0 = {"benchmark": "bench", "train_seconds": 1.0, "epochs": [{"epoch": 1, "dev_f1": 1.0}], "chosen_epoch": 1,
            "config": {"form": "siamese", "seed": 3, "epochs": 1}, "encoder": {"threshold": 0.5, "dev_fraction": 0.1}}
    (tmp_path / "run.json").write_text(json.dumps(run0))
    # an encoder that is always right, on the dev split and on valid
    np.savez_compressed(probabilities_file(tmp_path / "run.json"), dev=ty[dev].astype(float), valid=vy.astype(float))
    cmd = [sys.executable, "-m", "benchmarks.er_finetune", "--data", str(data), "--params", str(tmp_path / "params.yaml"),
           "--reblend", str(tmp_path / "run.json"), "--out", str(tmp_path / "new.json")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    new = json.loads((tmp_path / "new.json").read_text())
    assert new["feature_scorer"]["f1"] == pytest.approx(stage["valid"]["f1"])  # er_match's scorer, rebuilt
    assert new["feature_scorer_setup"]["features"] == stage["features"]
    assert new["finetuned_minilm"]["f1"] == 1.0 and new["thresholds"]["weighted_dev_f1"] == 1.0
    assert new["epochs"] == run0["epochs"] and new["train_seconds"] == 1.0  # the run's own facts kept
    assert probabilities_file(tmp_path / "new.json").read_bytes() == probabilities_file(tmp_path / "run.json").read_bytes()
    # probabilities of another split, or none kept: a one-line refusal, nothing written
    np.savez_compressed(probabilities_file(tmp_path / "run.json"), dev=ty[dev][:-1].astype(float), valid=vy.astype(float))
    (tmp_path / "new.json").unlink()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "do not fit this benchmark's split" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "new.json").exists()
    probabilities_file(tmp_path / "run.json").unlink()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "encoder probabilities beside it" in r.stderr and "Traceback" not in r.stderr
