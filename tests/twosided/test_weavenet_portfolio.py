"""The best-of-set portfolio (crossmatch.twosided.weavenet.portfolio): the choice rule and the kept outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmatch.twosided.generators import generate, split_rng
from crossmatch.twosided.weavenet.binarize import binarize
from crossmatch.twosided.weavenet.model import WeaveNet, WeaveNetConfig
from crossmatch.twosided.weavenet.portfolio import best_of, pick
from crossmatch.twosided.weavenet.train import outcome, predict_logits


def _o(stable: list[bool], seq: list[float], blocking: list[int]) -> dict[str, np.ndarray]:
    return {"stable": np.array(stable), "seq": np.array(seq, dtype=float), "blocking": np.array(blocking)}


def test_pick_prefers_stable_then_lowest_cost_then_fewest_blocking_pairs() -> None:
    a = _o([True, False, False, True, False, True], [5, 1, 0, 4, 0, 2], [0, 2, 3, 0, 2, 0])
    b = _o([True, True, False, True, False, False], [3, 9, 0, 4, 0, 1], [0, 0, 1, 0, 2, 1])
    # 0: both stable, b cheaper; 1: only b stable (a's lower cost does not count); 2: neither, b fewer blocking
    # pairs; 3: equal cost -> first; 4: equal blocking -> first; 5: only a stable although b is cheaper
    assert pick([a, b]).tolist() == [1, 1, 1, 0, 0, 0]
    assert pick([a]).tolist() == [0] * 6
    with pytest.raises(ValueError, match="at least one"):
        pick([])
    with pytest.raises(ValueError, match="same 6 instances"):
        pick([a, _o([True], [1], [0])])


def test_best_of_keeps_each_instances_chosen_model_output() -> None:
    torch.manual_seed(0)
    models = {f"m{i}": WeaveNet(WeaveNetConfig(layers=2, dim=8, hidden=16, residual=True, variant="sym")).eval()
              for i in range(3)}
    sa, sb = generate("UU", 5, 40, split_rng(3, "val", "UU", 5))
    match, chosen, names = best_of(models, sa, sb, torch.device("cpu"))
    assert names == ["m0", "m1", "m2"] and match.shape == (40, 5)
    singles = [binarize(predict_logits(m, sa, sb, torch.device("cpu")), "hungarian") for m in models.values()]
    outs = [outcome(sa, sb, s) for s in singles]
    for i in range(40):  # the kept row is the chosen model's own raw output, by the rule, brute force
        assert np.array_equal(match[i], singles[chosen[i]][i])
        stable = [k for k in range(3) if outs[k]["stable"][i]]
        if stable:
            assert chosen[i] == min(stable, key=lambda k: (outs[k]["seq"][i], k))
        else:
            assert chosen[i] == min(range(3), key=lambda k: (outs[k]["blocking"][i], k))
    kept = outcome(sa, sb, match)["stable"]
    assert np.array_equal(kept, np.any([o["stable"] for o in outs], axis=0))  # stable wherever any model is
    with pytest.raises(ValueError, match="at least one model"):
        best_of({}, sa, sb, torch.device("cpu"))
