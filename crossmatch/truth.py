"""Labelled product pairs between two sources, oriented left → right: the one reading that blocking and
matching share (they used to orient the truth table each in its own way).

The truth table (``data/truth/product_matches.parquet`` or a user's) holds ``item_a`` / ``item_b`` and, when it
covers more than two sources, ``source_a`` / ``source_b``; a pair may be listed in either direction. An optional
``split`` column (``train`` / ``valid``) travels with the pairs for the tuning protocol.
"""

from __future__ import annotations

import polars as pl

from crossmatch.errors import InputError

__all__ = ["oriented_truth", "oriented_pair_set"]


def oriented_truth(truth: pl.DataFrame, left: str, right: str, *, file: str | None = None,
                   allow_empty: bool = False) -> pl.DataFrame:
    """True pairs as ``item_a`` = the ``left`` source's item, ``item_b`` = the ``right`` source's item (their
    dtype kept), with ``split`` when the truth has one.

    Without ``source_a`` / ``source_b`` columns the pairs are taken as already oriented left → right.

    Raises:
        InputError: ``item_a`` / ``item_b`` missing, only one of ``source_a`` / ``source_b`` present, or (unless
            ``allow_empty``) no pair joins the two sources.
    """
    missing = [c for c in ("item_a", "item_b") if c not in truth.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; found {truth.columns}", file=file)
    sources = [c for c in ("source_a", "source_b") if c in truth.columns]
    if len(sources) == 1:
        other = "source_b" if sources[0] == "source_a" else "source_a"
        raise InputError(f"column '{sources[0]}' without '{other}': give both or neither", file=file)
    extra = ["split"] if "split" in truth.columns else []
    if not sources:
        out = truth.select("item_a", "item_b", *extra)
    else:
        fwd = truth.filter((pl.col("source_a") == left) & (pl.col("source_b") == right)).select("item_a", "item_b", *extra)
        bwd = truth.filter((pl.col("source_a") == right) & (pl.col("source_b") == left)).select(
            pl.col("item_b").alias("item_a"), pl.col("item_a").alias("item_b"), *extra)
        out = pl.concat([fwd, bwd])
    if out.height == 0 and not allow_empty:
        raise InputError(f"no true pair between sources '{left}' and '{right}'", file=file)
    return out


def oriented_pair_set(truth: pl.DataFrame, left: str, right: str, *, file: str | None = None) -> set[tuple[str, str]]:
    """The pairs of :func:`oriented_truth` as a set of (left item, right item); empty when none joins the two."""
    pairs = oriented_truth(truth, left, right, file=file, allow_empty=True)
    return {(str(a), str(b)) for a, b in pairs.select("item_a", "item_b").iter_rows()}
