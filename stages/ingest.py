"""Stage ``ingest``: validate raw logs and catalogues, normalise them, write one folder per source.

Inputs are either the standard contract (``--logs``, ``--items``, ``--categories``,
``--taxonomy``; see :mod:`crossmatch.io.schema`) or a real dataset through an adapter
(``--adapter xmarket|walmart_amazon --raw DIR``).

Outputs:
    <out>/<source>/logs.parquet    user_idx, item_idx, user_id, item_id, timestamp, weight[, category]
    <out>/<source>/items.parquet   item_idx, item_id, category[, title, fine_category], features
    <out>/categories.parquet, <out>/taxonomy.parquet (when given)
    <quarantine>                   rows set aside in quarantine mode (empty otherwise)
    <report>                       counts per source and per rejection reason
    <truth>/...                    hidden truth recovered by an adapter (adapters only)

With ``--source S`` (the default pipeline's ``foreach``; issue 11 part 7) only source S is built:
``--out`` is then S's own folder (``logs.parquet``, ``items.parquet``), and S's quarantined rows and
report go to ``--part DIR`` for ``stages.ingest_report``, which merges every source's part. Each
table that may hold S's rows is still checked in full, so messages are those of the all-source run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from crossmatch.errors import ConfigError, InputError
from crossmatch.io import IngestResult, LazyTable, Table, ingest, read_table, read_tables, scan_tables
from crossmatch.io.adapters import AdaptedData, read_dataset
from crossmatch.io.ingest import tables_for
from crossmatch.io.rules import IngestConfig, unsafe_source_name
from stages._common import atomic_dir, console, load_section, params_as, run, write_atomic, write_json


def source_folder(out: Path, source: str, *, one_source: bool = False) -> Path:
    """Where a source's tables go: ``out/<source>`` (or ``out`` itself for a one-source run).

    The validation rejects unsafe source names; this refuses any path outside ``out`` all the same,
    since a write there (``../../x``) could overwrite anything the user can write.
    """
    folder = out if one_source else out / source
    if not one_source and (unsafe_source_name(source) or folder.resolve().parent != out.resolve()):
        raise InputError(f"source name {source[:60]!r} would write outside the output folder", file=str(out))
    return folder


def write_outputs(result: IngestResult, out: Path, *, one_source: bool = False) -> None:
    for source, items in result.items.items():
        folder = source_folder(out, source, one_source=one_source)
        folder.mkdir(parents=True, exist_ok=True)
        items.write_parquet(folder / "items.parquet")
        if source in result.logs:
            result.logs[source].write_parquet(folder / "logs.parquet")
    if one_source:
        return
    result.categories.write_parquet(out / "categories.parquet")
    if result.taxonomy is not None:
        result.taxonomy.write_parquet(out / "taxonomy.parquet")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.ingest", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="ingest", help="params section to read")
    ap.add_argument("--logs", help="logs file or folder (one file per source)")
    ap.add_argument("--items", help="item catalogue file or folder")
    ap.add_argument("--categories", help="category table")
    ap.add_argument("--taxonomy", help="fine taxonomy table (optional)")
    ap.add_argument("--adapter", choices=["xmarket", "walmart_amazon"], help="read a real dataset instead")
    ap.add_argument("--raw", help="dataset folder for --adapter")
    ap.add_argument("--truth", help="where an adapter writes the hidden truth")
    ap.add_argument("--out", default="data/ingested")
    ap.add_argument("--quarantine-file", default="data/quarantine/rejected.parquet")
    ap.add_argument("--report", default="metrics/ingest.json")
    ap.add_argument("--source", help="build this source only (--out is its folder; see --part)")
    ap.add_argument("--part", help="with --source: folder for its quarantined rows and report")
    args = ap.parse_args()
    params = params_as(IngestConfig, load_section(args.section, args.params), args.section)

    adapted: AdaptedData | None = None
    log_tables: list[Table | LazyTable]
    with console.status("ingest: reading inputs"):
        if args.adapter:
            if not args.raw:
                raise ConfigError("ingest: --adapter needs --raw DIR")
            adapted = read_dataset(args.adapter, args.raw, seed=params.seed)
            log_tables, item_tables = list(adapted.log_tables), adapted.item_tables
            category_table, taxonomy_table = adapted.category_table, adapted.taxonomy_table
        else:
            missing = [n for n in ("items", "categories") if getattr(args, n) is None]
            if missing:
                raise ConfigError(f"ingest: missing --{' --'.join(missing)}")
            log_tables = list(scan_tables(args.logs)) if args.logs else []
            item_tables = read_tables(args.items)
            # One file each: a folder here is an error (read_table says so), not its first file.
            category_table = Table(args.categories, None, read_table(args.categories))
            taxonomy_table = Table(args.taxonomy, None, read_table(args.taxonomy)) if args.taxonomy else None
    one = args.source
    if one is not None:
        if args.adapter or not args.part:
            raise ConfigError("ingest: --source needs --part DIR and the standard inputs (no --adapter)")
        if params.sources is None or one not in params.sources:
            raise ConfigError(f"ingest: --source {one!r} is not in ingest.sources {params.sources}")
        log_tables = tables_for(log_tables, one, params.sources)
    # Each source's logs table is written as soon as it is built (one source in memory at a time).
    with atomic_dir(args.out) as tmp, console.status("ingest: validating"):
        def sink(source: str, logs: pl.DataFrame) -> None:
            folder = source_folder(tmp, source, one_source=one is not None)
            folder.mkdir(parents=True, exist_ok=True)
            logs.write_parquet(folder / "logs.parquet")

        result = ingest(
            log_tables=log_tables,
            item_tables=item_tables,
            category_table=category_table,
            taxonomy_table=taxonomy_table,
            sources=params.sources,
            quarantine=params.quarantine,
            duplicates=params.duplicates,
            only=[one] if one else None,
            sink=sink,
            rules=params.rules(),
        )
        write_outputs(result, tmp, one_source=one is not None)
    if one is not None:
        with atomic_dir(args.part) as part:
            result.quarantined.write_parquet(part / "rejected.parquet")
            write_json(part / "report.json", result.report)
        console.print(f"ingest@{one}: {result.report['sources'][one].get('rows_out', 0):,} log rows -> {args.out}")
        return
    write_atomic(args.quarantine_file, lambda p: result.quarantined.write_parquet(p))
    if args.truth and adapted is not None:
        with atomic_dir(args.truth) as tmp:
            if adapted.concepts is not None:
                adapted.concepts.write_parquet(tmp / "concepts.parquet")
            if adapted.product_truth is not None:
                adapted.product_truth.write_parquet(tmp / "product_matches.parquet")
    result.report["quarantine"] = params.quarantine
    write_json(args.report, result.report)
    n_rows = sum(s.get("rows_out", 0) for s in result.report["sources"].values())
    msg = f"ingest: {len(result.items)} sources, {n_rows:,} log rows"
    if result.quarantined.height:
        msg += f", {result.quarantined.height:,} rows quarantined -> {args.quarantine_file}"
    console.print(msg)


if __name__ == "__main__":
    run("ingest", main)

