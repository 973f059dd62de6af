"""What the two entity-resolution stages share: reading a two-table benchmark folder and the ``er`` params.

Folder layout (DeepMatcher / Magellan): ``tableA.csv``, ``tableB.csv`` (``id`` + attribute
columns), optional ``train.csv`` / ``valid.csv`` / ``test.csv`` (``ltable_id, rtable_id, label``). Without the
pair files everything runs unsupervised; a ``test.csv`` is scored and reported like valid, never read by a choice.
"""

from __future__ import annotations

import argparse
import codecs
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from crossmatch.er import Benchmark, BlockingConfig, MatchConfig, ScorerConfig, make_benchmark
from crossmatch.errors import ConfigError, InputError
from stages._common import console, load_section, params_as


def benchmark_args(description: str | None) -> argparse.ArgumentParser:
    """The arguments both ER stages take: params file and section, benchmark folder, ``--no-labels``."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="er")
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--no-labels", action="store_true", help="ignore train/valid/test even when present")
    return ap


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        # Catalogue exports are often Windows-1252 (™, é, curly quotes), or UTF-8 with a few such bytes pasted in:
        # valid UTF-8 stays as it is, every other byte is read as Windows-1252 (Latin-1 where that leaves it undefined).
        raw = raw.decode("utf-8", errors="cp1252-bytes").encode()
        console.print(f"{path}: not UTF-8; the bytes that are not were read as Windows-1252")
    try:
        return pl.read_csv(io.BytesIO(raw), infer_schema_length=0)
    except pl.exceptions.PolarsError as exc:
        raise _unreadable(path, exc) from None


def _cp1252_bytes(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    bad = err.object[err.start:err.end]
    chars = []
    for b in bad:
        try:
            chars.append(bytes([b]).decode("cp1252"))
        except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: undefined in Windows-1252
            chars.append(chr(b))
    return "".join(chars), err.end


codecs.register_error("cp1252-bytes", _cp1252_bytes)


def _unreadable(path: Path, exc: Exception) -> InputError:
    return InputError(f"not a readable CSV ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})", file=str(path))


def read_benchmark(folder: Path, *, labels: bool = True) -> Benchmark:
    """The benchmark in ``folder``; ``labels=False`` ignores train/valid/test even when present."""
    if not folder.is_dir():
        raise InputError("benchmark folder not found", file=str(folder))
    tables = {}
    for name in ("tableA", "tableB"):
        path = folder / f"{name}.csv"
        if not path.is_file():
            raise InputError(f"{name}.csv not found (need tableA.csv and tableB.csv)", file=str(folder))
        tables[name] = _read_csv(path)
    pairs: dict[str, pl.DataFrame | None] = {}
    for name in ("train", "valid", "test"):
        path = folder / f"{name}.csv"
        pairs[name] = _read_csv(path) if labels and path.is_file() else None
    bench = make_benchmark(left=tables["tableA"], right=tables["tableB"], train=pairs["train"], valid=pairs["valid"],
                           test=pairs["test"], names=(str(folder / "tableA.csv"), str(folder / "tableB.csv")),
                           pair_names=tuple(str(folder / f"{n}.csv") for n in ("train", "valid", "test")))
    for split, n in bench.train_overlap().items():
        console.print(f"{folder / split}.csv: {n} pair(s) also in train.csv; their figures are not held out",
                      highlight=False, soft_wrap=True)  # a path is not broken across lines
    return bench


@dataclass(frozen=True)
class ERParams:
    """The ``er`` params section: one setting for every benchmark (no per-benchmark tuning by hand)."""

    blocking: dict[str, Any] = field(default_factory=dict)
    scorer: dict[str, Any] = field(default_factory=dict)
    match: dict[str, Any] = field(default_factory=dict)
    embeddings: str = "none"  # none | minilm: MiniLM record-embedding cosine as one more feature
    # benchmark folder name -> published positives of its withheld test split (an estimate's input, not a setting)
    withheld_positives: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.embeddings not in ("none", "minilm"):
            raise ConfigError(f"er.embeddings must be none | minilm, got {self.embeddings!r}")
        if not isinstance(self.withheld_positives, dict):
            raise ConfigError("er.withheld_positives must be a mapping of benchmark folder name to a count, got "
                              f"{self.withheld_positives!r}")
        for name, n in self.withheld_positives.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ConfigError(f"er.withheld_positives.{name} must be an integer >= 0, got {n!r}")

    def blocking_config(self) -> BlockingConfig:
        section = dict(self.blocking)
        if "k_grid" in section:
            section["k_grid"] = tuple(section["k_grid"])
        return params_as(BlockingConfig, section, "er.blocking")

    def match_config(self) -> MatchConfig:
        section = dict(self.match)
        if "postprocess" in section:
            section["postprocess"] = tuple(section["postprocess"])
        if "token_vocab" in section:  # a list of sizes (the best on train is used) or one size
            v = section["token_vocab"]
            section["token_vocab"] = tuple(v) if isinstance(v, list) else (v,)
        return params_as(MatchConfig, {**section, "scorer": params_as(ScorerConfig, self.scorer, "er.scorer")},
                         "er.match")


def load_params(path: str, section: str) -> ERParams:
    return params_as(ERParams, load_section(section, path), section)
