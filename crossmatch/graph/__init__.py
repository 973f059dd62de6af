"""Graph construction: co-occurrence edges and per-source graph tables."""

from crossmatch.graph.cooccurrence import cooccurrence_edges, cooccurrence_edges_loop
from crossmatch.graph.edges import (
    graph_stats,
    item_category_edges,
    split_holdout,
    split_train_valid_test,
    user_item_edges,
)

__all__ = [
    "cooccurrence_edges",
    "cooccurrence_edges_loop",
    "graph_stats",
    "item_category_edges",
    "split_holdout",
    "split_train_valid_test",
    "user_item_edges",
]
