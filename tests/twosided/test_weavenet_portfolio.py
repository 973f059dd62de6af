"""The best-of-set portfolio (crossmatch.twosided.weavenet.portfolio): the choice rule and the kept outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmatch.twosided.generators import generate, split_rng
from crossmatch.twosided.tables import WN, WN_SET, TablesSpec, solve_cells
from crossmatch.twosided.weavenet.binarize import binarize
from crossmatch.twosided.weavenet.portfolio import best_of, keep_best, pick
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


class _Mix(torch.nn.Module):
    """Logits α·S_A + (1 − α)·S_Bᵀ: Hungarian on them is A-optimal at α = 1, B-optimal at 0, a compromise
    between — solvers whose outputs really differ, unlike untrained networks (whose outputs nearly coincide)."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, sa: torch.Tensor, sb: torch.Tensor) -> torch.Tensor:
        return self.alpha * sa + (1 - self.alpha) * sb.transpose(1, 2)


def test_best_of_keeps_each_instances_chosen_model_output() -> None:
    models = {f"m{i}": _Mix(a) for i, a in enumerate((1.0, 0.5, 0.0))}
    sa, sb = generate("UU", 5, 40, split_rng(3, "val", "UU", 5))
    match, chosen, names = best_of(models, sa, sb, torch.device("cpu"))  # type: ignore[arg-type]
    assert names == ["m0", "m1", "m2"] and match.shape == (40, 5)
    singles = [binarize(predict_logits(m, sa, sb, torch.device("cpu")), "hungarian")  # type: ignore[arg-type]
               for m in models.values()]
    outs = [outcome(sa, sb, s) for s in singles]
    for i in range(40):  # the kept row is the chosen model's own raw output, by the rule, brute force
        assert np.array_equal(match[i], singles[chosen[i]][i])
        stable = [k for k in range(3) if outs[k]["stable"][i]]
        if stable:
            assert chosen[i] == min(stable, key=lambda k: (outs[k]["seq"][i], k))
        else:
            assert chosen[i] == min(range(3), key=lambda k: (outs[k]["blocking"][i], k))
    assert len(set(chosen.tolist())) > 1 and np.any([o["stable"] for o in outs])  # the draw exercises the rule
    kept = outcome(sa, sb, match)["stable"]
    assert np.array_equal(kept, np.any([o["stable"] for o in outs], axis=0))  # stable wherever any model is
    same, same_chosen = keep_best(sa, sb, singles)
    assert np.array_equal(same, match) and np.array_equal(same_chosen, chosen)
    with pytest.raises(ValueError, match="at least one model"):
        best_of({}, sa, sb, torch.device("cpu"))
    with pytest.raises(ValueError, match="one row per instance"):
        keep_best(sa, sb, [singles[0][:3]])


def test_tables_portfolio_puts_the_cells_own_size_specialist_first() -> None:
    """With a size specialist UU@5 in the set, the N = 5 UU cell's own model is UU@5: its output is the WeaveNet
    row and index 0 of the portfolio (``own`` = chosen 0), the other two follow in the set's order."""
    models = {"UU": _Mix(1.0), "UU@5": _Mix(0.5), "Lib": _Mix(0.0)}
    spec = TablesSpec(distributions=["UU"], sizes=[5], instances=30, workers=1, chunk=30,
                      algorithms=["GS", "PowerBalance"], binarize="hungarian", portfolio=True)
    r = solve_cells(spec, models, torch.device("cpu"))[(5, "UU")]  # type: ignore[arg-type]
    sa, sb = generate("UU", 5, 30, split_rng(spec.seed, "test", "UU", 5))
    outs = {k: binarize(predict_logits(m, sa, sb, torch.device("cpu")), "hungarian")  # type: ignore[arg-type]
            for k, m in models.items()}
    assert not np.array_equal(outs["UU"], outs["UU@5"])  # the check below tells the two apart
    assert np.array_equal(r[f"{WN}/stable"], outcome(sa, sb, outs["UU@5"])["stable"])
    best, chosen = keep_best(sa, sb, [outs["UU@5"], outs["UU"], outs["Lib"]])
    o = outcome(sa, sb, best)
    assert np.array_equal(r[f"{WN_SET}/own"], chosen == 0) and np.array_equal(r[f"{WN_SET}/seq"], o["seq"])
    assert np.array_equal(r[f"{WN_SET}/stable"], o["stable"]) and 0 < (chosen == 0).sum() < 30
    # one model only (or portfolio off): no best-of-set entries
    one = solve_cells(spec, {"UU": models["UU"]}, torch.device("cpu"))[(5, "UU")]  # type: ignore[dict-item]
    assert not any(k.startswith(WN_SET) for k in one)
