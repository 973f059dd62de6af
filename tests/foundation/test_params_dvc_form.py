"""The params files are written in the form DVC writes them back (issue 14, item 7).

`dvc exp run -S key=value` rewrites the whole params file through Hydra/OmegaConf and ruamel.yaml:
inline (flow) lists become block lists and `null` becomes an empty value. A params file in any other
form turns a one-value experiment into a diff of ~90 lines. These tests apply one override with DVC's
own function (the one `dvc exp run -S` calls) and require that exactly one line changes.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
from dvc.utils.hydra import apply_overrides

ROOT = Path(__file__).resolve().parents[2]

# One scalar per file whose new value cannot collide with the old one.
CASES = [
    ("params.yaml", "edges.window", "7"),
    ("params.large.yaml", "icpa.seeds", "3"),
    ("pipelines/real/params.yaml", "edges.window", "7"),
]


def _changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize(("name", "key", "value"), CASES)
def test_one_set_param_changes_one_line(tmp_path: Path, name: str, key: str, value: str) -> None:
    src = ROOT / name
    copy = tmp_path / "params.yaml"
    shutil.copyfile(src, copy)
    before = copy.read_text()
    apply_overrides(copy, [f"{key}={value}"])
    changed = _changed_lines(before, copy.read_text())
    # one line out, one line in: the value, with its comment kept
    assert len(changed) == 2, f"{name}: `dvc exp run -S {key}={value}` rewrote:\n" + "\n".join(changed)
    assert changed[0].startswith("-") and changed[1].startswith("+")
    assert value in changed[1]


@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_params_file_is_a_fixed_point_of_dvcs_writer(tmp_path: Path, name: str) -> None:
    copy = tmp_path / "params.yaml"
    shutil.copyfile(ROOT / name, copy)
    before = copy.read_text()
    key, value = next((k, v) for n, k, v in CASES if n == name)
    apply_overrides(copy, [f"{key}={value}"])
    restored = (ROOT / name).read_text()
    # setting it back gives the committed file byte for byte
    import yaml

    old = yaml.safe_load(before)
    node = old
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    apply_overrides(copy, [f"{key}={node[leaf]}"])
    assert copy.read_text() == restored
