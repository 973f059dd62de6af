"""Stage ``edges_report``: merge the per-source edge statistics (``edges --source S`` parts) into one file.

Writes ``metrics/edges.json`` exactly as the all-source ``python -m stages.edges`` does: the split
parameters and ``sources.<s>`` (nodes, edges, degree quantiles) for every source of ``ingest.sources``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crossmatch.errors import InputError
from stages._common import console, load_section, run, write_json


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.edges_report", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--parts", default="data/parts/edges", help="folder of <source>.json (edges --source S --stats)")
    ap.add_argument("--stats", default="metrics/edges.json")
    args = ap.parse_args()
    sources = list(load_section("ingest", args.params).get("sources") or [])
    if not sources:
        raise InputError("ingest.sources must list the sources for per-source edges", file=args.params)
    merged: dict[str, Any] = {}
    for s in sources:
        path = Path(args.parts) / f"{s}.json"
        if not path.exists():
            raise InputError(f"no edge statistics for source '{s}'; run `dvc repro edges@{s}` first", file=str(path))
        part = json.loads(path.read_text())
        sources_part = part.pop("sources")
        if merged and {k: v for k, v in merged.items() if k != "sources"} != part:
            raise InputError("edge parts were built with different edges params; re-run `dvc repro edges`", file=str(path))
        merged = {**part, "sources": {**merged.get("sources", {}), **sources_part}}
    write_json(args.stats, merged)
    total = sum(s["item_item_edges"] for s in merged["sources"].values())
    console.print(f"edges_report: {total:,} item-item edges over {len(sources)} sources -> {args.stats}")


if __name__ == "__main__":
    run("edges_report", main)
