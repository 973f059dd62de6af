"""The ER stages on benchmark layouts the project was not built on (issue 12 §5: "we will run it on one you
have not seen").

Three folders are derived from the real benchmarks in ``../shared/data`` and run through the README's two
commands (``stages.er_block``, ``stages.er_match`` with ``pipelines/real/params.yaml``), as a user would:

* ``small_renamed``: DBLP–ACM cut to a Beer-sized benchmark (268 train pairs with 40 positives, 91 valid pairs
  with 14; 704 × 715 records), attributes renamed (``Beer_Name``, ``Brew_Factory_Name``, ``Style``, ``ABV``),
  tableB's columns in another order, the year written ``1999 %`` (read as a number since formatted numbers are);
* ``string_ids``: Amazon–Google with string ids holding an accent (``rec-12-é``) and an attribute that is empty in
  both tables (found an all-NaN-feature crash in the scorer);
* ``textual``: Amazon–Google in Abt-Buy's shape — ``name``, a ~1,000-character ``description`` of random title words
  after the title, prices written ``$ 1,299.00`` (found the rapidfuzz cost of long values, a record view drowned by
  the description, and formatted prices read as text);
* ``dirty_walmart_amazon``, ``dirty_dblp_acm``: the two benchmarks made *dirty* the way DeepMatcher (Mudgal et al.,
  SIGMOD 2018, §5) derived its dirty variants — every attribute value other than the title moved, with probability
  1/2, to the end of the record's title, its own cell left empty — so brand, model number, price or venue are
  missing where the per-attribute features look for them. Our own draw (seed 0), not DeepMatcher's files;
* ``swapped_walmart_amazon``: Walmart–Amazon with the two tables swapped, so the 22 k-record catalogue is on the left
  (before ``er.blocking.proposer``, tableA always proposed: 110,370 candidates and end-to-end F1 0.220; now
  Walmart proposes, whichever table it is).

Prints per layout: candidates, blocking recall, valid F1 of the scorer, output pairs, seconds. ~30 min on 2 cores
(``--layouts`` picks some).

    python -m benchmarks.er_layouts [--data ../shared/data] [--work /tmp/er_layouts] [--layouts dirty_walmart_amazon ...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema_length=0)


def _sample_pairs(df: pl.DataFrame, positives: int, negatives: int) -> pl.DataFrame:
    return pl.concat([df.filter(pl.col("label") == "1").sample(positives, seed=1),
                      df.filter(pl.col("label") == "0").sample(negatives, seed=1)]).sample(fraction=1.0, seed=2, shuffle=True)


def small_renamed(src: Path, out: Path) -> None:
    """A Beer-sized benchmark with other attribute names and column order (from DBLP–ACM)."""
    a, b = _read(src / "tableA.csv"), _read(src / "tableB.csv")
    train, valid = _sample_pairs(_read(src / "train.csv"), 40, 228), _sample_pairs(_read(src / "valid.csv"), 14, 77)
    ids_a = set(train["ltable_id"]) | set(valid["ltable_id"])
    ids_b = set(train["rtable_id"]) | set(valid["rtable_id"])
    a = pl.concat([a.filter(pl.col("id").is_in(ids_a)), a.filter(~pl.col("id").is_in(ids_a)).sample(400, seed=3)])
    b = pl.concat([b.filter(pl.col("id").is_in(ids_b)), b.filter(~pl.col("id").is_in(ids_b)).sample(400, seed=3)])
    names = {"title": "Beer_Name", "authors": "Brew_Factory_Name", "venue": "Style", "year": "ABV"}
    a, b = (t.rename(names).with_columns(pl.col("ABV") + " %") for t in (a, b))
    out.mkdir(parents=True)
    a.write_csv(out / "tableA.csv")
    b.select("id", "ABV", "Style", "Brew_Factory_Name", "Beer_Name").write_csv(out / "tableB.csv")
    train.write_csv(out / "train.csv")
    valid.write_csv(out / "valid.csv")


def string_ids(src: Path, out: Path) -> None:
    """Amazon–Google with accented string ids and an attribute empty in both tables."""
    def sid(c: str) -> pl.Expr:
        return (pl.lit("rec-") + pl.col(c) + pl.lit("-é")).alias(c)

    out.mkdir(parents=True)
    for name in ("tableA", "tableB"):
        _read(src / f"{name}.csv").with_columns(sid("id"), pl.lit(None, pl.Utf8).alias("notes")).write_csv(out / f"{name}.csv")
    for name in ("train", "valid"):
        _read(src / f"{name}.csv").with_columns(sid("ltable_id"), sid("rtable_id")).write_csv(out / f"{name}.csv")


def with_description(src: Path, out: Path, words: int, *, seed: int = 0) -> None:
    """``src``'s benchmark plus a ``description`` column: the title, then ``words`` random title words."""
    tables = {name: pl.read_csv(src / f"{name}.csv", infer_schema_length=0) for name in ("tableA", "tableB")}
    pool = [w for t in tables.values() for title in t.get_column("title").drop_nulls().to_list() for w in title.split()]
    rng = random.Random(seed)
    out.mkdir(parents=True)
    for name, t in tables.items():
        desc = [" ".join([title or "", *rng.choices(pool, k=words)]) for title in t.get_column("title").to_list()]
        t.with_columns(pl.Series("description", desc)).write_csv(out / f"{name}.csv")
    for name in ("train.csv", "valid.csv"):
        shutil.copy(src / name, out / name)


def textual(src: Path, out: Path) -> None:
    """Amazon–Google as a textual benchmark (Abt-Buy's shape): ``name``, a long ``description`` (the title and 150
    random title words, ~1,000 characters), prices written ``$ 1,299.00``."""
    with_description(src, out, 150)
    for name in ("tableA", "tableB"):
        t = _read(out / f"{name}.csv").rename({"title": "name"})
        price = t.get_column("price").cast(pl.Float64, strict=False).to_list()
        t.with_columns(pl.Series("price", [f"$ {v:,.2f}" if v is not None else "" for v in price])) \
            .write_csv(out / f"{name}.csv")


def dirty(src: Path, out: Path, *, seed: int = 0, share: float = 0.5) -> None:
    """``src``'s benchmark made dirty (module docstring): each non-empty value of an attribute other than ``title``
    moves, with probability ``share``, to the end of its record's title; the pair files are copied unchanged."""
    rng = random.Random(seed)
    tables = {name: _read(src / f"{name}.csv") for name in ("tableA", "tableB")}
    for name, t in tables.items():
        if "title" not in t.columns:
            raise SystemExit(f"{src / name}.csv has no title column to make dirty")
    out.mkdir(parents=True)
    for name, t in tables.items():
        attrs = [c for c in t.columns if c not in ("id", "title")]
        rows = t.to_dicts()
        for r in rows:
            for c in attrs:
                if r[c] is not None and r[c] != "" and rng.random() < share:
                    r["title"] = f"{r['title'] or ''} {r[c]}".strip()
                    r[c] = None
        pl.DataFrame(rows, schema={c: pl.Utf8 for c in t.columns}).write_csv(out / f"{name}.csv")
    for name in ("train.csv", "valid.csv"):
        shutil.copy(src / name, out / name)


def swapped(src: Path, out: Path) -> None:
    """``src``'s benchmark with the tables swapped (tableA ↔ tableB, ``ltable_id`` ↔ ``rtable_id``): the larger
    catalogue on the left, as in no benchmark the project was built on."""
    out.mkdir(parents=True)
    shutil.copy(src / "tableA.csv", out / "tableB.csv")
    shutil.copy(src / "tableB.csv", out / "tableA.csv")
    for name in ("train", "valid"):
        t = _read(src / f"{name}.csv")
        t.rename({"ltable_id": "rtable_id", "rtable_id": "ltable_id"}).select(t.columns).write_csv(out / f"{name}.csv")


def run_layout(folder: Path, params: Path) -> dict[str, object]:
    """The README's two commands on ``folder``; their metrics."""
    o = folder / "out"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.time()
    for cmd in (["er_block", "--out", str(o / "candidates.parquet"), "--metrics", str(o / "block.json"), "--curve", str(o / "recall")],
                ["er_match", "--candidates", str(o / "candidates.parquet"), "--out", str(o / "pairs.parquet"),
                 "--metrics", str(o / "match.json"), "--pr", str(o / "pr")]):
        subprocess.run([sys.executable, "-m", f"stages.{cmd[0]}", "--params", str(params), "--data", str(folder), *cmd[1:]],
                       check=True, env=env)
    block, match = json.loads((o / "block.json").read_text()), json.loads((o / "match.json").read_text())
    return {"candidates": block["candidate_pairs"], "recall_valid": block["recall_valid"],
            "proposer": block.get("proposer"), "grouped_by": match.get("grouped_by"),
            "scorer_valid_f1": match["scorer"]["valid"]["f1"], "output": match["output"],
            "output_pairs": match["output_pairs"],
            "unsupervised_valid_f1": (match.get("unsupervised") or {}).get("valid", {}).get("f1"),
            "seconds": round(time.time() - t0, 1)}


def fresh_workdir(work: Path, marker: str) -> None:
    """Empty ``work`` for a script's outputs; refuse a non-empty folder that lacks the script's ``marker`` file."""
    if work.exists() and any(work.iterdir()) and not (work / marker).exists():
        raise SystemExit(f"{work} exists and was not made by this script: choose another --work")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / marker).touch()


LAYOUTS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "small_renamed": (small_renamed, "dblp_acm"), "string_ids": (string_ids, "amazon_google"),
    "textual": (textual, "amazon_google"), "dirty_walmart_amazon": (dirty, "walmart_amazon"),
    "dirty_dblp_acm": (dirty, "dblp_acm"), "swapped_walmart_amazon": (swapped, "walmart_amazon")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/er_layouts"))
    ap.add_argument("--params", type=Path, default=Path("pipelines/real/params.yaml"))
    ap.add_argument("--layouts", nargs="+", choices=sorted(LAYOUTS), default=list(LAYOUTS))
    args = ap.parse_args()
    fresh_workdir(args.work, ".er_layouts")
    for name in args.layouts:
        build, src = LAYOUTS[name]
        build(args.data / src, args.work / name)
        print(json.dumps({"layout": name, **run_layout(args.work / name, args.params)}), flush=True)


if __name__ == "__main__":
    main()
