"""What the ICPA protocols run on: the multi-source graph, item ids, the validation / test events per source.

:class:`Data` is built by the caller (the stages read it from parquet); :meth:`Data.evaluator` gives the
issue-10 protocol's splits of one source, built once and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from crossmatch.icpa.comparison import Evaluator
from crossmatch.icpa.evaluate import leave_one_out_split, protocol_splits
from crossmatch.icpa.graph import MultiSourceGraph

if TYPE_CHECKING:
    from crossmatch.icpa.params import EvalParams


@dataclass
class Data:
    """The loaded world: ``graph`` over every source, ``item_ids`` in item-index order, per source the test
    (``heldout``) and validation events and the training edges, and ``signature`` (sizes, for fingerprints)."""

    graph: MultiSourceGraph
    item_ids: dict[str, list[str]]
    heldout: dict[str, pl.DataFrame]
    signature: dict[str, Any]
    valid: dict[str, pl.DataFrame] = field(default_factory=dict)
    user_item: dict[str, pl.DataFrame] = field(default_factory=dict)
    item_item: dict[str, pl.DataFrame] = field(default_factory=dict)
    _evaluators: dict[str, Evaluator] = field(default_factory=dict)

    def evaluator(self, source: str, cfg: EvalParams) -> Evaluator:
        """The protocol's splits of one source (issue 10; cached per source): validation, test and,
        with ``sampled_negatives``, the leave-one-out split of the XMarket papers."""
        if source not in self._evaluators:
            g = self.graph.sources[self.graph.index(source)]
            ui, va, te = self.user_item[source], self.valid[source], self.heldout[source]
            splits = protocol_splits(ui, va, te, g.user_item.n_rows, g.schema.n_items,
                                     exclude_history=cfg.exclude_history)
            n_users = splits["test"].history.shape[0]
            sampled = ((*leave_one_out_split(ui, va, te, n_users, g.schema.n_items), cfg.sampled_negatives)
                       if cfg.sampled_negatives else None)
            self._evaluators[source] = Evaluator(splits, cfg.ks, exclude_history=cfg.exclude_history,
                                                 frequency_weighting=cfg.user_weighting == "frequency",
                                                 sampled=sampled)
        return self._evaluators[source]
