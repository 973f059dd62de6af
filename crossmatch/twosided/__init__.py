"""Two-sided (stable, fair) matching: generators, classical algorithms, WeaveNet (ALGORITHMS.md §3).

Modules, one job each:

* ``instance``      validated preferences, rank ↔ satisfaction (§3.1, §3.3)
* ``generators``    UU / DD / GG / UD / Lib instance generators (§3.2)
* ``costs``         SEq / Egal / Bal / Regret and blocking pairs, single and batched (§3.1, §3.7)
* ``gale_shapley``  deferred acceptance, both sides (§3.8.1)
* ``rotations``     rotation poset and BreakMarriage (§3.8.2)
* ``polymin``       min-egalitarian (min cut) and min-regret, PolyMin (§3.8.2)
* ``dacc``          DACC (§3.8.4)
* ``power_balance`` PowerBalance (§3.8.5)
* ``exact``         enumeration of all stable matchings for small N (§3.8.3)
* ``repair``        stability repair of a binarised network output
* ``solvers``       one entry point per algorithm name, batched evaluation helpers
* ``evaluation``    win/tie/loss, repaired outcomes, the external check against the paper (§3.7, §4.3)
* ``tables``        the Tables 2–3 protocol: every algorithm and WeaveNet per cell, summaries, markdown
* ``block_match``   one-to-one stable matching of products inside blocks (the ``match`` stage's protocol)
* ``sparse_market`` stable matching with incomplete lists over blocking candidates; dummy extension
* ``preferences``   ICPA / TF-IDF similarity and two-sided preferences for entity matching
* ``entity``        candidate pairs from blocks, precision / recall / F1
* ``weavenet``      the network, its losses, imitation targets, binarisation, training and model sets (§3.4–3.7)

Task-level entry point: :func:`crossmatch.solve` (``crossmatch/api.py``).
"""

from crossmatch.twosided.costs import Costs, blocking_pairs, costs, is_stable
from crossmatch.twosided.dacc import dacc
from crossmatch.twosided.exact import all_stable_matchings, exact_min
from crossmatch.twosided.gale_shapley import gale_shapley, gs_best
from crossmatch.twosided.generators import DISTRIBUTIONS, generate
from crossmatch.twosided.instance import Instance, ranks_from_satisfaction, satisfaction_from_ranks
from crossmatch.twosided.polymin import min_egalitarian, min_regret, polymin
from crossmatch.twosided.power_balance import power_balance
from crossmatch.twosided.repair import RepairResult, repair

__all__ = [
    "DISTRIBUTIONS",
    "Costs",
    "Instance",
    "RepairResult",
    "all_stable_matchings",
    "blocking_pairs",
    "costs",
    "dacc",
    "exact_min",
    "gale_shapley",
    "generate",
    "gs_best",
    "is_stable",
    "min_egalitarian",
    "min_regret",
    "polymin",
    "power_balance",
    "ranks_from_satisfaction",
    "repair",
    "satisfaction_from_ranks",
]
