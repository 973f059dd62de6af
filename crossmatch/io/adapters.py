"""Adapters that turn the real datasets in ``../shared/data`` into crossmatch's input contract.

* XMarket Electronics (one ratings file per market): each market becomes a source; items
  are re-indexed per market so sources share no ids, and the ASIN is kept only as hidden
  truth (``concepts``) for alignment accuracy. Ratings become weights, dates timestamps.
  There is one shared coarse category, ``electronics`` (K = 1).
* Walmart–Amazon (two product catalogues and labelled pairs): each side becomes a source;
  its own ``category`` values become that source's fine taxonomy under the single coarse
  category ``electronics``; empty categories become ``(uncategorised)``. Positive labelled
  pairs become the product-match truth, each with the ``split`` it came from (the pair file's
  stem: ``train`` / ``valid``) so that tuning can use train only and report valid (issue 12).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import polars as pl

from crossmatch.errors import ConfigError, InputError
from crossmatch.io.readers import Table, read_table

SHARED_CATEGORY = "electronics"
UNCATEGORISED = "(uncategorised)"
XMARKET_COLUMNS = ("userId", "itemId", "rate", "date")


@dataclass
class AdaptedData:
    """Standard input tables plus the hidden truth the adapter could recover."""

    log_tables: list[Table]
    item_tables: list[Table]
    category_table: Table
    taxonomy_table: Table | None
    concepts: pl.DataFrame | None  # source, item_id, concept (hidden identity)
    product_truth: pl.DataFrame | None  # source_a, item_a, source_b, item_b[, split]


def xmarket(markets: Mapping[str, Table], seed: int = 0) -> AdaptedData:
    """Adapt XMarket ratings tables (``userId itemId rate date``), one per market."""
    rng = np.random.default_rng(seed)
    logs, items, concepts = [], [], []
    for market in sorted(markets):
        t = markets[market]
        missing = [c for c in XMARKET_COLUMNS if c not in t.frame.columns]
        if missing:
            raise InputError(f"missing XMarket column(s) {missing}; found {t.frame.columns}", file=t.file)
        asins = t.frame.get_column("itemId").cast(pl.String).unique().sort()
        code = rng.permutation(len(asins))
        width = len(str(len(asins)))
        ids = pl.DataFrame(
            {"itemId": asins, "item_id": [f"{market}-i{int(c):0{width}d}" for c in code]}
        )
        frame = t.frame.with_columns(pl.col("itemId").cast(pl.String)).join(ids, on="itemId", how="left")
        logs.append(
            Table(
                t.file,
                market,
                frame.select(
                    pl.format("{}-{}", pl.lit(market), pl.col("userId")).alias("user_id"),
                    "item_id",
                    pl.col("date").alias("timestamp"),
                    pl.col("rate").alias("weight"),
                    pl.lit(SHARED_CATEGORY).alias("category"),
                ),
            )
        )
        items.append(Table(t.file, market, ids.select("item_id", pl.lit(SHARED_CATEGORY).alias("category"))))
        concepts.append(ids.select(pl.lit(market).alias("source"), "item_id", pl.col("itemId").alias("concept")))
    return AdaptedData(
        log_tables=logs,
        item_tables=items,
        category_table=Table("<xmarket>", None, pl.DataFrame({"category": [SHARED_CATEGORY]})),
        taxonomy_table=None,
        concepts=pl.concat(concepts),
        product_truth=None,
    )


def walmart_amazon(table_a: Table, table_b: Table, pairs: Sequence[Table], names: tuple[str, str] = ("walmart", "amazon")) -> AdaptedData:
    """Adapt the Walmart–Amazon catalogues (tableA = Walmart, tableB = Amazon) and labelled pairs.

    The truth gets a ``split`` column, the stem of each pair file's name (``train``, ``valid``);
    a pair labelled in several files keeps the first (pass train first: a pair seen in tuning
    is never a held-out pair). Readers that select the four id columns are unaffected.
    """
    need = ("id", "title", "category")
    for t in (table_a, table_b):
        missing = [c for c in need if c not in t.frame.columns]
        if missing:
            raise InputError(f"missing catalogue column(s) {missing}; found {t.frame.columns}", file=t.file)
    items, taxonomy = [], []
    for name, t in zip(names, (table_a, table_b), strict=True):
        f = t.frame.select(
            pl.format("{}-{}", pl.lit(name), pl.col("id").cast(pl.String)).alias("item_id"),
            pl.col("title").cast(pl.String).fill_null(""),
            pl.lit(SHARED_CATEGORY).alias("category"),
            pl.col("category").cast(pl.String).str.strip_chars().replace("", None).fill_null(UNCATEGORISED).alias("fine_category"),
            *[pl.col(c).cast(pl.String) for c in ("brand", "modelno") if c in t.frame.columns],
            *[pl.col("price").cast(pl.Float64, strict=False) for _ in [0] if "price" in t.frame.columns],
        )
        items.append(Table(t.file, name, f))
        taxonomy.append(f.select(pl.lit(name).alias("source"), "fine_category", "category").unique().sort("fine_category"))
    truth = []
    for t in pairs:
        missing = [c for c in ("ltable_id", "rtable_id", "label") if c not in t.frame.columns]
        if missing:
            raise InputError(f"missing pair column(s) {missing}; found {t.frame.columns}", file=t.file)
        pos = t.frame.filter(pl.col("label").cast(pl.Int64, strict=False) == 1)
        truth.append(
            pos.select(
                pl.lit(names[0]).alias("source_a"),
                pl.format("{}-{}", pl.lit(names[0]), pl.col("ltable_id").cast(pl.String)).alias("item_a"),
                pl.lit(names[1]).alias("source_b"),
                pl.format("{}-{}", pl.lit(names[1]), pl.col("rtable_id").cast(pl.String)).alias("item_b"),
                pl.lit(PurePath(t.file).stem).alias("split"),
            )
        )
    return AdaptedData(
        log_tables=[],
        item_tables=items,
        category_table=Table("<walmart_amazon>", None, pl.DataFrame({"category": [SHARED_CATEGORY]})),
        taxonomy_table=Table("<walmart_amazon taxonomy>", None, pl.concat(taxonomy)),
        concepts=None,
        product_truth=pl.concat(truth).unique(["source_a", "item_a", "source_b", "item_b"], keep="first",
                                              maintain_order=True) if truth else None,
    )


def read_dataset(name: str, folder: str | Path, *, seed: int = 0) -> AdaptedData:
    """Read a real dataset folder through its adapter: ``xmarket`` (``<market>_5core.txt`` files) or
    ``walmart_amazon`` (``tableA.csv``, ``tableB.csv``, optional ``train.csv`` / ``valid.csv``)."""
    raw = Path(folder)
    if not raw.is_dir():
        raise InputError("dataset folder not found", file=str(raw))
    if name == "xmarket":
        files = sorted(raw.glob("*_5core.txt"))
        if not files:
            raise InputError("no '<market>_5core.txt' files", file=str(raw))
        markets = {f.name.split("_")[0]: Table(str(f), f.name.split("_")[0], read_table(f, separator=" ")) for f in files}
        return xmarket(markets, seed=seed)
    if name == "walmart_amazon":
        a, b = raw / "tableA.csv", raw / "tableB.csv"
        pairs = [raw / f for f in ("train.csv", "valid.csv") if (raw / f).exists()]
        return walmart_amazon(Table(str(a), None, read_table(a)), Table(str(b), None, read_table(b)),
                              [Table(str(p), None, read_table(p)) for p in pairs])
    raise ConfigError(f"ingest: unknown adapter '{name}'; choose xmarket or walmart_amazon")
