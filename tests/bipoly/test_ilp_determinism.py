"""The BiPoly ILPs give the same result on every run (issue 14, part 4).

HiGHS is deterministic for a given build, options and input; the ILP runs it serially with a fixed
seed, and a deterministic node limit cuts a solve at the same node on every machine. The instances
have similarities on a 1/20 grid, so many optima tie and a different search path would show.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest

from crossmatch.bipoly.config import IlpParams
from crossmatch.bipoly.ilp import IlpConfig, IlpFamily, solve_ilp
from crossmatch.bipoly.instance import Instance, Rewards
from crossmatch.errors import ConfigError

FAMILIES: tuple[IlpFamily, ...] = ("bipoly", "poly", "bipartite", "uflp")


def _tied_instance(seed: int, m: int, n: int, dense: bool) -> Instance:
    """Similarities on a 1/20 grid; ``dense``: every pair a candidate (a model HiGHS must branch on)."""
    rng = np.random.default_rng(seed)
    h = np.round(rng.random((m, n)) * 20) / 20
    if dense:
        return Instance.from_dense(h, keep_zeros=True)
    h[rng.random((m, n)) > 0.6] = 0.0
    return Instance.from_dense(h)


def _solve(seed: int, m: int, n: int, family: IlpFamily, node_limit: int | None = None, warm_start: bool = True,
           dense: bool = False) -> dict[str, Any]:
    """Everything a solve decides (no timings), as plain values that cross a process boundary."""
    if dense:
        rw = Rewards.tied(0.1, 0.2)
    else:
        rw = Rewards(0.0, 0.0, -0.2, -0.2) if family == "uflp" else Rewards.tied(0.1, -0.1)
    cfg = IlpConfig(family=family, time_limit=300.0, node_limit=node_limit, warm_start=warm_start)
    res = solve_ilp(_tied_instance(seed, m, n, dense), rw, cfg)
    return {"pairs": sorted(res.pairs()), "objective": res.objective, "status": res.status,
            "proven_optimal": res.info["proven_optimal"], "nodes": res.info.get("nodes")}


def _in_a_fresh_process(*args: Any) -> dict[str, Any]:
    """:func:`_solve` in a new interpreter: HiGHS's scheduler and every process-wide state start anew."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
        return ex.submit(_solve, *args).result()


@pytest.mark.parametrize("family", FAMILIES)
def test_same_instance_twice_and_in_a_fresh_process_gives_identical_results(family: IlpFamily) -> None:
    first = _solve(11, 14, 18, family)
    assert first["status"] == "Optimal" and first["pairs"]
    assert _solve(11, 14, 18, family) == first
    assert _in_a_fresh_process(11, 14, 18, family) == first


def test_node_limit_cuts_every_run_at_the_same_incumbent() -> None:
    # no warm start: the node limit alone decides where the search stops; this model is not solved
    # at the root node, so one node cuts it
    cut = _solve(1, 24, 32, "bipoly", 1, False, True)
    assert cut["status"] == "Solution limit reached" and not cut["proven_optimal"] and cut["pairs"]
    assert cut["nodes"] == 1
    assert _in_a_fresh_process(1, 24, 32, "bipoly", 1, False, True) == cut


def test_a_node_limit_the_solve_does_not_reach_changes_nothing() -> None:
    full = _solve(11, 14, 18, "bipoly")
    assert full["status"] == "Optimal"
    assert _solve(11, 14, 18, "bipoly", 10**6) == full


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_node_limit_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(ConfigError, match="node_limit"):
        IlpConfig(node_limit=bad)


def test_blocking_params_check_the_node_limit() -> None:
    with pytest.raises(ConfigError, match="blocking.ilp.node_limit"):
        IlpParams(node_limit=0)
    assert IlpParams().node_limit is None


def test_a_solve_writes_nothing_to_stdout() -> None:
    """HiGHS prints a licence banner when a process creates its first instance, before ``output_flag`` can be set
    (it interleaved with ``crossmatch run``'s live view once per blocking worker): the ILP swallows it, and the
    process's own output before and after is intact."""
    import subprocess
    import sys

    code = ("import numpy as np\n"
            "from crossmatch.bipoly.ilp import IlpConfig, solve_ilp\n"
            "from crossmatch.bipoly.instance import Instance, Rewards\n"
            "print('before', flush=True)\n"
            "inst = Instance.from_dense(np.array([[0.9, 0.1], [0.2, 0.8]]))\n"
            "solve_ilp(inst, Rewards.tied(0.1, 0.2), IlpConfig(family='bipoly'))\n"
            "solve_ilp(inst, Rewards.tied(0.1, 0.2), IlpConfig(family='poly'))\n"
            "print('after')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "before\nafter\n"
    assert "HiGHS" not in res.stderr
