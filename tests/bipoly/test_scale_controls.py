"""What keeps blocking fast at 25× the default world (issue 14, item 6): partitions capped in size, one time
budget over all ILP solves (reported when hit), progress callbacks for a bar with an ETA."""

from __future__ import annotations

import time

import numpy as np

from crossmatch.bipoly.grid import grid_points, grid_search, split_by_groups
from crossmatch.bipoly.ilp import IlpConfig, solve_ilp
from crossmatch.bipoly.ilp_runs import Job, ilp_parts, run_jobs
from crossmatch.bipoly.instance import Instance, Rewards
from crossmatch.bipoly.metrics import BlockingTruth
from crossmatch.bipoly.partition import cap_parts, capped_clusters


def _blocks(n_blocks: int, size: int, seed: int = 0) -> Instance:
    """``n_blocks`` disjoint dense ``size × size`` blocks (one connected component each)."""
    rng = np.random.default_rng(seed)
    h = np.zeros((n_blocks * size, n_blocks * size))
    for b in range(n_blocks):
        s = slice(b * size, (b + 1) * size)
        h[s, s] = np.round(rng.uniform(0.05, 1.0, (size, size)), 2)
    return Instance.from_dense(h)


def _whole(inst: Instance) -> list[tuple[np.ndarray, np.ndarray, Instance]]:
    return [(np.arange(inst.n_left), np.arange(inst.n_right), inst)]


def test_cap_keeps_components_that_fit_whole_and_bounds_every_part() -> None:
    inst = _blocks(5, 4)  # 5 components of 8 categories
    parts, info = cap_parts(_whole(inst), 20)
    assert info == {"split": 1, "dropped": 0, "n_parts": 3}  # packed 2 + 2 + 1 components, no pair lost
    assert all(p.n_left + p.n_right <= 20 for _, _, p in parts)
    assert sum(p.n_pairs for _, _, p in parts) == inst.n_pairs
    # components are independent, so the capped ILP has the whole ILP's objective
    rw = Rewards.tied(0.1, -0.1)
    whole = solve_ilp(inst, rw, IlpConfig(time_limit=60, mip_gap=0.0))
    pieces = [solve_ilp(p, rw, IlpConfig(time_limit=60, mip_gap=0.0)) for _, _, p in parts]
    assert abs(sum(m.objective for m in pieces) - whole.objective) < 1e-9
    # a part within the cap, or no cap, is left alone
    assert cap_parts(_whole(inst), None)[0][0][2] is inst
    assert cap_parts(_whole(inst), 40)[1]["split"] == 0


def test_a_component_above_the_cap_is_cut_at_its_weakest_pairs() -> None:
    h = np.array([[0.9, 0.1, 0.0], [0.0, 0.8, 0.1], [0.0, 0.0, 0.7]])  # a chain held by weak 0.1 links
    inst = Instance.from_dense(h)
    labels = capped_clusters(inst, 2)
    assert labels[0] == labels[3] and labels[1] == labels[4] and labels[2] == labels[5]
    assert len(set(labels.tolist())) == 3
    parts, info = cap_parts(_whole(inst), 2)
    assert info["dropped"] == 2 and all(p.n_left + p.n_right <= 2 for _, _, p in parts)


def test_budget_spent_returns_warm_starts_and_says_so() -> None:
    inst = _blocks(3, 4, seed=1)
    groups = (np.repeat(np.arange(3), 4), np.repeat(np.arange(3), 4))
    parts, whole, _ = ilp_parts(inst, groups, None)
    assert len(parts) == 3 and not whole and len(split_by_groups(inst, *groups)) == 3
    job = Job("ilp_bipoly", Rewards.tied(0.1, -0.1), IlpConfig(time_limit=30, mip_gap=0.0), parts, whole)
    ticks: list[tuple[int, int]] = []
    done, stats = run_jobs([job], executor=None, deadline=None, on_progress=lambda d, t: ticks.append((d, t)))
    assert stats == {"n_solves": 3, "n_budget_limited": 0, "n_budget_cut": 0} and done[0].status == "Optimal"
    assert ticks == [(1, 3), (2, 3), (3, 3)]
    spent, stats = run_jobs([job], executor=None, deadline=time.time() - 1.0)
    assert stats == {"n_solves": 3, "n_budget_limited": 3, "n_budget_cut": 3}
    assert "Time limit reached" in spent[0].status and spent[0].objective <= done[0].objective + 1e-9


def test_grid_search_reports_progress_and_keeps_its_order() -> None:
    inst = _blocks(2, 3)
    sizes = np.ones(inst.n_left, dtype=np.int64)
    truth = BlockingTruth(sizes, sizes.copy(), inst.n_left, inst.n_right, np.arange(2), np.array([0, 3]),
                          np.array([0, 3]), 2)
    points = grid_points([-1.0, 0.0], [-1.0, 0.0])
    ticks: list[tuple[int, int]] = []
    rows = grid_search(["bipoly_s", "bipoly_c"], inst, truth, points, on_progress=lambda d, t: ticks.append((d, t)))
    assert ticks[-1] == (8, 8) and len(ticks) == 8
    assert [r.method for r in rows] == ["bipoly_s"] * 4 + ["bipoly_c"] * 4
    assert rows == grid_search(["bipoly_s", "bipoly_c"], inst, truth, points)
