"""Two-table entity-resolution benchmarks: records of two sources and labelled pairs (issue 12).

The layout is the DeepMatcher / Magellan one: ``tableA`` and ``tableB`` share an ``id`` column
and the same attribute columns; ``train`` / ``valid`` (and, where a benchmark ships it, ``test``) list
``ltable_id, rtable_id, label``. Any
benchmark in this layout — or two catalogues with no labels at all — is a :class:`Benchmark`.
Records are kept as strings ("" for missing) so every feature sees one type; numeric
attributes are recognised later from their values (:func:`numeric_attributes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from crossmatch.errors import InputError

PAIR_COLUMNS = ("ltable_id", "rtable_id", "label")


@dataclass(frozen=True)
class Benchmark:
    """Two record tables and optional labelled pairs; pair frames carry row *positions*."""

    left: pl.DataFrame  # id + attributes (Utf8)
    right: pl.DataFrame
    attributes: tuple[str, ...]
    train: pl.DataFrame | None  # l, r (row positions), label
    valid: pl.DataFrame | None
    # scored and reported like valid where a benchmark ships its labels; never read by a choice
    test: pl.DataFrame | None = None

    @property
    def has_labels(self) -> bool:
        return self.train is not None and self.train.height > 0

    def swapped(self) -> Benchmark:
        """The same benchmark with the two tables exchanged (labelled pairs' ``l`` and ``r`` too)."""
        def flip(p: pl.DataFrame | None) -> pl.DataFrame | None:
            return None if p is None else p.rename({"l": "r", "r": "l"}).select(p.columns)
        return Benchmark(self.right, self.left, self.attributes, flip(self.train), flip(self.valid), flip(self.test))

    def evaluation_splits(self) -> dict[str, pl.DataFrame]:
        """The labelled splits that are scored and reported (``valid``, ``test``), those present, in that order."""
        return {n: f for n, f in (("valid", self.valid), ("test", self.test)) if f is not None}

    def train_overlap(self) -> dict[str, int]:
        """Per evaluation split, how many of its distinct pairs train.csv labels too (whatever the label): their
        figures are not held out. Splits with none are left out."""
        if self.train is None:
            return {}
        seen = set(zip(self.train.get_column("l").to_list(), self.train.get_column("r").to_list(), strict=True))
        counts = {n: len(set(zip(f.get_column("l").to_list(), f.get_column("r").to_list(), strict=True)) & seen)
                  for n, f in self.evaluation_splits().items()}
        return {n: c for n, c in counts.items() if c}

    def text(self, side: str, attributes: tuple[str, ...] | None = None) -> list[str]:
        """One string per record: the attribute values joined by spaces."""
        frame = self.left if side == "left" else self.right
        cols = list(attributes or self.attributes)
        return frame.select(pl.concat_str([pl.col(c) for c in cols], separator=" ").str.strip_chars()) \
            .to_series().to_list()


def _records(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    if "id" not in frame.columns:
        raise InputError("no 'id' column", file=name)
    ids = frame.get_column("id").cast(pl.Utf8)
    if ids.null_count():
        rows = (np.flatnonzero(ids.is_null().to_numpy()) + 1).tolist()
        raise InputError("empty id", file=name, column="id", rows=rows)
    dup = ids.is_duplicated().to_numpy()
    if dup.any():
        raise InputError("duplicate ids", file=name, column="id", rows=(np.flatnonzero(dup) + 1).tolist())
    return frame.select(
        ids.alias("id"),
        *[pl.col(c).cast(pl.Utf8).fill_null("").str.to_lowercase().str.strip_chars().alias(c)
          for c in frame.columns if c != "id"])


def _pairs(frame: pl.DataFrame, name: str, left_pos: dict[str, int], right_pos: dict[str, int]) -> pl.DataFrame:
    missing = [c for c in PAIR_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; expected {list(PAIR_COLUMNS)}", file=name)
    lab = frame.get_column("label").cast(pl.Int64, strict=False)
    bad = (lab.is_null() | ~lab.is_in([0, 1])).to_numpy()
    if bad.any():
        raise InputError("label must be 0 or 1", file=name, column="label", rows=(np.flatnonzero(bad) + 1).tolist())
    out = {}
    for col, pos, table in (("ltable_id", left_pos, "tableA"), ("rtable_id", right_pos, "tableB")):
        ids = frame.get_column(col).cast(pl.Utf8).to_list()
        idx = np.array([pos.get(i, -1) if i is not None else -1 for i in ids], dtype=np.int64)
        if (idx < 0).any():
            raise InputError(f"id not found in {table}", file=name, column=col,
                             rows=(np.flatnonzero(idx < 0) + 1).tolist())
        out[col] = idx
    return pl.DataFrame({"l": out["ltable_id"], "r": out["rtable_id"], "label": lab.to_numpy()})


def make_benchmark(*, left: pl.DataFrame, right: pl.DataFrame, train: pl.DataFrame | None = None,
                   valid: pl.DataFrame | None = None, test: pl.DataFrame | None = None,
                   names: tuple[str, str] = ("tableA", "tableB"),
                   pair_names: tuple[str, ...] = ("train", "valid", "test")) -> Benchmark:
    """Validate and normalise a benchmark; every error names the file, column and rows at fault."""
    L, R = _records(left, names[0]), _records(right, names[1])
    attrs = tuple(c for c in L.columns if c != "id" and c in R.columns)
    if not attrs:
        raise InputError(f"no attribute column shared with {names[1]} besides 'id'", file=names[0])
    lpos = {i: k for k, i in enumerate(L.get_column("id").to_list())}
    rpos = {i: k for k, i in enumerate(R.get_column("id").to_list())}
    tr = _pairs(train, pair_names[0], lpos, rpos) if train is not None else None
    va = _pairs(valid, pair_names[1], lpos, rpos) if valid is not None else None
    te = _pairs(test, pair_names[2] if len(pair_names) > 2 else "test", lpos, rpos) if test is not None else None
    return Benchmark(left=L.select("id", *attrs), right=R.select("id", *attrs), attributes=attrs, train=tr, valid=va,
                     test=te)


# a number as catalogues write one: a currency sign or code before or after, thousands commas, a percent sign
# ("$ 1,299.00", "12.99 gbp", "4.5 %"); nothing else, so "5d" or "3:41" stay text
_NUMBER = (r"^(?:[$€£¥]|usd|eur|gbp)?\s*([-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+)"
           r"\s*(?:%|[$€£¥]|usd|eur|gbp)?$")


def parse_numbers(values: pl.Series) -> pl.Series:
    """Each (normalised, lower-case) value as a float, null where it is not a number in the sense of ``_NUMBER``."""
    num = values.cast(pl.Utf8).str.strip_chars().str.extract(_NUMBER, 1).str.replace_all(",", "")
    return num.cast(pl.Float64, strict=False)


def numeric_attributes(bench: Benchmark, min_share: float = 0.5) -> tuple[str, ...]:
    """Attributes whose non-empty values parse as numbers (:func:`parse_numbers`) in at least ``min_share`` of
    records."""
    out = []
    for c in bench.attributes:
        vals = pl.concat([bench.left.get_column(c), bench.right.get_column(c)])
        nonempty = vals.filter(vals != "")
        if nonempty.len() and parse_numbers(nonempty).is_not_null().mean() >= min_share:  # type: ignore[operator]
            out.append(c)
    return tuple(out)


def positives(pairs: pl.DataFrame | None) -> set[tuple[int, int]]:
    """The labelled-positive (left, right) row pairs of a pair frame."""
    if pairs is None:
        return set()
    pos = pairs.filter(pl.col("label") == 1)
    return set(zip(pos.get_column("l").to_list(), pos.get_column("r").to_list(), strict=True))
