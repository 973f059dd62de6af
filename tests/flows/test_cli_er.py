"""``crossmatch er``: the two entity-resolution stages in one command, matches.csv and a summary; a bad folder
or params file ends with the stage's own one line and its exit code, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from tests.er.helpers import synthetic_tables

EXE = Path(sys.executable).parent / "crossmatch"
PARAMS = """
er:
  blocking: {k_left: 3, k_grid: [1, 3, 5]}
  scorer: {max_iter: 50, folds: 3}
  match: {postprocess: [threshold, hungarian]}
"""


def _cli(args: list[str], cwd: Path) -> tuple[int, str]:
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.run([str(EXE), "er", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def _folder(tmp: Path) -> Path:
    d = tmp / "shop"
    d.mkdir()
    left, right, train, valid = synthetic_tables()
    left.write_csv(d / "tableA.csv")
    right.write_csv(d / "tableB.csv")
    train.write_csv(d / "train.csv")
    valid.write_csv(d / "valid.csv")
    (tmp / "params.yaml").write_text(PARAMS)
    return d


def test_one_command_writes_the_matches_of_the_chosen_output_and_a_summary(tmp_path: Path) -> None:
    _folder(tmp_path)
    code, out = _cli(["shop", "--params", "params.yaml", "--out", "res"], tmp_path)
    assert code == 0, out
    res = tmp_path / "res"
    match = json.loads((res / "match.json").read_text())
    pairs = pl.read_parquet(res / "pairs.parquet")
    matches = pl.read_csv(res / "matches.csv", schema_overrides={"left_id": pl.Utf8, "right_id": pl.Utf8})
    assert matches.columns == ["left_id", "right_id", "probability"]
    assert matches.height == match["output_pairs"] == int(pairs.get_column("decision").sum()) > 0
    chosen = pairs.filter(pl.col("decision")).select("left_id", "right_id").sort("left_id", "right_id")
    assert matches.select("left_id", "right_id").sort("left_id", "right_id").equals(chosen)
    assert matches.get_column("probability").is_sorted(descending=True)
    # the synthetic duplicates are easy: most true pairs are found
    assert match["scorer"]["valid"]["f1"] > 0.8
    ref = match["reference"]["valid"]  # the nothing-tuned floor, beside the scorer
    for text in ("er_block on shop", "er_match on shop", "blocking recall, valid", "pair scorer, valid",
                 "reference classifier, valid", f"P {ref['precision']:.3f}  R {ref['recall']:.3f}",
                 f"{match['output']}: {match['output_pairs']} matched pairs", "res/matches.csv"):
        assert text in out, (text, out)
    assert (res / "recall.png").exists() and (res / "pr.png").exists()


def test_without_labels_the_unsupervised_rule_decides_and_no_recall_is_shown(tmp_path: Path) -> None:
    _folder(tmp_path)
    code, out = _cli(["shop", "--params", "params.yaml", "--out", "res", "--no-labels"], tmp_path)
    assert code == 0, out
    assert "unsupervised" in out and "blocking recall" not in out and "nan" not in out
    assert "reference classifier" not in out  # it needs train labels
    assert pl.read_csv(tmp_path / "res/matches.csv").height > 0


def test_a_bad_folder_or_params_file_is_the_stage_s_one_line_and_exit_2(tmp_path: Path) -> None:
    _folder(tmp_path)
    for args, needle in ((["missing", "--params", "params.yaml"], "missing: benchmark folder not found"),
                         (["shop", "--params", "nope.yaml"], "params file not found: nope.yaml")):
        code, out = _cli([*args, "--out", "res"], tmp_path)
        assert code == 2, out
        errors = [ln for ln in out.splitlines() if "error:" in ln]
        assert len(errors) == 1 and needle in errors[0], out
        assert "Traceback" not in out
        assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())
