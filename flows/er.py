"""``crossmatch er``: the two entity-resolution stages on one folder of two tables, in one command.

It runs the README's two commands, ``python -m stages.er_block`` then ``python -m stages.er_match``, outside DVC
(the folder is the user's, not a pipeline input), streams their own output, stops at the first stage that fails
with that stage's exit code (its error line is the message; no second one), and ends with the matches as a CSV
and a summary. The stages choose everything on ``train.csv`` alone, or run the unsupervised rule without labels.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from stages._common import write_atomic


@dataclass(frozen=True)
class ErOutputs:
    """Where the two stages and the matches go (``recall_curve`` and ``pr_curve`` are prefixes of a .csv and a .png)."""

    candidates: Path
    block_metrics: Path
    recall_curve: Path
    pairs: Path
    match_metrics: Path
    pr_curve: Path
    matches: Path

    @classmethod
    def under(cls, root: Path) -> ErOutputs:
        """All of them inside one folder."""
        return cls(root / "candidates.parquet", root / "block.json", root / "recall", root / "pairs.parquet",
                   root / "match.json", root / "pr", root / "matches.csv")


def er_commands(data: Path, out: ErOutputs, *, params: Path, section: str = "er", no_labels: bool = False,
                python: str = sys.executable) -> list[tuple[str, list[str]]]:
    """``(stage, argv)`` of ``er_block`` and ``er_match``, exactly as the README writes them."""
    common = ["--params", str(params), "--section", section, "--data", str(data), *(["--no-labels"] if no_labels else [])]
    return [
        ("er_block", [python, "-m", "stages.er_block", *common, "--out", str(out.candidates),
                      "--metrics", str(out.block_metrics), "--curve", str(out.recall_curve)]),
        ("er_match", [python, "-m", "stages.er_match", *common, "--candidates", str(out.candidates),
                      "--out", str(out.pairs), "--metrics", str(out.match_metrics), "--pr", str(out.pr_curve)]),
    ]


def run_er(data: Path, out: ErOutputs, *, params: Path, section: str = "er", no_labels: bool = False,
           cwd: Path | None = None, on_stage: Callable[[str], None] = lambda _: None) -> tuple[str | None, int]:
    """Run the two stages in order; ``(None, 0)``, or ``(the stage that failed, its exit code)``."""
    for stage, argv in er_commands(data, out, params=params, section=section, no_labels=no_labels):
        on_stage(stage)
        code = subprocess.run(argv, cwd=cwd, check=False).returncode
        if code != 0:
            return stage, code
    return None, 0


def write_matches(out: ErOutputs) -> int:
    """``matches.csv``: the pairs of the chosen output (``decision``), most probable first; how many."""
    pairs = pl.read_parquet(out.pairs)
    matches = (pairs.filter(pl.col("decision"))
               .sort(["probability", "left_id", "right_id"], descending=[True, False, False])
               .select("left_id", "right_id", "probability"))
    write_atomic(out.matches, lambda p: matches.write_csv(p))
    return matches.height


def summary_rows(out: ErOutputs, n_matches: int) -> list[tuple[str, str]]:
    """What a person reads first: candidates and their recall, how the output was chosen, the labelled figures."""
    block: dict[str, Any] = json.loads(out.block_metrics.read_text())
    match: dict[str, Any] = json.loads(out.match_metrics.read_text())
    rows = [("candidate pairs", f"{block['candidate_pairs']:,} (k = {block['k']}, "
             f"{'tableA' if block.get('proposer', 'left') == 'left' else 'tableB'} proposes)")]
    # a split without labelled pairs has no recall (null, or NaN where the stage ran with --no-labels)
    rows += [(f"blocking recall, {s}", f"{block[f'recall_{s}']:.4f}") for s in ("train", "valid", "test")
             if isinstance(block.get(f"recall_{s}"), (int, float)) and not math.isnan(block[f"recall_{s}"])]
    rows.append(("mode", str(match.get("mode", "unsupervised"))))
    rows.append(("output", f"{match.get('output', 'the unsupervised rule')}: {n_matches:,} matched pairs"))
    scorer = match.get("scorer", {})
    for s in ("valid", "test"):
        if isinstance(scorer.get(s), dict):
            m = scorer[s]
            rows.append((f"pair scorer, {s}", f"P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}"))
        if isinstance(ref := match.get("reference", {}).get(s), dict):  # the nothing-tuned floor, same pairs
            rows.append((f"reference classifier, {s}", f"P {ref['precision']:.3f}  R {ref['recall']:.3f}  "
                         f"F1 {ref['f1']:.3f}"))
    rows.append(("matches", str(out.matches)))
    rows.append(("all candidates, scored", str(out.pairs)))
    rows.append(("curves", f"{out.recall_curve}.png, {out.pr_curve}.png"))
    return rows
