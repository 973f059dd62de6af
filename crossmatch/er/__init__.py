"""Entity resolution between two record tables (issue 12): blocking, pair scoring, post-processing.

Public facade (keyword-only): :func:`make_benchmark` validates two tables and optional labelled
pairs; :func:`block` proposes candidate pairs; :func:`match` scores them and decides.
"""

from crossmatch.er.blocking import BlockingConfig
from crossmatch.er.candidates import BlockingResult, block
from crossmatch.er.pipeline import MatchConfig, MatchResult, match
from crossmatch.er.scorer import ScorerConfig
from crossmatch.er.tables import Benchmark, make_benchmark

__all__ = ["Benchmark", "BlockingConfig", "BlockingResult", "MatchConfig", "MatchResult", "ScorerConfig",
           "block", "make_benchmark", "match"]
