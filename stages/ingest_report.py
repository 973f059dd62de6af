"""Stage ``ingest_report``: merge the per-source ingest parts into the all-source outputs.

The default pipeline ingests one source per ``foreach`` item (``python -m stages.ingest --source S``,
issue 11 part 7). What is shared by every source is done here, once:

    <out>/categories.parquet, <out>/taxonomy.parquet   the shared tables (validated as in ``ingest``)
    <quarantine>      every part's quarantined rows, in input order (file order, then row number)
    <report>          ``metrics/ingest.json``: the all-source stage's report, from the parts

The result is what the all-source ``python -m stages.ingest`` writes (same bytes on the default pipeline).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import polars as pl

from crossmatch.errors import InputError
from crossmatch.io import read_tables
from crossmatch.io.checks import FILE, ROW
from crossmatch.io.readers import table_files
from crossmatch.io.rules import IngestConfig as IngestParams
from crossmatch.io.validate import load_categories, load_taxonomy
from stages._common import console, load_section, params_as, run, write_atomic, write_json


def file_labels(path: str) -> list[str]:
    """The labels the ingest stage gives the files of ``path`` (as in its messages and report)."""
    p = Path(path)
    return [str(f) for f in table_files(p)] if p.is_dir() else [path]


def merge_quarantine(parts: list[pl.DataFrame], order: list[str]) -> pl.DataFrame:
    """Concatenate the parts (diagonally) and put the rows back in input order: file, then row number."""
    merged = pl.concat(parts, how="diagonal_relaxed")
    rank = {f: i for i, f in enumerate(order)}
    unknown = sorted(set(merged.get_column(FILE).unique().to_list()) - set(rank))
    if unknown:
        raise InputError(f"quarantined rows name files that are not inputs: {unknown}", file=", ".join(order))
    key = pl.col(FILE).replace_strict(rank, return_dtype=pl.Int64)
    return merged.with_columns(key.alias("_order")).sort("_order", ROW, maintain_order=True).drop("_order")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.ingest_report", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--parts", default="data/parts/ingest", help="folder of <source>/{rejected.parquet,report.json}")
    ap.add_argument("--logs", required=True)
    ap.add_argument("--items", required=True)
    ap.add_argument("--categories", required=True)
    ap.add_argument("--taxonomy")
    ap.add_argument("--out", default="data/ingested")
    ap.add_argument("--quarantine-file", default="data/quarantine/rejected.parquet")
    ap.add_argument("--report", default="metrics/ingest.json")
    args = ap.parse_args()
    section = load_section("ingest", args.params)
    sources = list(section.get("sources") or [])
    if not sources:
        raise InputError("ingest.sources must list the sources for a per-source ingest", file=args.params)

    # the shared tables are checked by the rules the per-source ingest used (e.g. allow_control_chars)
    rules = params_as(IngestParams, section, "ingest").rules()
    categories = load_categories(read_tables(args.categories)[0], rules)
    taxonomy = load_taxonomy(read_tables(args.taxonomy)[0], categories, rules) if args.taxonomy else None
    frames, reports = [], []
    for s in sources:
        part = Path(args.parts) / s
        if not (part / "report.json").exists():
            raise InputError(f"no ingest part for source '{s}'; run `dvc repro ingest@{s}` first", file=str(part))
        frames.append(pl.read_parquet(part / "rejected.parquet"))
        reports.append(json.loads((part / "report.json").read_text()))
    log_files, item_files = file_labels(args.logs), file_labels(args.items)
    quarantined = merge_quarantine(frames, item_files + log_files)

    report: dict[str, Any] = {"sources": {}, "files": log_files + item_files}
    for s, r in zip(sources, reports, strict=True):
        report["sources"][s] = r["sources"][s]
    report["quarantined_rows"] = quarantined.height
    report["quarantined_by_reason"] = (
        {r: int(n) for r, n in quarantined.group_by("reason").len().sort("reason").iter_rows()}
        if quarantined.height else {}
    )
    report["categories"] = len(categories)
    report["quarantine"] = bool(section.get("quarantine", False))

    out = Path(args.out)
    write_atomic(out / "categories.parquet", lambda p: pl.DataFrame({"category": categories}).write_parquet(p))
    if taxonomy is not None:
        write_atomic(out / "taxonomy.parquet", lambda p: taxonomy.write_parquet(p))
    write_atomic(args.quarantine_file, lambda p: quarantined.write_parquet(p))
    write_json(args.report, report)
    n_rows = sum(s.get("rows_out", 0) for s in report["sources"].values())
    console.print(f"ingest_report: {len(sources)} sources, {n_rows:,} log rows, {quarantined.height:,} quarantined")


if __name__ == "__main__":
    run("ingest_report", main)
