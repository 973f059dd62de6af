"""Hostile params (issue 15): a value of the wrong type or out of range ends the stage with exit 2 and a
short message naming the param key, before any input is read and without a traceback or an output file.

The stages run in a temporary folder (``cwd``), so even a stage that wrongly accepted its params would
write its default outputs there, never into the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crossmatch.bipoly.config import BlockingParams
from crossmatch.errors import ConfigError
from crossmatch.io.rules import IngestConfig as IngestParams
from crossmatch.params import check_fields, check_value
from crossmatch.twosided.weavenet.plan import WeaveNetRunConfig
from stages._common import params_as
from stages.edges import EdgesParams
from stages.evaluate import EvaluateParams
from stages.generate import GenerateParams
from stages.match import MatchParams
from stages.weavenet_eval import WeaveNetEvalParams
from tests.conftest import ROOT, run_stage

# (stage, its params section, the key the message must name)
CASES = [
    ("generate", {"preset": "tiny", "seed": "zero"}, "generate.seed"),
    ("generate", {"preset": "tiny", "seed": -1}, "generate.seed"),
    ("generate", {"preset": "tiny", "seed": 1.5}, "generate.seed"),
    ("generate", {"preset": "tiny", "overrides": {"users_per_source": -5}}, "generate.overrides.users_per_source"),
    ("generate", {"preset": "tiny", "overrides": {"users_per_source": ["many", 2, 3]}},
     "generate.overrides.users_per_source[0]"),
    ("generate", {"preset": "tiny", "overrides": {"days": "long"}}, "generate.overrides.days"),
    ("generate", {"preset": "tiny", "overrides": [1, 2]}, "generate.overrides"),
    # the message lists every known field (over 500 characters): the stage's error line is capped
    ("generate", {"preset": "tiny", "overrides": {"nope": 1}}, "generate: unknown override(s) ['nope']"),
    ("blocking", {"ilp": {"time_limit": "abc"}}, "blocking.ilp.time_limit"),
    ("blocking", {"ilp": {"time_limit": 0}}, "blocking.ilp.time_limit"),
    ("blocking", {"workers": 0}, "blocking.workers"),
    ("blocking", {"workers": "two"}, "blocking.workers"),
    ("blocking", {"top_k": "all"}, "blocking.top_k"),
    ("match", {"min_similarity": "x"}, "match.min_similarity"),
    ("match", {"dense_max": "big"}, "match.dense_max"),
    ("edges", {"holdout_fraction": "abc"}, "edges.holdout_fraction"),
    ("edges", {"holdout_fraction": 1.0}, "edges.holdout_fraction"),
    ("edges", {"window": True}, "edges.window"),
    ("edges", {"window": 0}, "edges.window"),
    ("edges", {"valid_fraction": "x"}, "edges.valid_fraction"),
    ("edges", {"min_per_user": -1}, "edges.min_per_user"),
    ("ingest", {"sources": "alpha"}, "ingest.sources"),
    ("ingest", {"sources": []}, "ingest.sources"),
    ("ingest", {"sources": ["alpha", "../../escaped"]}, "ingest.sources"),
    ("ingest", {"sources": ["alpha", "alpha"]}, "ingest.sources"),
    ("ingest", {"min_year": "1970s"}, "ingest.min_year"),
    ("ingest", {"min_year": 2100}, "ingest.min_year"),
    ("ingest", {"max_id_length": 0}, "ingest.max_id_length"),
    ("ingest", {"max_weight": "inf"}, "ingest.max_weight"),
    ("ingest", {"allow_control_chars": "yes"}, "ingest.allow_control_chars"),
    ("ingest", {"duplicates": "keep"}, "ingest.duplicates"),
    ("evaluate", {"k": 0}, "evaluate.k"),
    ("evaluate", {"k": "ten"}, "evaluate.k"),
    ("evaluate", {"k": True}, "evaluate.k"),
    ("weavenet_eval", {"instances": "many"}, "weavenet_eval.instances"),
    ("weavenet_train", {"lr": "fast"}, "weavenet_train.lr"),
    ("weavenet_train", {"steps": [10]}, "weavenet_train.steps"),
]


@pytest.mark.parametrize("stage, section, key", CASES, ids=[f"{s}-{k}-{v!r}"[:60] for s, v, k in CASES])
def test_hostile_param_is_a_short_error_naming_the_key(stage: str, section: dict, key: str, tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({stage: section}))
    proc = run_stage(stage, "--params", "params.yaml", cwd=tmp_path)
    err = proc.stderr.strip()
    assert proc.returncode == 2, err[-2000:]
    assert key in err and len(err) <= 500 and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"], "a rejected run writes nothing"


def test_check_value_accepts_what_yaml_gives_for_valid_values() -> None:
    assert check_value(3, float, "k") == 3 and type(check_value(3, float, "k")) is int  # kept as written
    assert check_value("1e-4", float, "k") == 1e-4  # YAML 1.1 reads 1e-4 (no dot) as a string
    assert check_value(None, int | None, "k") is None
    values = [1, 2]
    assert check_value(values, tuple[int, ...], "k") is values
    assert check_value(["0.5", 1], list[float], "k") == [0.5, 1]
    assert check_value({"any": "thing"}, dict, "k") == {"any": "thing"}  # not a scalar type: not checked here


@pytest.mark.parametrize("value, hint, message", [
    (True, int, "k must be an integer, got True"),
    ("x", float | None, "k must be a number (or null), got 'x'"),
    (None, str, "k must be a string, got None"),
    (5, list[int], "k must be a list of integers, got 5"),
    ([1, "b"], list[int], "k[1] must be an integer, got 'b'"),
    ("x" * 10_000, int, "k must be an integer, got 'xxxxx"),
])
def test_check_value_names_the_key(value: object, hint: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_value(value, hint, "k")
    assert str(info.value).startswith(message) and len(str(info.value)) < 120


def test_check_fields_prefixes_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^match\.min_similarity must be a number"):
        check_fields(MatchParams, {"min_similarity": "x"}, "match")


@pytest.mark.parametrize("params_file", ["params.yaml", "pipelines/real/params.yaml"])
def test_committed_params_pass_the_checks(params_file: str) -> None:
    classes = {"generate": GenerateParams, "ingest": IngestParams, "edges": EdgesParams,
               "blocking": BlockingParams, "match": MatchParams,
               "evaluate": EvaluateParams, "weavenet_train": WeaveNetRunConfig, "weavenet_eval": WeaveNetEvalParams}
    data = yaml.safe_load((ROOT / params_file).read_text())
    checked = 0
    for name, section in data.items():
        cls = next((c for prefix, c in classes.items() if name == prefix or name.startswith(prefix + "_")), None)
        if cls is not None:
            params_as(cls, section, name)
            checked += 1
    assert checked >= 2
