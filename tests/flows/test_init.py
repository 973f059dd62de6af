"""`crossmatch init` on small hand-made files: what it writes, and its one-line errors (exit 2).

The end-to-end run of a generated pipeline is tests/flows/test_own_data.py (real data); these need none.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from crossmatch.errors import ConfigError, InputError
from crossmatch.io.inspect import feature_columns, inspect_inputs
from flows.init import init_pipeline

ROOT = Path(__file__).resolve().parents[2]


def user_files(base: Path, *, sources: tuple[str, ...] = ("shop_a", "shop_b"), items_extra: dict | None = None) -> Path:
    """One logs file with a source column, one items folder (a file per source), a two-category table."""
    data = base / "in"
    (data / "items").mkdir(parents=True)
    rows = [(s, f"u{u}", f"i{(u + k) % 6}", f"2024-01-{k + 1:02d}", 1.0) for s in sources for u in range(4)
            for k in range(3)]
    pl.DataFrame(rows, schema=["source", "user_id", "item_id", "timestamp", "weight"], orient="row") \
        .write_csv(data / "logs.csv")
    for s in sources:
        items = pl.DataFrame({"item_id": [f"i{k}" for k in range(6)], "category": ["tv", "audio"] * 3,
                              **(items_extra or {})})
        items.write_csv(data / "items" / f"{s}.csv")
    pl.DataFrame({"category": ["tv", "audio"]}).write_csv(data / "categories.csv")
    return data


def fake_repo(base: Path) -> Path:
    repo = base / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (repo / "dvc.yaml").write_text("stages: {}\n")
    (repo / ".dvc").mkdir()
    return repo


def test_writes_a_pipeline_with_the_data_sources(tmp_path: Path) -> None:
    data, repo = user_files(tmp_path, items_extra={"cat_brand": [1, 2, 1, 2, 1, 3], "num_price": [1.5] * 6,
                                                   "colour": ["red"] * 6}), fake_repo(tmp_path)
    res = init_pipeline(root=repo, logs=data / "logs.csv", items=data / "items", categories=data / "categories.csv",
                        out=Path("pipelines/shops"))
    assert res.next_command == "dvc repro pipelines/shops/dvc.yaml"
    assert res.summary.sources == ["shop_a", "shop_b"] and (res.left, res.right) == ("shop_a", "shop_b")
    assert res.summary.features == {"categorical": ["cat_brand"], "dense": ["num_price"], "unused": ["colour"]}
    assert any("['colour']" in n and "no ICPA feature" in n for n in res.notes)
    params = yaml.safe_load((repo / "pipelines/shops/params.yaml").read_text())
    assert list(params) == ["ingest", "edges", "icpa", "blocking", "match", "evaluate"]
    assert params["ingest"]["sources"] == params["icpa"]["sources"] == ["shop_a", "shop_b"]
    assert params["blocking"]["rescale"] is True  # two categories: similarities differ
    root_params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["icpa"]["schedule"] == root_params["icpa"]["schedule"]  # the rest is the project's
    text = (repo / "pipelines/shops/params.yaml").read_text()
    assert "# ICPA (issue 4)" in text  # comments kept
    stages = yaml.safe_load((repo / "pipelines/shops/dvc.yaml").read_text())["stages"]
    assert "generate" not in stages and stages["ingest"]["wdir"] == "../.."
    ingest_cmd = stages["ingest"]["cmd"]
    assert f"--logs {(data / 'logs.csv').resolve()}" in ingest_cmd  # a file outside the project: absolute
    assert "--truth-pairs" not in stages["blocking"]["cmd"] and "--truth none" in stages["match"]["cmd"]
    assert stages["pareto_finetune"]["foreach"] == "${icpa.sources}"
    assert "/data/icpa/checkpoints/" in (repo / "pipelines/shops/.gitignore").read_text()


def test_truth_dir_adds_the_truth_that_exists(tmp_path: Path) -> None:
    data, repo = user_files(tmp_path), fake_repo(tmp_path)
    truth = repo / "mytruth"  # inside the project: written relative to its root
    truth.mkdir()
    pl.DataFrame({"source_a": ["shop_a"], "item_a": ["i1"], "source_b": ["shop_b"], "item_b": ["i1"]}) \
        .write_parquet(truth / "product_matches.parquet")
    res = init_pipeline(root=repo, logs=data / "logs.csv", items=data / "items", categories=data / "categories.csv",
                        truth_dir=truth, left="shop_b", right="shop_a")
    assert res.truth == ["product_matches.parquet"]
    stages = yaml.safe_load((repo / "pipelines/mine/dvc.yaml").read_text())["stages"]
    assert "--truth-pairs mytruth/product_matches.parquet" in stages["blocking"]["cmd"]
    assert "mytruth/product_matches.parquet" in stages["match"]["deps"]
    assert "--truth none" in stages["train_align"]["cmd"]  # no concepts.parquet there
    params = yaml.safe_load((repo / "pipelines/mine/params.yaml").read_text())
    assert (params["match"]["left"], params["match"]["right"]) == ("shop_b", "shop_a")


@pytest.mark.parametrize(("case", "error", "words"), [
    ("no_weight", InputError, "missing required column(s) ['weight']"),
    ("one_source", ConfigError, "need two sources"),
    ("bad_left", ConfigError, "--left 'shop_z' is not a source"),
    ("logs_without_items", InputError, "have logs but no items"),
    ("items_without_logs", InputError, "have items but no logs"),
    ("outside", ConfigError, "must be inside the repository"),
    ("exists", ConfigError, "--force replaces it"),
])
def test_bad_inputs_are_named(tmp_path: Path, case: str, error: type[Exception], words: str) -> None:
    data, repo = user_files(tmp_path, sources=("shop_a",) if case == "one_source" else ("shop_a", "shop_b")), \
        fake_repo(tmp_path)
    kwargs: dict = {"left": "shop_z"} if case == "bad_left" else {}
    if case == "no_weight":
        pl.read_csv(data / "logs.csv").drop("weight").write_csv(data / "logs.csv")
    if case == "logs_without_items":
        (data / "items" / "shop_b.csv").unlink()
    if case == "items_without_logs":
        pl.read_csv(data / "items" / "shop_a.csv").write_csv(data / "items" / "shop_c.csv")
    if case == "outside":
        kwargs["out"] = tmp_path / "elsewhere"
    if case == "exists":
        init_pipeline(root=repo, logs=data / "logs.csv", items=data / "items", categories=data / "categories.csv")
    with pytest.raises(error, match=None) as exc:
        init_pipeline(root=repo, logs=data / "logs.csv", items=data / "items", categories=data / "categories.csv",
                      **kwargs)
    assert words in str(exc.value)
    if case != "exists":
        assert not (repo / "pipelines").exists()  # nothing written


def test_cli_exit_2_with_one_line(tmp_path: Path) -> None:
    data, repo = user_files(tmp_path), fake_repo(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "init", "--logs", str(data / "nope.csv"), "--items",
                           str(data / "items"), "--categories", str(data / "categories.csv")], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "file not found" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "init", "--logs", str(data / "logs.csv"), "--items",
                           str(data / "items"), "--categories", str(data / "categories.csv")], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dvc repro pipelines/mine/dvc.yaml" in proc.stdout


def test_feature_columns_by_name() -> None:
    cols = ["item_id", "category", "title", "fine_category", "cat_x", "num_y", "brand", "source"]
    assert feature_columns(cols) == {"categorical": ["cat_x"], "dense": ["num_y"], "unused": ["brand"]}


def test_inspect_reads_sources_of_a_single_items_file(tmp_path: Path) -> None:
    data = user_files(tmp_path)
    both = pl.concat([pl.read_csv(f).with_columns(pl.lit(f.stem).alias("source")) for f in
                      sorted((data / "items").iterdir())])
    both.write_csv(data / "items.csv")
    s = inspect_inputs(logs=data / "logs.csv", items=data / "items.csv", categories=data / "categories.csv")
    assert s.sources == ["shop_a", "shop_b"] and s.n_categories == 2 and not s.has_title


def test_generated_params_take_a_dvc_exp_override_as_one_line(tmp_path: Path) -> None:
    """Written by DVC's own writer: `dvc exp run -S icpa.seeds=3` on it changes that line only."""
    from dvc.utils.hydra import apply_overrides

    data, repo = user_files(tmp_path), fake_repo(tmp_path)
    res = init_pipeline(root=repo, logs=data / "logs.csv", items=data / "items", categories=data / "categories.csv")
    path = repo / res.params
    before = path.read_text()
    apply_overrides(path, ["icpa.seeds=3"])
    changed = [a for a, b in zip(before.splitlines(), path.read_text().splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0].strip().startswith("seeds:")

