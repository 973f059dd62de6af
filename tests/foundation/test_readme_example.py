"""The README's "Using the library" example runs as written (issue 15, part 5), and the facades check input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import crossmatch
from crossmatch.errors import InputError
from crossmatch.twosided.costs import is_stable
from crossmatch.twosided.instance import Instance

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    text = README.read_text()
    section = text.split("## Using the library", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section holds exactly one python example"
    return blocks[0]


def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {}
    exec(compile(_example(), "README.md:Using the library", "exec"), namespace)  # noqa: S102 - our own README
    res = namespace["res"]
    assert isinstance(res, crossmatch.Resolution)
    # The upper-cased, padded copies of the same names are found: most of the 10 true pairs, few false ones.
    truth = {(f"a{i}", f"b{9 - i}") for i in range(10)}
    got = set(zip(res.matches.get_column("left_id").to_list(), res.matches.get_column("right_id").to_list(), strict=True))
    assert len(got & truth) >= 8 and len(got - truth) <= 2
    partner = np.asarray(namespace["partner"])
    inst = Instance.from_ranks(np.asarray(namespace["ranks_a"]), np.asarray(namespace["ranks_b"]))
    assert sorted(partner.tolist()) == list(range(6)) and is_stable(inst, partner)
    assert "left_id" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["gs", "gs_best", "polymin", "dacc", "power_balance"])
def test_solve_methods_are_stable_and_accept_scores(method: str) -> None:
    rng = np.random.default_rng(1)
    sa, sb = rng.random((7, 7)), rng.random((7, 7))
    m = crossmatch.solve(scores_a=sa, scores_b=sb, method=method)  # type: ignore[arg-type]
    assert is_stable(Instance.from_scores(sa, sb), m)


def test_solve_rejects_bad_calls() -> None:
    ra = np.argsort(np.random.default_rng(0).random((4, 4)), axis=1) + 1
    with pytest.raises(ValueError, match="method"):
        crossmatch.solve(ranks_a=ra, ranks_b=ra, method="hungarian")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="once"):
        crossmatch.solve(ranks_a=ra, scores_a=ra, ranks_b=ra)
    with pytest.raises(ValueError, match="needs model"):
        crossmatch.solve(ranks_a=ra, ranks_b=ra, method="weavenet")
    with pytest.raises(InputError, match="permutations"):
        crossmatch.solve(ranks_a=np.ones((4, 4), dtype=int), ranks_b=ra)


def test_resolve_reports_bad_tables() -> None:
    left = pl.DataFrame({"id": ["x", "x"], "title": ["a", "b"]})
    right = pl.DataFrame({"id": ["y"], "title": ["a"]})
    with pytest.raises(InputError, match="duplicate ids"):
        crossmatch.resolve(left=left, right=right)


def test_solve_with_the_shipped_weavenet_is_stable() -> None:
    """The shipped model set loads from package data and, through the facade, always gives a stable matching."""
    from importlib import resources

    import torch

    from crossmatch.twosided.generators import generate
    from crossmatch.twosided.weavenet.checkpoints import load_models, model_for

    models = {}
    for name, keys in (("weavenet_wn16.pt", ["DD", "GG", "Lib", "UD", "UU"]),  # one model per distribution
                       ("weavenet_wn16_sizes.pt", ["GG@30", "Lib@30", "UD@20", "UD@30", "UU@30"])):  # the specialists
        ref = resources.files("crossmatch.twosided").joinpath(f"pretrained/{name}")
        with resources.as_file(ref) as path:
            assert path.stat().st_size <= 5_000_000, f"{name}: package data holds each checkpoint to 5 MB"
            found = load_models(torch.load(path, weights_only=True))
        assert sorted(found) == keys, name
        models.update(found)
    sa, sb = generate("UU", 20, 3, np.random.default_rng(5))
    for k in range(3):
        m = crossmatch.solve(scores_a=sa[k], scores_b=sb[k], method="weavenet", model=model_for(models, "UU"))
        assert is_stable(Instance.from_scores(sa[k], sb[k]), m)
