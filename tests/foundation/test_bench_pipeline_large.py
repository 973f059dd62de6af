"""The large-pipeline benchmark's params merge and report writer (on fake rows; nothing is run or timed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchmarks.bench_pipeline_large import BEGIN, END, deep_merge, fmt_rows, parse_set, write_report

ROWS = [
    {"stage": "generate", "rc": 0, "wall_s": 10.0, "cpu_s": 8.0, "peak_rss_mb": 1000.0, "peak_rss_one_mb": 900.0},
    {"stage": "ingest_source@alpha", "rc": 0, "wall_s": 20.0, "cpu_s": 30.0, "peak_rss_mb": 3000.0,
     "peak_rss_one_mb": 2500.0},
]
META = {"kind": "meta", "commit": "abc1234", "stages": ["generate", "ingest_source@alpha"],
        "machine": {"cores": 2, "cpu_affinity": 2, "loadavg_start": [1.0, 1.0, 1.0], "mem_total_gb": 23.0},
        "overrides": {"generate": {"preset": "large"}, "icpa": {"seeds": 1}}}


def test_deep_merge_and_set() -> None:
    base: dict[str, Any] = {"icpa": {"seeds": 3, "pairs": {"negative_pool": 0, "batch_size": 256}}, "edges": {"window": 9}}
    over = deep_merge(parse_set(["icpa.pairs.negative_pool=512", "icpa.methods=[icpa, soo]"]), {"edges": {"window": 5}})
    merged = deep_merge(base, over)
    assert merged["icpa"] == {"seeds": 3, "pairs": {"negative_pool": 512, "batch_size": 256}, "methods": ["icpa", "soo"]}
    assert merged["edges"] == {"window": 5}
    assert base["icpa"]["pairs"]["negative_pool"] == 0  # the base is not modified


def test_table_totals() -> None:
    lines = fmt_rows(ROWS)
    assert lines[2].startswith("| generate | 10.0 | 8.0 | 1,000 |")
    assert "**30.0** (0.5 min)" in lines[-1] and "**38.0**" in lines[-1] and "**3,000**" in lines[-1]


def test_write_report_replaces_only_its_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Other output\n\nkept\n")
    write_report(META, ROWS[:1], report)
    first = report.read_text()
    assert first.startswith("# Other output\n\nkept\n") and "PARTIAL: 1 of 2 stages" in first
    write_report(META, ROWS, report)
    text = report.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and "kept" in text
    assert "complete" in text and "ingest_source@alpha" in text
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == META["overrides"]
