"""Stage ``er_report``: ``reports/er.md`` from the ER stages' metrics (crossmatch.er.report).

Inputs:  --metrics-dir  holds real_er_block_<b>.json, real_er_match_<b>.json and, when present,
                        reports/er_finetune_<b>.json of ``benchmarks.er_finetune`` (--finetune-dir)
Output:  --out          markdown
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crossmatch.er.report import report
from crossmatch.errors import InputError
from stages._common import run, write_text


def _load(path: Path) -> Any:
    if not path.is_file():
        raise InputError("metrics not found; run the er_block / er_match stages first", file=str(path))
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}, line {exc.lineno})", file=str(path)) from None


def _scorer_label(data: dict[str, Any], match: dict[str, Any]) -> str:
    setup = data.get("feature_scorer_setup")
    if setup is None:  # a file from before the benchmark rebuilt er_match's scorer
        return "feature scorer in the same benchmark run (features of that run)"
    now = match.get("scorer", {}).get("features")
    # a fine-tune run takes 25-48 CPU-minutes and is not a stage: say when er_match has moved on since
    stale = (f"; {setup['features']} features, where er_match now builds {now}: an earlier feature set"
             if "features" in setup and now is not None and now != setup["features"] else "")
    return f"feature scorer as er_match builds it, in that run (token vocabulary {setup['token_vocab']}{stale})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmarks", nargs="+", required=True)
    ap.add_argument("--metrics-dir", type=Path, default=Path("metrics"))
    ap.add_argument("--finetune-dir", type=Path, default=Path("reports"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    results = {}
    for b in args.benchmarks:
        extra = None
        ft = args.finetune_dir / f"er_finetune_{b}.json"
        match = _load(args.metrics_dir / f"real_er_match_{b}.json")
        if ft.is_file():
            data = _load(ft)
            cfg = data.get("config", {})
            rep = data.get("repeats")
            # with repeats, the single rows are the first run's: say which seed they are
            one = f"seed {rep['seeds'][0]}, " if rep else ""
            form = f"{cfg['form']} form, " if "form" in cfg else ""
            kept = f", epoch {data['chosen_epoch']} kept" if "chosen_epoch" in data else ""
            extra = {f"fine-tuned MiniLM ({one}{form}{len(data['epochs'])} epochs{kept}, {data['train_seconds']:.0f} s)":
                     data["finetuned_minilm"],
                     _scorer_label(data, match): data["feature_scorer"],
                     "mean of that feature scorer + fine-tuned MiniLM": data["ensemble_mean"]}
            if "ensemble_weighted" in data:
                w = data["thresholds"]["encoder_weight"]
                extra[f"weighted mean, {one}encoder weight {w:.1f} (weight and threshold chosen on train's dev split)"] = \
                    data["ensemble_weighted"]
            if rep:  # benchmarks.er_finetune --merge: the same recipe over several seeds
                seeds = ", ".join(str(s) for s in rep["seeds"])
                for key, what in (("finetuned_minilm", "fine-tuned MiniLM"), ("ensemble_weighted", "weighted mean")):
                    extra[f"{what}, mean over seeds {seeds} (F1 {rep[key]['f1']:.3f} ± {rep[key]['f1_std']:.3f})"] = \
                        rep[key]
        results[b] = (_load(args.metrics_dir / f"real_er_block_{b}.json"), match, extra)
    write_text(args.out, report(results))


if __name__ == "__main__":
    run("er_report", main)
