"""`crossmatch exps`: the comparison of `dvc exp show --json` records keeps the changed params and the
headline metrics, one column per experiment (issue 14 §3)."""

from __future__ import annotations

import pytest
from rich.console import Console

from crossmatch.errors import CrossmatchError
from crossmatch.experiments import cell, compare, experiments_from_json


def _data(rev: str, window: int, ndcg: float, extra: dict | None = None) -> dict:
    return {
        "rev": rev, "timestamp": None,
        "params": {
            "params.yaml": {"data": {"edges": {"window": window, "decay": 0.5}, "icpa": {"sources": ["a", "b"]}}},
            "pipelines/real/params.yaml": {"data": {"er": {"k": 10}}},
        },
        "metrics": {
            "metrics/headline.json": {"data": {"icpa.ndcg@10.icpa": ndcg, "match.f1": 0.88, **(extra or {})}},
            "metrics/real_headline.json": {"data": {"match.f1": 0.31}},
        },
        "deps": {"crossmatch/icpa": {"hash": "abc", "size": 1, "nfiles": 3}}, "outs": {}, "meta": {},
    }


# the shape DVC 3.67 prints (captured from a two-stage repository with one `dvc exp run -S`)
RECORDS = [
    {"rev": "workspace", "name": None, "data": _data("workspace", 5, 0.46), "error": None, "experiments": None},
    {"rev": "d7b3ea084ff6d928f3cc141789fba29150f3b9c8", "name": "main",
     "data": _data("d7b3ea0", 3, 0.45), "error": None,
     "experiments": [{"revs": [{"rev": "68e69d369b832cb55cf5f827819cf2970ab55292", "name": "inane-snow",
                                "data": _data("68e69d3", 5, 0.46, {"new.key": 1}), "error": None,
                                "experiments": None}],
                      "executor": None, "name": "inane-snow"},
                     {"revs": [{"rev": "1111111111", "name": "broken", "data": {}, "error": {"msg": "stage failed"},
                                "experiments": None}], "executor": None, "name": "broken"},
                     {"revs": [{"rev": "2222222222", "name": "later", "data": _data("2222222", 7, 0.0),
                                "error": None, "experiments": None}], "name": "later",
                      "executor": {"state": "queued", "name": "dvc-task", "local": {"pid": None}}}]},
]


def test_rows_in_dvc_order_with_labels():
    exps = experiments_from_json(RECORDS)
    assert [e.label for e in exps] == ["workspace", "main (d7b3ea0)", "inane-snow", "broken", "later (queued)"]
    assert exps[1].params["edges.window"] == 3
    assert exps[1].params["pipelines/real/params.yaml:er.k"] == 10  # another file's keys carry its path
    assert exps[1].params["icpa.sources"] == "a, b"  # a list is one value
    assert exps[3].error == "stage failed"


def test_only_changed_params_and_the_headline_file():
    comp = compare(experiments_from_json(RECORDS[:1] + [{**RECORDS[1], "experiments": RECORDS[1]["experiments"][:2]}]),
                   metric_files=["metrics/headline.json"])
    assert comp.columns == ["workspace", "main (d7b3ea0)", "inane-snow"]
    assert comp.params == [("edges.window", [5, 3, 5])]
    assert comp.unchanged_params == 3
    [(path, rows)] = comp.metrics
    assert path == "metrics/headline.json"
    assert dict(rows) == {"icpa.ndcg@10.icpa": [0.46, 0.45, 0.46], "match.f1": [0.88, 0.88, 0.88],
                          "new.key": [None, None, 1]}
    assert comp.errors == [("broken", "stage failed")]
    changed = compare(experiments_from_json(RECORDS[:1] + [{**RECORDS[1], "experiments": RECORDS[1]["experiments"][:2]}]),
                      metric_files=["metrics/headline.json"],
                      only_changed_metrics=True)
    assert [k for k, _ in changed.metrics[0][1]] == ["icpa.ndcg@10.icpa", "new.key"]
    every = compare(experiments_from_json(RECORDS))
    assert [f for f, _ in every.metrics] == ["metrics/headline.json", "metrics/real_headline.json"]


def test_errors_are_short():
    absent = compare(experiments_from_json(RECORDS), metric_files=["metrics/nope.json"])
    assert absent.metrics == [] and absent.missing_files == ["metrics/nope.json"]
    with pytest.raises(CrossmatchError, match="no experiments"):
        compare([])
    with pytest.raises(CrossmatchError, match="list of records"):
        experiments_from_json({"rev": "workspace"})  # type: ignore[arg-type]


def test_cells():
    assert [cell(v) for v in (None, True, 0.123456, 7, "bipoly_c")] == ["-", "true", "0.1235", "7", "bipoly_c"]


def test_the_headline_of_this_repository_fits_a_screen():
    """25 headline keys and a few experiments: at most 120 characters wide, at most ~35 lines."""
    import json
    from pathlib import Path

    from flows.cli import _render_comparison

    headline = json.loads((Path(__file__).parents[2] / "metrics/headline.json").read_text())
    assert len(headline) <= 25
    def data(top_k: int) -> dict:
        return {"params": {"params.yaml": {"data": {"blocking": {"top_k": top_k}, "x": 1}}},
                "metrics": {"metrics/headline.json": {"data": headline}}}

    # a 4-value sweep queued from one commit, as `dvc exp show -n 1` lists it (DVC names experiments by two words)
    recs = [{"rev": "workspace", "name": None, "data": data(10), "error": None, "experiments": None},
            {"rev": "0" * 40, "name": "main", "data": data(10), "error": None,
             "experiments": [{"name": f"dorsal-ibex{i}", "executor": None,
                              "revs": [{"rev": f"{i}" * 40, "name": f"dorsal-ibex{i}", "data": data(10 * i),
                                        "error": None, "experiments": None}]} for i in range(1, 5)]}]
    comp = compare(experiments_from_json(recs), metric_files=["metrics/headline.json"])
    console = Console(width=400, record=True)
    console.print(_render_comparison(comp, "default"))
    lines = console.export_text().rstrip().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 120
    assert len(lines) <= 40
    assert any("blocking.top_k" in line and "40" in line for line in lines)
    assert "workspace" not in lines[2] and "main (0000000)" in lines[2]  # a clean workspace: no column of its own
    assert not any(line.strip().startswith("x ") for line in lines)
