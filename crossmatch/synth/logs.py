"""Users with latent tastes produce time-stamped sessions: the interaction logs.

A user likes a few coarse categories and, inside each, a position on the category's
concept axis. A session picks one liked category and wanders along the axis around the
user's taste; every event lands on the item of the nearest concept the source carries.
Events therefore co-occur with *nearby concepts* in every source, which is the
cross-source structure ICPA's alignment can exploit.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from crossmatch.synth.catalog import Concepts, SourceCatalog
from crossmatch.synth.config import WorldConfig

_KIND_WEIGHTS = np.array([1.0, 2.0, 4.0])  # view, add-to-cart, purchase
_KIND_PROBS = np.array([0.8, 0.15, 0.05])


def _within_group_cumsum(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``x`` restarted at every group boundary (groups are contiguous)."""
    cs = np.cumsum(x)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    before = cs[starts] - x[starts]
    return cs - np.repeat(before, lengths)


def nearest_item_lookup(cfg: WorldConfig, concepts: Concepts, catalog: SourceCatalog) -> np.ndarray:
    """For every concept, the item of the nearest concept on its category axis that the source carries."""
    per = cfg.concepts_per_category
    out = np.empty(cfg.n_concepts, dtype=np.int64)
    for k in range(cfg.n_categories):
        lo = k * per
        items = catalog.item_of_concept[lo : lo + per]
        ranks = np.flatnonzero(items >= 0)
        # nearest present rank; ties go to the lower rank
        pos = np.searchsorted(ranks, np.arange(per))
        left = ranks[np.clip(pos - 1, 0, len(ranks) - 1)]
        right = ranks[np.clip(pos, 0, len(ranks) - 1)]
        use_right = np.abs(right - np.arange(per)) < np.abs(np.arange(per) - left)
        out[lo : lo + per] = items[np.where(use_right, right, left)]
    return out


def make_logs(
    cfg: WorldConfig,
    rng: np.random.Generator,
    concepts: Concepts,
    catalog: SourceCatalog,
    n_users: int,
    popular_order: np.ndarray,
) -> pl.DataFrame:
    """Interaction rows ``source, user_id, item_id, timestamp, weight, category`` for one source.

    ``popular_order`` is ``(n_categories, per_category)``: concept ranks by world-wide popularity,
    shared by all sources so that best-sellers are the same products everywhere.
    """
    k_cat, per = cfg.n_categories, cfg.concepts_per_category
    n_fav = min(cfg.favourite_categories, k_cat)

    fav = np.argsort(rng.random((n_users, k_cat)), axis=1)[:, :n_fav]
    fav_w = rng.gamma(1.0, size=(n_users, n_fav))
    fav_w /= fav_w.sum(axis=1, keepdims=True)
    taste = rng.random((n_users, n_fav))

    n_sess = 1 + rng.poisson(cfg.sessions_per_user - 1.0, size=n_users)
    sess_user = np.repeat(np.arange(n_users), n_sess)
    slot = (np.cumsum(fav_w[sess_user], axis=1) < rng.random(len(sess_user))[:, None]).sum(axis=1)
    slot = np.minimum(slot, n_fav - 1)
    sess_cat = fav[sess_user, slot]
    sess_taste = taste[sess_user, slot]

    n_ev = 1 + rng.poisson(cfg.events_per_session - 1.0, size=len(sess_user))
    ev_sess = np.repeat(np.arange(len(sess_user)), n_ev)
    walk = _within_group_cumsum(rng.normal(0.0, cfg.session_drift, size=len(ev_sess)), n_ev)
    pos = sess_taste[ev_sess] + walk + rng.normal(0.0, cfg.taste_spread, size=len(ev_sess))
    pos = np.clip(pos, 0.0, np.nextafter(1.0, 0.0))
    rank = (pos * per).astype(np.int64)
    cat = sess_cat[ev_sess]
    popular = rng.random(len(ev_sess)) < cfg.popular_rate
    if popular.any():
        z = np.minimum(rng.zipf(1.0 + cfg.zipf_exponent, size=int(popular.sum())) - 1, per - 1)
        rank[popular] = popular_order[cat[popular], z]
    concept = cat * per + rank
    item = nearest_item_lookup(cfg, concepts, catalog)[concept]

    # Time: users start in the first 30 % of the window; sessions spread over the rest.
    day = 86_400.0
    user_start = rng.random(n_users) * cfg.days * 0.3 * day
    gap_mean = cfg.days * 0.7 * day / max(cfg.sessions_per_user, 1.0)
    sess_start = user_start[sess_user] + _within_group_cumsum(rng.exponential(gap_mean, size=len(sess_user)), n_sess)
    ev_offset = _within_group_cumsum(rng.exponential(90.0, size=len(ev_sess)), n_ev)
    seconds = np.round(sess_start[ev_sess] + ev_offset).astype(np.int64)

    kind = rng.choice(3, size=len(ev_sess), p=_KIND_PROBS)
    width = max(6, len(str(n_users)))
    user_code = rng.permutation(n_users)[sess_user[ev_sess]]
    order = rng.permutation(len(ev_sess))  # raw logs arrive unordered; ingest sorts them

    item_ids = pl.Series("item_id", catalog.item_ids, dtype=pl.String)
    cat_names = pl.Series("category", concepts.category_names, dtype=pl.String)
    base = pl.lit(np.datetime64(cfg.start, "us")).cast(pl.Datetime("us", "UTC"))
    frame = pl.DataFrame(
        {
            "user_code": user_code[order],
            "item": item[order],
            "seconds": seconds[order],
            "weight": _KIND_WEIGHTS[kind[order]],
            "cat": cat[order],
        }
    )
    return frame.select(
        pl.lit(catalog.name).alias("source"),
        pl.format("{}-u{}", pl.lit(catalog.name), pl.col("user_code").cast(pl.String).str.zfill(width)).alias(
            "user_id"
        ),
        item_ids.gather(frame["item"]).alias("item_id"),
        (base + pl.duration(seconds=pl.col("seconds"))).alias("timestamp"),
        pl.col("weight"),
        cat_names.gather(frame["cat"]).alias("category"),
    )
