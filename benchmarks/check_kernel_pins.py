"""Do this machine's stages compute the committed bits? The check for `stages._kernels` on another CPU.

Runs the default preset's ``train_align`` (its inputs — ``data/ingested``, ``data/edges``, ``data/truth`` — must
exist: ``dvc repro edges`` first) into a temporary folder under each ``--variant``: ``pinned`` (what a stage does
by default), ``native`` (``CROSSMATCH_NATIVE_KERNELS=1``: each library's own choice for this CPU) and, with
``--each``, every pin alone on top of ``native``. Prints one JSON line per variant: wall seconds, the md5 of the
loss table, and whether the per-epoch curves equal the committed ``plots/icpa_curves/train_align/*.csv`` (made
on an AMD EPYC with AVX2, under the pins). On an AVX-512 machine, ``pinned`` matching and ``native`` not is the
evidence that the pins do their job; ``pinned`` not matching is a bug to report with this output.

    python -m benchmarks.check_kernel_pins [--each]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stages._kernels import AVX2, OPT_OUT, THREADS, machine_flags

ROOT = Path(__file__).resolve().parents[1]
CURVES = ROOT / "plots" / "icpa_curves" / "train_align"


def _run(env_extra: dict[str, str], out: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in {*AVX2, *THREADS, OPT_OUT}}
    env.update(env_extra)
    cmd = [sys.executable, "-m", "stages.train_align", "--ingested", "data/ingested", "--edges", "data/edges",
           "--truth", "data/truth/concepts.parquet", "--out", str(out / "align"), "--embeddings", str(out / "emb"),
           "--checkpoints", str(out / "ck"), "--metrics", str(out / "metrics.json"), "--front",
           str(out / "front.csv"), "--curves", str(out / "curves")]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"check_kernel_pins: train_align failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def _same_curves(out: Path) -> bool:
    committed = sorted(CURVES.glob("*.csv"))
    return bool(committed) and all((out / "curves" / c.name).read_bytes() == c.read_bytes() for c in committed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--each", action="store_true", help="also every pin alone on top of the native kernels")
    args = ap.parse_args()
    if not (ROOT / "data" / "edges").exists():
        sys.exit("check_kernel_pins: data/edges is missing; run `dvc repro edges` first")
    flags = machine_flags()
    print(json.dumps({"avx2": "avx2" in flags, "fma": "fma" in flags, "avx512f": "avx512f" in flags}))
    variants: dict[str, dict[str, str]] = {"pinned": {}, "native": {OPT_OUT: "1", **THREADS}}
    if args.each:
        variants.update({f"native+{k}": {OPT_OUT: "1", **THREADS, k: v} for k, v in AVX2.items()})
    for name, extra in variants.items():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            seconds = _run(extra, out)
            losses = hashlib.md5((out / "align" / "losses.csv").read_bytes()).hexdigest()
            print(json.dumps({"variant": name, "seconds": round(seconds, 1), "losses_md5": losses,
                              "curves_equal_committed": _same_curves(out)}), flush=True)


if __name__ == "__main__":
    main()
