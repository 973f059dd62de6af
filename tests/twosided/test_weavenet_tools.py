"""The WeaveNet model-set tools in benchmarks/: merging runs (a specialist replaces an earlier one, facts and
curve included) and comparing checkpoints on a fresh selection set."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import weavenet_compare, weavenet_merge_sets
from crossmatch.checkpoint import load_checkpoint, save_checkpoint
from crossmatch.twosided.instance import Instance, ranks_from_satisfaction
from crossmatch.twosided.solvers import solve
from crossmatch.twosided.weavenet.checkpoints import checkpoint, load_models, members, model_set
from crossmatch.twosided.weavenet.model import WeaveNetConfig
from crossmatch.twosided.weavenet.runs import read_starts
from crossmatch.twosided.weavenet.train import TrainConfig, train

CFG = WeaveNetConfig(layers=2, dim=8, hidden=16, residual=False, variant="sym")


def _run(prefix: Path, models: dict[str, int], step: int, run_facts: dict[str, object] | None = None) -> None:
    """A run's three files, as stages.weavenet_train writes them; ``models`` maps a key to a training seed."""
    ckpts, metrics, rows = {}, {}, []
    for key, seed in models.items():
        res = train(CFG, TrainConfig(steps=2, train_n=(5,), val_n=(5,), val_size=2, val_every=2, seed=seed))
        ckpts[key] = checkpoint(CFG, res, {"seed": seed})
        metrics[f"{key}/seed"] = seed
        rows.append({"model": key, "step": str(step), "val_stable_rate": "0.5", "val_seq": str(seed)})
    save_checkpoint(model_set(ckpts), prefix.with_suffix(".pt"))
    Path(f"{prefix}_metrics.json").write_text(json.dumps({**metrics, **(run_facts or {})}))
    with open(f"{prefix}_curve.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_a_specialist_replaces_the_one_a_base_run_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(tmp_path / "base", {"UU": 1, "UU@30": 2}, step=7, run_facts={"val_binarize": "hungarian"})
    facts = json.loads((tmp_path / "base_metrics.json").read_text())
    (tmp_path / "base_metrics.json").write_text(json.dumps({**facts, "UU@30/only_round1": 1}))
    _run(tmp_path / "new", {"UU": 3}, step=9, run_facts={"val_binarize": "hungarian", "val_n": "30"})
    out = tmp_path / "set"
    monkeypatch.setattr(sys, "argv", ["merge", "--out", f"{out}.pt", "--metrics", f"{out}.json", "--curve-csv",
                                      f"{out}.csv", "--curve-png", f"{out}.png", "--runs", str(tmp_path / "base"),
                                      "--specialist", str(tmp_path / "new"), "30"])
    weavenet_merge_sets.main()
    merged = members(load_checkpoint(f"{out}.pt"))
    assert list(merged) == ["UU", "UU@30"]
    new = members(load_checkpoint(tmp_path / "new.pt"))["UU"]
    assert all(torch.equal(merged["UU@30"]["state_dict"][k], v) for k, v in new["state_dict"].items())
    facts = json.loads(Path(f"{out}.json").read_text())
    assert facts["UU@30/seed"] == 3 and facts["UU/seed"] == 1
    assert "UU@30/only_round1" not in facts  # the replaced specialist's facts are gone, not mixed in
    assert facts["val_binarize"] == "hungarian"  # every run has it, with one value
    assert "val_n" not in facts and facts["UU@30/val_n"] == "30"  # only the new run has it: not the set's
    with open(f"{out}.csv", newline="") as fh:
        rows = [(r["model"], r["step"]) for r in csv.DictReader(fh)]
    assert rows == [("UU", "7"), ("UU@30", "9")]  # the replaced specialist's curve is gone


def test_out_sizes_puts_the_specialists_in_a_second_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(tmp_path / "base", {"UU": 1, "DD": 4, "UD@20": 2}, step=7)
    _run(tmp_path / "new", {"UU": 3}, step=9)
    out = tmp_path / "set"
    monkeypatch.setattr(sys, "argv", ["merge", "--out", f"{out}.pt", "--out-sizes", f"{out}_sizes.pt", "--metrics",
                                      f"{out}.json", "--curve-csv", f"{out}.csv", "--curve-png", f"{out}.png",
                                      "--runs", str(tmp_path / "base"), "--specialist", str(tmp_path / "new"), "30"])
    weavenet_merge_sets.main()
    assert list(members(load_checkpoint(f"{out}.pt"))) == ["UU", "DD"]
    assert list(members(load_checkpoint(f"{out}_sizes.pt"))) == ["UD@20", "UU@30"]
    # the two files together are the set (the stages merge a list of files), one metrics file and curve for both
    assert sorted(read_starts([f"{out}.pt", f"{out}_sizes.pt"])) == ["DD", "UD@20", "UU", "UU@30"]
    facts = json.loads(Path(f"{out}.json").read_text())
    assert facts["UU@30/seed"] == 3 and facts["UD@20/seed"] == 2 and facts["DD/seed"] == 4
    # asked for a second file with no specialist to put in it: a clear stop, not a stale file left in place
    argv = ["merge", "--out", f"{out}2.pt", "--out-sizes", f"{out}2_sizes.pt", "--metrics", f"{out}2.json",
            "--curve-csv", f"{out}2.csv", "--curve-png", f"{out}2.png", "--runs", str(tmp_path / "new")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit, match="no size specialist"):
        weavenet_merge_sets.main()
    assert not Path(f"{out}2.pt").exists()
    _run(tmp_path / "only", {"UD@20": 2}, step=3)  # every model a specialist: nothing would be left for --out
    monkeypatch.setattr(sys, "argv", [*argv[:-1], str(tmp_path / "only")])
    with pytest.raises(SystemExit, match="nothing is left for --out"):
        weavenet_merge_sets.main()
    assert not Path(f"{out}2_sizes.pt").exists()


class _PowerBalance(torch.nn.Module):
    """A stand-in network whose logits are PowerBalance's own matching: stable, with its SEq exactly."""

    def forward(self, sa: torch.Tensor, sb: torch.Tensor) -> torch.Tensor:
        ra = ranks_from_satisfaction(sa.numpy()) - 1
        rb = ranks_from_satisfaction(sb.numpy()) - 1
        match = np.stack([solve(Instance(a.astype(np.int32), b.astype(np.int32)), "PowerBalance") for a, b in zip(ra, rb, strict=True)])
        return torch.nn.functional.one_hot(torch.as_tensor(match), sa.shape[2]).float()


def test_compare_scores_every_model_on_the_same_fresh_instances(tmp_path: Path) -> None:
    _run(tmp_path / "a", {"UU": 1}, step=2)
    untrained = load_models(load_checkpoint(tmp_path / "a.pt"))["UU"]
    rows = weavenet_compare.compare({"pb": _PowerBalance(), "net": untrained, "again": _PowerBalance()}, "UU", 6, 40, seed=5)
    assert [r["model"] for r in rows] == ["pb", "net", "again"]
    assert rows[0] == {**rows[2], "model": "pb"}  # same model, same instances, same figures
    pb = rows[0]
    assert pb["stable"] == 1.0 and pb["seq_ratio"] == 1.0 and pb["penalised_seq"] == pb["seq_stable"] == pb["ref_seq_same"]
    net = rows[1]  # a 2-step network is rarely stable: every unstable output costs N = 6 more
    assert float(net["stable"]) < 1.0 and float(net["penalised_seq"]) > float(pb["penalised_seq"])
