"""BiPoly: robust bidirectional poly-matching of two sources' categories (ALGORITHMS.md §1).

Modules, one job each:

* :mod:`.instance` — the problem (candidate pairs with ĥ) and the rewards ω/η;
* :mod:`.matching` — matchings, the objective F (eq. 3) and the constraint families;
* :mod:`.similarity` — Jaccard / overlap / TF-IDF category similarity, rescaling, sparse top-k;
* :mod:`.ilp_model` — the robust ILP as arrays and its special cases (Poly, Bipartite, UFLP, quota);
  :mod:`.ilp_start` — its greedy warm starts; :mod:`.ilp` — solving it on HiGHS;
* :mod:`.greedy` — BiPoly.S, greedy Poly and UFLP; :mod:`.center` — BiPoly.C;
* :mod:`.baselines` — greedy Bipartite and k-core;
* :mod:`.metrics` — coverage / reduction / tradeoff, category precision / recall;
* :mod:`.scenario` — the item-to-category scenario; :mod:`.grid` — ω/η grid and partitions;
* :mod:`.metablocking` — token blocking, purging, filtering and BiPoly as meta-blocking;
* :mod:`.protocol` — tuning / reporting labels and budgeted meta-blocking with and without BiPoly;
* :mod:`.config` — typed settings of the protocol; :mod:`.tuning` — every method tuned on labels and scored;
* :mod:`.items` — the item columns blocking needs, from what a catalogue has; :mod:`.partition` — partitions
  capped in size; :mod:`.ilp_runs` — the exact ILP families per partition under one time budget;
* :mod:`.product_pairs` — meta-blocking runs and the output tables; :mod:`.figures` — its plots;
* :mod:`.blocking` — the whole protocol in one call, :func:`run_blocking`.
"""

from crossmatch.bipoly.baselines import bipartite_greedy, kcore, kcore_at_reduction
from crossmatch.bipoly.blocking import BlockingRun, run_blocking
from crossmatch.bipoly.center import bipoly_c
from crossmatch.bipoly.config import BlockingParams
from crossmatch.bipoly.greedy import bipoly_s, poly_greedy, uflp_greedy
from crossmatch.bipoly.ilp import IlpConfig, solve_ilp
from crossmatch.bipoly.instance import MAX_WEIGHT, Instance, Rewards, rescale_minmax
from crossmatch.bipoly.matching import Matching, is_bipartite, is_bipoly, is_poly, objective
from crossmatch.bipoly.metrics import BlockingScores, BlockingTruth, blocking_truth, pair_scores
from crossmatch.bipoly.similarity import Documents, category_documents, similarity

__all__ = [
    "MAX_WEIGHT", "BlockingParams", "BlockingRun", "BlockingScores", "BlockingTruth", "Documents", "IlpConfig",
    "Instance", "Matching", "Rewards", "bipartite_greedy", "bipoly_c", "bipoly_s", "blocking_truth", "category_documents", "is_bipartite", "is_bipoly",
    "is_poly", "kcore", "kcore_at_reduction", "objective", "pair_scores", "poly_greedy", "rescale_minmax",
    "run_blocking", "similarity", "solve_ilp", "uflp_greedy",
]
