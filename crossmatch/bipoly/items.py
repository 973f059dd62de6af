"""The item columns blocking works from, built from whatever a catalogue has (issue 14, item 5).

The documented item schema makes ``title`` and ``fine_category`` optional; only ``item_id`` and the coarse
``category`` are required. Blocking needs a category per item and some text per category:

* no ``fine_category``: the coarse ``category`` is the category that is matched;
* no ``title`` (or a null title): the item's text is its category's name (``_``/``-`` read as spaces, and
  the coarse category's name as well when it differs), so categories are compared by their names.

:func:`blocking_items` returns the catalogue with both columns present and says which were filled in.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from crossmatch.errors import InputError

FINE = "fine_category"
COARSE = "category"
TITLE = "title"


@dataclass(frozen=True)
class BlockingItems:
    """A catalogue with ``item_id``, ``fine_category`` and ``title`` guaranteed (other columns kept)."""

    items: pl.DataFrame
    fine_from_coarse: bool  # fine_category was missing: the coarse category stands in
    title_from_names: bool  # title was missing: category names stand in

    def describe(self) -> dict[str, str]:
        return {"category": COARSE if self.fine_from_coarse else FINE,
                "text": "category names" if self.title_from_names else TITLE}


def _name_text(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.String).fill_null("").str.replace_all(r"[_\-/]+", " ")


def blocking_items(items: pl.DataFrame, *, source: str) -> BlockingItems:
    """``items`` with ``fine_category`` (else the coarse ``category``) and ``title`` (else category names).

    Raises:
        InputError: no ``item_id``, or neither ``fine_category`` nor ``category``.
    """
    if "item_id" not in items.columns:
        raise InputError(f"missing column 'item_id'; found {items.columns}", file=source)
    fine_missing = FINE not in items.columns
    if fine_missing and COARSE not in items.columns:
        raise InputError(f"items need a '{COARSE}' (or '{FINE}') column to block on; found {items.columns}", file=source)
    out = items.with_columns(pl.col(COARSE).alias(FINE)) if fine_missing else items
    title_missing = TITLE not in out.columns
    if title_missing:
        text = _name_text(FINE)
        if COARSE in out.columns and not fine_missing:
            text = pl.concat_str([_name_text(COARSE), text], separator=" ")
        out = out.with_columns(text.alias(TITLE))
    return BlockingItems(out, fine_missing, title_missing)
