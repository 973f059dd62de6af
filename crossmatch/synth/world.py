"""Generate the whole synthetic multi-source world (the project's embedded default data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import polars as pl

from crossmatch.synth.catalog import make_catalogs, make_concepts
from crossmatch.synth.config import WorldConfig
from crossmatch.synth.logs import make_logs

Progress = Callable[[str], None]


@dataclass
class World:
    """Everything :func:`generate_world` produces, as polars frames.

    Observable data (what a user of crossmatch would have): ``logs``, ``items``,
    ``categories``, ``taxonomy``. Hidden truth (for evaluation only): ``concepts``,
    ``fine_truth``, ``product_truth``.
    """

    logs: pl.DataFrame  # source, user_id, item_id, timestamp, weight, category
    items: dict[str, pl.DataFrame]  # per source: item_id, title, category, fine_category, cat_*, num_*
    categories: pl.DataFrame  # category (the shared coarse vocabulary)
    taxonomy: pl.DataFrame  # source, fine_category, category
    concepts: pl.DataFrame  # source, item_id, concept
    fine_truth: pl.DataFrame  # source_a, fine_a, source_b, fine_b, shared_concepts
    product_truth: pl.DataFrame  # source_a, item_a, source_b, item_b, concept


def generate_world(cfg: WorldConfig, progress: Progress | None = None) -> World:
    """Generate a deterministic multi-source world from ``cfg`` (same seed, same bytes).

    Implements the data protocol of the foundation issue: m sources over K shared coarse
    categories, per-source ids, features and titles, hidden concepts, sessions with one
    sparse source, per-source fine taxonomies whose correspondence is a planted BiPoly
    matching (ALGORITHMS.md §1.1), and product-match truth.
    """
    say = progress or (lambda _msg: None)
    rng = np.random.default_rng(cfg.seed)
    say("concepts")
    concepts = make_concepts(cfg, rng)
    say("catalogues")
    catalogs = make_catalogs(cfg, rng, concepts)
    popular_order = np.argsort(rng.random((cfg.n_categories, cfg.concepts_per_category)), axis=1)

    logs = []
    for s, cat in enumerate(catalogs):
        say(f"logs of {cat.name}")
        logs.append(make_logs(cfg, rng, concepts, cat, cfg.users_per_source[s], popular_order))

    categories = pl.DataFrame({"category": concepts.category_names})
    taxonomy = pl.concat(
        [
            pl.DataFrame(
                {
                    "source": [c.name] * len(c.fine_names),
                    "fine_category": c.fine_names,
                    "category": [concepts.category_names[int(k)] for k in c.fine_coarse],
                }
            )
            for c in catalogs
        ]
    )
    concept_truth = pl.concat(
        [
            pl.DataFrame({"source": [c.name] * len(c.item_ids), "item_id": c.item_ids, "concept": c.concept})
            for c in catalogs
        ]
    )
    fine_rows, product_rows = [], []
    for a, b in combinations(range(len(catalogs)), 2):
        ca, cb = catalogs[a], catalogs[b]
        fa, fb = ca.design_fine, cb.design_fine
        ok = (fa >= 0) & (fb >= 0)
        pairs = pl.DataFrame({"fa": fa[ok], "fb": fb[ok]}).group_by("fa", "fb").agg(pl.len().alias("shared"))
        pairs = pairs.sort("fa", "fb")
        fine_rows.append(
            pl.DataFrame(
                {
                    "source_a": ca.name,
                    "fine_a": [ca.fine_names[int(i)] for i in pairs["fa"]],
                    "source_b": cb.name,
                    "fine_b": [cb.fine_names[int(i)] for i in pairs["fb"]],
                    "shared_concepts": pairs["shared"].cast(pl.Int64),
                }
            )
        )
        both = np.flatnonzero((ca.item_of_concept >= 0) & (cb.item_of_concept >= 0))
        product_rows.append(
            pl.DataFrame(
                {
                    "source_a": ca.name,
                    "item_a": [ca.item_ids[int(i)] for i in ca.item_of_concept[both]],
                    "source_b": cb.name,
                    "item_b": [cb.item_ids[int(i)] for i in cb.item_of_concept[both]],
                    "concept": both.astype(np.int64),
                }
            )
        )
    empty_fine = pl.DataFrame(
        schema={"source_a": pl.String, "fine_a": pl.String, "source_b": pl.String, "fine_b": pl.String,
                "shared_concepts": pl.Int64}
    )
    empty_prod = pl.DataFrame(
        schema={"source_a": pl.String, "item_a": pl.String, "source_b": pl.String, "item_b": pl.String,
                "concept": pl.Int64}
    )
    return World(
        logs=pl.concat(logs),
        items={c.name: c.frame for c in catalogs},
        categories=categories,
        taxonomy=taxonomy,
        concepts=concept_truth,
        fine_truth=pl.concat(fine_rows) if fine_rows else empty_fine,
        product_truth=pl.concat(product_rows) if product_rows else empty_prod,
    )
