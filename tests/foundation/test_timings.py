"""Wall times leave the git-tracked metrics: ``write_json`` splits them into ``timings/`` (issue 14, part 3)."""

from __future__ import annotations

import json
from pathlib import Path

from stages._common import is_timing_key, split_timings, timings_path, write_json


def test_timing_keys() -> None:
    for key in ("seconds", "train_seconds", "alpha.icpa.seconds", "WeaveNet/N20/seconds"):
        assert is_timing_key(key), key
    for key in ("time_limit", "seconds_per_epoch", "n_pairs", "alpha.icpa.ndcg@10", "secondsx"):
        assert not is_timing_key(key), key


def test_split_keeps_the_shape_of_both_halves() -> None:
    obj = {"f1": 0.5, "seconds": {"total": 3.2, "grid": 1.0}, "alpha.soo.seconds": 1.5, "alpha.soo.ndcg@10": 0.3,
           "methods": {"ilp": {"tradeoff": 0.9, "seconds": 0.1, "time_limit": 10}, "greedy": {"tradeoff": 0.8}},
           "train": {"steps": 6, "train_seconds": 2.0}, "curve": [{"seconds": 1.0}]}
    kept, timings = split_timings(obj)
    assert kept == {"f1": 0.5, "alpha.soo.ndcg@10": 0.3, "methods": {"ilp": {"tradeoff": 0.9, "time_limit": 10},
                    "greedy": {"tradeoff": 0.8}}, "train": {"steps": 6}, "curve": [{"seconds": 1.0}]}
    assert timings == {"seconds": {"total": 3.2, "grid": 1.0}, "alpha.soo.seconds": 1.5,
                       "methods": {"ilp": {"seconds": 0.1}}, "train": {"train_seconds": 2.0}}
    assert obj["seconds"]["total"] == 3.2  # the caller's dict is left as it was (stages print from it)


def test_timings_path() -> None:
    assert timings_path("metrics/blocking.json") == Path("timings/blocking.json")
    assert timings_path(Path("/repo/metrics/real_icpa_xmarket.json")) == Path("/repo/timings/real_icpa_xmarket.json")
    assert timings_path("/tmp/x/m.json") == Path("/tmp/x/timings/m.json")


def test_write_json_splits_and_rewrites(tmp_path: Path) -> None:
    target = tmp_path / "metrics" / "stage.json"
    target.parent.mkdir()
    write_json(target, {"f1": 0.5, "seconds": 12.3})
    assert json.loads(target.read_text()) == {"f1": 0.5}
    times = tmp_path / "timings" / "stage.json"
    assert json.loads(times.read_text()) == {"seconds": 12.3}
    before = target.read_bytes()
    write_json(target, {"seconds": 45.6, "f1": 0.5})  # a re-run: same metrics, other time
    assert target.read_bytes() == before and json.loads(times.read_text()) == {"seconds": 45.6}
    write_json(target, {"f1": 0.5})  # no timings this time: no stale file describing an earlier run
    assert not times.exists()
    write_json(target, {"f1": 0.5, "seconds": 1.0}, split=False)
    assert json.loads(target.read_text()) == {"f1": 0.5, "seconds": 1.0} and not times.exists()
