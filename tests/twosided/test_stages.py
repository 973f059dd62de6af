"""Stages weavenet_train, weavenet_eval and match on tiny settings (subprocess, like dvc runs them)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from crossmatch.twosided.evaluation import PUBLISHED_COSTS, published_costs
from tests.conftest import run_stage

TRAIN = """
weavenet_train:
  init_checkpoint: {init}
  layers: 2
  dim: 8
  hidden: 16
  residual: true
  variant: asym
  target: fsm
  steps: {steps}
  train_n: [5, 6]
  distributions: [UU, Lib]
  val_n: 6
  val_size: 3
  val_every: 3
  lr: 1.0e-3
  device: auto
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("wn")
    (d / "params.yaml").write_text(TRAIN.format(init="null", steps=6))
    proc = run_stage("weavenet_train", "--params", str(d / "params.yaml"), "--out", str(d / "weavenet.pt"),
                     "--metrics", str(d / "train.json"), "--plot-csv", str(d / "curve.csv"), "--plot-png", str(d / "curve.png"))
    assert proc.returncode == 0, proc.stderr
    return d


def test_weavenet_train_outputs(tiny_model: Path) -> None:
    ckpt = torch.load(tiny_model / "weavenet.pt", weights_only=True)
    assert ckpt["config"]["layers"] == 2 and ckpt["train"]["steps_done"] == 6
    metrics = json.loads((tiny_model / "train.json").read_text())
    assert metrics["steps_done"] == 6 and 0.0 <= metrics["best_val_stable_rate"] <= 1.0
    assert all(not isinstance(v, (list, dict)) for v in metrics.values())  # flat, for dvc metrics diff
    curve = pl.read_csv(tiny_model / "curve.csv")
    assert curve.get_column("step").to_list() == [0, 3, 6]
    assert (tiny_model / "curve.png").stat().st_size > 1000


def test_weavenet_train_from_checkpoint_and_shape_mismatch(tiny_model: Path, tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(TRAIN.format(init=tiny_model / "weavenet.pt", steps=0))
    proc = run_stage("weavenet_train", "--params", str(p), "--out", str(tmp_path / "w.pt"), "--metrics", str(tmp_path / "m.json"),
                     "--plot-csv", str(tmp_path / "c.csv"), "--plot-png", str(tmp_path / "c.png"))
    assert proc.returncode == 0, proc.stderr
    first, again = (torch.load(f, weights_only=True) for f in (tiny_model / "weavenet.pt", tmp_path / "w.pt"))
    a, b = first["state_dict"], again["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # steps: 0 re-emits the validated checkpoint
    # ... with the facts of the run that trained it (deterministic; the eval report describes that run)
    assert again["train"]["steps_done"] == 6 and again["train"]["seconds"] == first["train"]["seconds"]
    assert "did not improve" in again["train"]["kept"]
    p.write_text(TRAIN.format(init=tiny_model / "weavenet.pt", steps=0).replace("dim: 8", "dim: 4"))
    code, err = _run_in_process("weavenet_train", ["--params", str(p), "--out", str(tmp_path / "w2.pt")])
    assert code == 2 and "model shape" in err and not (tmp_path / "w2.pt").exists()


def test_weavenet_eval_tiny(tiny_model: Path, tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("weavenet_eval: {distributions: [UU, UD], sizes: [5], instances: 6, workers: 2, chunk: 4}\n")
    out = [str(tmp_path / n) for n in ("m.json", "r.md", "c.csv")]
    proc = run_stage("weavenet_eval", "--params", str(p), "--model", str(tiny_model / "weavenet.pt"),
                     "--paper-table", "none", "--metrics", out[0], "--report", out[1], "--cells-csv", out[2])
    assert proc.returncode == 0, proc.stderr
    m = json.loads(Path(out[0]).read_text())
    for alg in ("GS", "PolyMin", "DACC", "PowerBalance"):
        assert m[f"SEq/N5/UU/{alg}/stable_rate"] == 1.0 and m[f"Bal/N5/UD/{alg}/stable_rate"] == 1.0
    w, t, lo = (m[f"SEq/N5/UU/WeaveNet/{k}"] for k in ("win", "tie", "loss_unstable"))
    assert w + t + lo == pytest.approx(1.0)
    assert m["check_cells"] == 0
    report = Path(out[1]).read_text()
    assert "Table 2 layout" in report and "Table 3 layout" in report and "Skipped" in report
    assert "| PowerBalance |" in report and "| WeaveNet |" in report


def test_weavenet_eval_external_check(tmp_path: Path) -> None:
    """By default the check reads the published means shipped in the package: no ../shared needed."""
    p = tmp_path / "p.yaml"
    p.write_text("weavenet_eval: {distributions: [UU], sizes: [20], instances: 40, workers: 1, algorithms: [GS, PowerBalance]}\n")
    proc = run_stage("weavenet_eval", "--params", str(p), "--model", "none",
                     "--metrics", str(tmp_path / "m.json"), "--report", str(tmp_path / "r.md"), "--cells-csv", str(tmp_path / "c.csv"))
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["check_cells"] == 4  # SEq and Bal for GS and PowerBalance at N = 20, UU
    assert "0-based" in (tmp_path / "r.md").read_text()


def test_weavenet_eval_missing_paper_table_is_an_input_error(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("weavenet_eval: {distributions: [UU], sizes: [5], instances: 2, workers: 1, algorithms: [GS]}\n")
    proc = run_stage("weavenet_eval", "--params", str(p), "--model", "none", "--paper-table", str(tmp_path / "absent.csv"),
                     "--metrics", str(tmp_path / "m.json"), "--report", str(tmp_path / "r.md"), "--cells-csv", str(tmp_path / "c.csv"))
    assert proc.returncode == 2 and "paper table not found" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.json").exists()


def test_packaged_paper_table_is_the_shared_one(shared_data: Path) -> None:
    shipped = resources.files("crossmatch.twosided").joinpath(PUBLISHED_COSTS).read_bytes()
    assert shipped == (shared_data / "weavenet_paper/paper_tables_seq_bal.csv").read_bytes()
    rows = published_costs()
    assert len(rows) == 110 and set(rows[0]) == {"metric", "method", "N", "distribution", "mean_cost", "source"}


def _blocks_from_truth(tiny_data, path: Path) -> None:
    """Blocks as the blocking stage would write them: the true alpha–beta fine-category pairs."""
    f = pl.read_parquet(tiny_data.truth / "fine_categories.parquet").filter(
        (pl.col("source_a") == "alpha") & (pl.col("source_b") == "beta"))
    f.select(pl.int_range(pl.len()).alias("block_id"), pl.col("fine_a").alias("left"),
             pl.col("fine_b").alias("right")).write_parquet(path)


@pytest.mark.parametrize("solver", ["power_balance", "weavenet"])
def test_match_tiny(tiny_data, tiny_model: Path, tmp_path: Path, solver: str) -> None:
    _blocks_from_truth(tiny_data, tmp_path / "blocks.parquet")
    # ICPA embeddings for alpha and beta (random here; the stage only needs the contract).
    emb = tmp_path / "emb"
    emb.mkdir()
    rng = np.random.default_rng(0)
    for s in ("alpha", "beta"):
        items = pl.read_parquet(tiny_data.ingested / s / "items.parquet")
        items = items.head(items.height // 2)
        v = rng.normal(size=(items.height, 32)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        items.select("item_idx", "item_id").with_columns(pl.Series("embedding", v.tolist())).write_parquet(emb / f"{s}.parquet")
    p = tmp_path / "p.yaml"
    p.write_text(f"match: {{solver: {solver}, preferences: standardized, similarity: blend}}\n")
    proc = run_stage("match", "--params", str(p), "--items", str(tiny_data.ingested), "--blocks", str(tmp_path / "blocks.parquet"),
                     "--candidates", str(tmp_path / "absent.parquet"),
                     "--embeddings", str(emb), "--truth", str(tiny_data.truth / "product_matches.parquet"),
                     "--model", str(tiny_model / "weavenet.pt"), "--out", str(tmp_path / "pairs.parquet"), "--metrics", str(tmp_path / "m.json"))
    assert proc.returncode == 0, proc.stderr
    pairs = pl.read_parquet(tmp_path / "pairs.parquet")
    assert pairs.height > 0
    assert pairs.get_column("left_item_id").is_unique().all() and pairs.get_column("right_item_id").is_unique().all()
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["pairs"] == pairs.height and 0 < m["pairs_scored_icpa"] < m["candidate_pairs"]
    assert m["candidates_from"] == "blocks"
    assert 0.0 <= m["precision"] <= 1.0 and m["recall"] <= m["recall_ceiling_blocking"] + 1e-12
    if solver in ("power_balance", "weavenet"):
        assert m["markets_dense"] > 0


def test_match_tfidf_quality_and_errors(tiny_data, tmp_path: Path) -> None:
    _blocks_from_truth(tiny_data, tmp_path / "blocks.parquet")
    p = tmp_path / "p.yaml"
    p.write_text("match: {solver: gs}\n")
    args = ["--params", str(p), "--items", str(tiny_data.ingested), "--embeddings", "none",
            "--candidates", str(tmp_path / "candidates.parquet"),
            "--truth", str(tiny_data.truth / "product_matches.parquet"), "--out", str(tmp_path / "pairs.parquet"),
            "--metrics", str(tmp_path / "m.json")]
    # Candidate pairs as the blocking stage writes them: every item pair of every block.
    ing = tiny_data.ingested
    il, ir = pl.read_parquet(ing / "alpha/items.parquet"), pl.read_parquet(ing / "beta/items.parquet")
    pl.read_parquet(tmp_path / "blocks.parquet").join(
        il.select(pl.col("fine_category").alias("left"), pl.col("item_id").alias("left_item_id")), on="left").join(
        ir.select(pl.col("fine_category").alias("right"), pl.col("item_id").alias("right_item_id")), on="right").select(
        "left_item_id", "right_item_id", "block_id").write_parquet(tmp_path / "candidates.parquet")
    proc = run_stage("match", *args, "--blocks", str(tmp_path / "absent.parquet"))
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["similarity"] == "tfidf" and m["candidates_from"] == "candidate_pairs"
    assert m["f1"] > 0.5  # titles of true matches share tokens
    (tmp_path / "candidates.parquet").unlink()
    code, err = _run_in_process("match", [*args, "--blocks", str(tmp_path / "absent.parquet")])
    assert code == 2 and "run the blocking stage first" in err
    p.write_text("match: {solver: hungarian}\n")
    code, err = _run_in_process("match", [*args, "--blocks", str(tmp_path / "blocks.parquet")])
    assert code == 2 and "match.solver" in err


def _run_in_process(stage: str, argv: list[str]) -> tuple[int, str]:
    """Run a stage's ``main`` through ``stages._common.run`` here (error paths need no fresh interpreter)."""
    import importlib
    import io
    import sys
    from contextlib import redirect_stderr

    from stages import _common

    module = importlib.import_module(f"stages.{stage}")
    buf = io.StringIO()
    old_argv = sys.argv
    sys.argv = [stage, *argv]
    try:
        with redirect_stderr(buf), pytest.raises(SystemExit) as exc:
            _common.console.file = buf
            _common.run(stage, module.main)
    finally:
        sys.argv = old_argv
        _common.console.file = None  # type: ignore[assignment]
    return int(exc.value.code), buf.getvalue()


def test_weavenet_train_per_distribution_imitation_set_and_eval(tmp_path: Path) -> None:
    """Issue 13: one imitation-trained model per distribution in one model set; the eval stage uses each
    distribution's own model and reports both binarisations and SEq over stable outputs vs PowerBalance."""
    p = tmp_path / "p.yaml"
    p.write_text(TRAIN.format(init="null", steps=4).replace("target: fsm", "target: fsm\n  objective: imitation\n"
                 "  per_distribution: true\n  variant: auto\n  val_binarize: hungarian").replace("  variant: asym\n", ""))
    out = [str(tmp_path / n) for n in ("set.pt", "m.json", "c.csv", "c.png")]
    proc = run_stage("weavenet_train", "--params", str(p), "--out", out[0], "--metrics", out[1], "--plot-csv", out[2],
                     "--plot-png", out[3])
    assert proc.returncode == 0, proc.stderr
    ckpt = torch.load(out[0], weights_only=True)
    assert ckpt["format"] == "weavenet-set" and sorted(ckpt["models"]) == ["Lib", "UU"]
    assert ckpt["models"]["UU"]["config"]["variant"] == "sym" and ckpt["models"]["Lib"]["config"]["variant"] == "asym"
    assert ckpt["models"]["UU"]["train"]["objective"] == "imitation"
    metrics = json.loads(Path(out[1]).read_text())
    assert metrics["UU/steps_done"] == 4 and "Lib/best_val_stable_rate" in metrics
    assert sorted(pl.read_csv(out[2]).get_column("model").unique().to_list()) == ["Lib", "UU"]
    e = tmp_path / "e.yaml"
    e.write_text("weavenet_eval: {distributions: [UU, Lib], sizes: [5], instances: 6, workers: 1, chunk: 6, binarize: hungarian,\n"
                 "  portfolio: true}\n")
    ev = [str(tmp_path / n) for n in ("em.json", "er.md", "ec.csv")]
    proc = run_stage("weavenet_eval", "--params", str(e), "--model", out[0], "--paper-table", "none",
                     "--metrics", ev[0], "--report", ev[1], "--cells-csv", ev[2])
    assert proc.returncode == 0, proc.stderr
    m = json.loads(Path(ev[0]).read_text())
    assert 0.0 <= m["WeaveNet/N5/Lib/argmax_stable_rate"] <= 1.0
    report = Path(ev[1]).read_text()
    assert "Lib: L=2" in report and "UU: L=2" in report and "Stable, other binarisation" in report
    for d in ("UU", "Lib"):  # the best of both models is stable at least wherever the cell's own model is
        assert m[f"WeaveNet best-of-set/N5/{d}/stable_rate"] >= m[f"WeaveNet/N5/{d}/stable_rate"]
        assert 0.0 <= m[f"WeaveNet best-of-set/N5/{d}/own_model_rate"] <= 1.0
        wtl = [m[f"SEq/N5/{d}/WeaveNet best-of-set/{k}"] for k in ("win", "tie", "loss_unstable")]
        assert sum(wtl) == pytest.approx(1.0) and wtl[2] >= 1.0 - m[f"WeaveNet best-of-set/N5/{d}/stable_rate"] - 1e-9
    assert "WeaveNet best-of-set: stable (%)" in report and "WeaveNet best-of-set: Win (%)" in report
    assert "not repaired" in report
    # A distribution the set has no model for is a clear input error, before any work.
    e.write_text("weavenet_eval: {distributions: [GG], sizes: [5], instances: 6, workers: 1}\n")
    code, err = _run_in_process("weavenet_eval", ["--params", str(e), "--model", out[0], "--paper-table", "none",
                                                  "--metrics", str(tmp_path / "x.json")])
    assert code == 2 and "no WeaveNet model for distribution 'GG'" in err and not (tmp_path / "x.json").exists()


def test_weavenet_train_keeps_size_specialists_at_their_size(tmp_path: Path) -> None:
    """A set with a ``UU@6`` specialist: the stage fine-tunes and validates it at N = 6 only and emits it again."""
    from crossmatch.twosided.weavenet.checkpoints import model_set

    p = tmp_path / "p.yaml"
    p.write_text(TRAIN.format(init="null", steps=2).replace("target: fsm", "target: fsm\n  per_distribution: true"))
    out = [str(tmp_path / n) for n in ("set.pt", "m.json", "c.csv", "c.png")]
    assert run_stage("weavenet_train", "--params", str(p), "--out", out[0], "--metrics", out[1], "--plot-csv", out[2],
                     "--plot-png", out[3]).returncode == 0
    base = torch.load(out[0], weights_only=True)["models"]
    # two files, as shipped: the per-distribution models and the size specialists, merged by the stage
    torch.save(model_set(base), tmp_path / "init.pt")
    torch.save(model_set({"UU@6": base["UU"]}), tmp_path / "init_sizes.pt")
    init = f"[{tmp_path / 'init.pt'}, {tmp_path / 'init_sizes.pt'}]"
    p.write_text(TRAIN.format(init=init, steps=2).replace("target: fsm", "target: fsm\n  per_distribution: true")
                 .replace("val_n: 6", "val_n: [5, 6]"))
    proc = run_stage("weavenet_train", "--params", str(p), "--out", out[0], "--metrics", out[1], "--plot-csv", out[2],
                     "--plot-png", out[3])
    assert proc.returncode == 0, proc.stderr
    models = torch.load(out[0], weights_only=True)["models"]
    assert sorted(models) == ["Lib", "UU", "UU@6"]
    m = json.loads(Path(out[1]).read_text())
    assert m["UU@6/train_n"] == "6" and m["UU/train_n"] == "5,6" and m["UU@6/steps_done"] == 2
    assert m["UU@6/val_n"] == "6" and m["UU/val_n"] == "5,6" and "val_n" not in m  # the specialist at 6 only
    assert m["UU@6/init_checkpoint"] == f"{tmp_path / 'init.pt'},{tmp_path / 'init_sizes.pt'}"  # both files named
    assert "UU@6" in pl.read_csv(out[2]).get_column("model").to_list()


def test_weavenet_train_old_objective_value_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(TRAIN.format(init="null", steps=1).replace("target: fsm", "objective: fsm"))
    code, err = _run_in_process("weavenet_train", ["--params", str(p), "--out", str(tmp_path / "w.pt")])
    assert code == 2 and "target: fsm" in err and not (tmp_path / "w.pt").exists()
