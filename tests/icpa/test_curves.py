"""Per-epoch training curves (crossmatch.icpa.curves) and the training bar's ETA (crossmatch.icpa.runs)."""

from __future__ import annotations

import io
import math

import pytest
from rich.console import Console

from crossmatch.icpa import AlignConfig, ModelConfig, PairConfig, Schedule, Trainer, build_model
from crossmatch.icpa.curves import GENERIC, curve_csv, epoch_curve
from crossmatch.icpa.methods import phase1_config, single_config
from crossmatch.icpa.params import ICPAParams
from crossmatch.icpa.runs import eta_text, train_run
from tests.icpa.helpers import toy_graph

SMALL = ModelConfig(hidden=(32, 32, 16))
PAIRS = PairConfig(batch_size=64, negatives=3, global_negatives=1)
ALIGN = AlignConfig(swd_projections=16, sgwd_projections=4, sgwd_pairs=16, interp_length=64)


@pytest.fixture(scope="module")
def graph():
    return toy_graph(sizes=(40, 30, 16))


def _trainer(graph, phase):
    return Trainer(build_model(graph.schemas, len(graph.categories), SMALL, 0), graph, phase, pairs=PAIRS,
                   align=ALIGN, seed=0)


def test_curve_rows_are_the_epoch_means_the_trainer_reports(graph):
    tr = _trainer(graph, phase1_config(Schedule(phase1_epochs=3, phase2_epochs=0), align=True))
    history = tr.fit()
    curve = epoch_curve(tr.log)
    assert [r["epoch"] for r in curve] == [1, 2, 3]
    assert [r["step"] for r in curve] == [sum(h["steps"] for h in history[:i + 1]) for i in range(3)]
    for row, stats in zip(curve, history, strict=True):
        for key in ("total", "align", "gate", "loss_s0", "loss_s1", "loss_s2"):
            assert row[key] == pytest.approx(stats[key], rel=1e-12)
    assert list(curve[0])[:6] == ["epoch", "step", *GENERIC]
    assert any(r["align"] > 0 for r in curve)


def test_a_single_source_run_has_only_its_own_loss_column(graph):
    tr = _trainer(graph, single_config("soo", 1, Schedule(phase1_epochs=2, phase2_epochs=0)))
    tr.fit()
    curve = epoch_curve(tr.log)
    assert len(curve) == 2
    assert set(curve[0]) == {"epoch", "step", *GENERIC, "loss_s1"}
    assert curve[-1]["loss"] == pytest.approx(curve[-1]["loss_s1"])  # the mean over one source is that source
    assert curve[-1]["align"] == 0.0


def test_curve_csv_text():
    log = [{"epoch": e, "step": s, "loss_a": 1.0 / s, "loss_b": float("nan") if s == 1 else 2.0, "align": 0.0,
            "gate": 0.0, "total": 3.0} for e, s in ((0, 1), (0, 2), (1, 3))]
    curve = epoch_curve(log)
    assert curve[0]["loss_b"] == 2.0  # NaN (absent in step 1) left out of the mean
    assert curve[0]["loss"] == pytest.approx(((1.0) + (0.5 + 2.0) / 2) / 2)
    lines = curve_csv(curve).splitlines()
    assert lines[0] == "epoch,step,loss,total,align,gate,loss_a,loss_b"
    assert lines[2].startswith("2,3,") and len(lines) == 3
    assert curve_csv([]).startswith("epoch,step,loss,total")
    assert math.isnan(epoch_curve([{"epoch": 0, "step": 1, "loss_a": float("nan"), "align": 0.0, "gate": 0.0,
                                    "total": 0.0}])[0]["loss"])


def test_eta_text():
    assert eta_text(0.0, 0, 10) == "ETA -:--:--"
    assert eta_text(120.0, 2, 8) == "ETA 0:08:00"
    assert eta_text(3700.0, 1, 1) == "ETA 1:01:40"
    assert eta_text(5.0, 5, 0) == "ETA 0:00:00"


def test_training_bar_shows_an_eta_on_a_terminal_and_nothing_on_a_pipe(graph):
    from crossmatch.icpa.data import Data

    data = Data(graph, {}, {}, {})
    params = ICPAParams(sources=list(graph.names))
    phase = phase1_config(Schedule(phase1_epochs=2, phase2_epochs=0), align=False)
    shown = []
    for terminal in (True, False):
        buf = io.StringIO()
        console = Console(file=buf, force_terminal=terminal, width=200)
        model = build_model(graph.schemas, len(graph.categories), SMALL, 0)
        train_run("run", model, data, phase, params, None, tag="t", console=console)
        shown.append(buf.getvalue())
    assert "ETA" in shown[0]
    assert shown[1].startswith("run: 2 epochs") and shown[1].count("\n") == 1  # the summary line only
