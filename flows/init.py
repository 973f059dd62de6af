"""``crossmatch init``: a pipeline folder for one's own data (its ``dvc.yaml`` and ``params.yaml``).

:func:`init_pipeline` reads the input files' headers and sources (:func:`crossmatch.io.inspect.inspect_inputs`:
lazily, with ingest's column contracts and messages) and writes ``<out>/dvc.yaml`` and ``<out>/params.yaml``:

* the stages ingest → edges → train_align → pareto_finetune (one per source) → icpa_eval → blocking → match →
  evaluate, run from the repository root (``wdir``) like ``pipelines/real``, every output under ``<out>/``;
  no ``generate`` stage and no truth file unless ``truth_dir`` holds one (``concepts.parquet``: alignment
  hit@k; ``product_matches.parquet``: blocking is tuned and match scored; ``fine_categories.parquet``);
* params copied from the repository's ``params.yaml`` (its comments kept; written in the form ``dvc exp run
  -S`` keeps) with the sources filled in: ``ingest.sources``, ``icpa.sources``, ``blocking.left/right`` and
  ``match.left/right``.

Row-level checks are the ingest stage's, the pipeline's first. Then: ``dvc repro <out>/dvc.yaml``.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crossmatch.errors import ConfigError, InputError
from crossmatch.io.inspect import InputSummary, inspect_inputs

SECTIONS = ("ingest", "edges", "icpa", "blocking", "match", "evaluate")  # what the generated stages read
TRUTH_FILES = ("concepts.parquet", "product_matches.parquet", "fine_categories.parquet")
CHECKPOINTS_IGNORE = "/data/icpa/checkpoints/"  # in <out>/.gitignore
# match.solver: weavenet uses it as is: the per-distribution models (match never asks for a size specialist, which
# live in weavenet_wn16_sizes.pt)
SHIPPED_WEAVENET = "crossmatch/twosided/pretrained/weavenet_wn16.pt"


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_pipeline` wrote and found."""

    dvcfile: Path  # relative to the repository root
    params: Path
    summary: InputSummary
    left: str
    right: str
    truth: list[str]  # truth files used (names)
    notes: list[str] = field(default_factory=list)  # what the user should know (unused columns, ...)

    @property
    def next_command(self) -> str:
        return f"dvc repro {self.dvcfile.as_posix()}"


def _shown(path: Path, root: Path) -> str:
    """``path`` relative to the repository root when inside it, else absolute (a DVC dep outside the repo)."""
    p = path.resolve()
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def _out(path: str, cache: bool = True) -> dict[str, dict[str, bool]]:
    # persist: as every output of ../../dvc.yaml: a stage that rejects its input keeps the previous outputs
    return {path: {"persist": True} if cache else {"persist": True, "cache": False}}


def _cmd(*parts: str) -> str:
    return " ".join(shlex.quote(p) if not p.startswith("${") else p for p in parts)


def stages_spec(*, out: str, params: str, logs: str, items: str, categories: str, taxonomy: str | None,
                truth: dict[str, str], title: str) -> dict[str, Any]:
    """The ``stages:`` mapping of the generated ``dvc.yaml`` (paths relative to the repository root)."""
    d, m, pl = f"{out}/data", f"{out}/metrics", f"{out}/plots"
    ing, edges, icpa = f"{d}/ingested", f"{d}/edges", f"{d}/icpa"
    concepts = truth.get("concepts.parquet")
    pairs = truth.get("product_matches.parquet")
    fine = truth.get("fine_categories.parquet")
    code = ["stages/_common.py"]
    # ICPA checkpoints (resume state, emptied when a stage succeeds) are no outputs: a stage that trains no
    # run of its own leaves no folder, which DVC would call a missing output; CHECKPOINTS_IGNORE keeps them out of git

    def prm(*sections: str) -> list[dict[str, list[str]]]:
        return [{params: list(sections)}]

    tax = ["--taxonomy", taxonomy] if taxonomy else []
    st: dict[str, Any] = {}
    st["ingest"] = {
        "cmd": _cmd("python", "-m", "stages.ingest", "--params", params, "--section", "ingest", "--logs", logs,
                    "--items", items, "--categories", categories, *tax, "--out", ing,
                    "--quarantine-file", f"{d}/quarantine/rejected.parquet", "--report", f"{m}/ingest.json"),
        "deps": ["stages/ingest.py", *code, "crossmatch/io", logs, items, categories, *([taxonomy] if taxonomy else [])],
        "params": prm("ingest"),
        "outs": [_out(ing), _out(f"{d}/quarantine/rejected.parquet"), _out(f"{m}/ingest.json", cache=False)],
    }
    st["edges"] = {
        "cmd": _cmd("python", "-m", "stages.edges", "--params", params, "--ingested", ing, "--out", edges,
                    "--stats", f"{m}/edges.json"),
        "deps": ["stages/edges.py", *code, "crossmatch/graph", ing],
        "params": prm("edges"),
        "outs": [_out(edges), _out(f"{m}/edges.json", cache=False)],
    }
    icpa_code = ["stages/_icpa.py", *code, "crossmatch/icpa", "crossmatch/device.py"]
    st["train_align"] = {
        "cmd": _cmd("python", "-m", "stages.train_align", "--params", params, "--ingested", ing, "--edges", edges,
                    "--truth", concepts or "none", "--out", f"{icpa}/align", "--embeddings", f"{icpa}/embeddings",
                    "--checkpoints", f"{icpa}/checkpoints/align", "--metrics", f"{m}/train_align.json",
                    "--front", f"{pl}/align/icpa_front.csv", "--curves", f"{pl}/icpa_curves/train_align"),
        "deps": ["stages/train_align.py", *icpa_code, "crossmatch/metrics/alignment_hits.py", ing, edges,
                 *([concepts] if concepts else [])],
        "params": prm("icpa"),
        "outs": [_out(f"{icpa}/align"), _out(f"{icpa}/embeddings"), _out(f"{pl}/align", cache=False),
                 _out(f"{pl}/icpa_curves/train_align", cache=False),
                 _out(f"{m}/train_align.json", cache=False)],
    }
    st["pareto_finetune"] = {
        "foreach": "${icpa.sources}",  # read from the params.yaml beside this dvc.yaml
        "do": {
            "cmd": _cmd("python", "-m", "stages.pareto_finetune", "--params", params, "--target", "${item}",
                        "--ingested", ing, "--edges", edges, "--align", f"{icpa}/align",
                        "--out", f"{icpa}/finetune/${{item}}", "--checkpoints", f"{icpa}/checkpoints/finetune/${{item}}",
                        "--metrics", f"{m}/icpa_finetune_${{item}}.json",
                        "--curves", f"{pl}/icpa_curves/finetune_${{item}}"),
            "deps": ["stages/pareto_finetune.py", *icpa_code, "crossmatch/metrics/ranking.py", ing, edges,
                     f"{icpa}/align"],
            "params": prm("icpa"),
            "outs": [_out(f"{icpa}/finetune/${{item}}"), _out(f"{m}/icpa_finetune_${{item}}.json", cache=False),
                     _out(f"{pl}/icpa_curves/finetune_${{item}}", cache=False)],
        },
    }
    st["icpa_eval"] = {
        "cmd": _cmd("python", "-m", "stages.icpa_eval", "--params", params, "--ingested", ing, "--edges", edges,
                    "--truth", concepts or "none", "--align", f"{icpa}/align", "--finetune", f"{icpa}/finetune",
                    "--out", f"{icpa}/eval", "--checkpoints", f"{icpa}/checkpoints/eval", "--metrics", f"{m}/icpa.json",
                    "--plot", f"{pl}/icpa_eval/icpa_ndcg_at_k.csv"),
        "deps": ["stages/icpa_eval.py", *icpa_code, "crossmatch/metrics/ranking.py",
                 "crossmatch/metrics/alignment_hits.py", "crossmatch/metrics/transfer.py", ing, edges,
                 f"{icpa}/align", f"{icpa}/finetune", *([concepts] if concepts else [])],
        "params": prm("icpa"),
        "outs": [_out(f"{icpa}/eval"), _out(f"{pl}/icpa_eval", cache=False), _out(f"{m}/icpa.json", cache=False)],
    }
    truth_flags = [*(["--truth-pairs", pairs] if pairs else []), *(["--truth-categories", fine] if fine else [])]
    st["blocking"] = {
        "cmd": _cmd("python", "-m", "stages.blocking", "--params", params, "--section", "blocking", "--ingested", ing,
                    *truth_flags, "--out", f"{d}/blocking", "--metrics", f"{m}/blocking.json",
                    "--plots", f"{pl}/blocking/blocking"),
        "deps": ["stages/blocking.py", *code, "crossmatch/bipoly", "crossmatch/truth.py", ing, *([pairs] if pairs else []),
                 *([fine] if fine else [])],
        "params": prm("blocking"),
        "outs": [_out(f"{d}/blocking"), _out(f"{pl}/blocking", cache=False), _out(f"{m}/blocking.json", cache=False)],
    }
    st["match"] = {
        "cmd": _cmd("python", "-m", "stages.match", "--params", params, "--section", "match", "--items", ing,
                    "--candidates", f"{d}/blocking/candidate_pairs.parquet", "--blocks", f"{d}/blocking/blocks.parquet",
                    "--embeddings", f"{icpa}/embeddings", "--truth", pairs or "none", "--model", SHIPPED_WEAVENET,
                    "--out", f"{d}/match/pairs.parquet", "--metrics", f"{m}/match.json"),
        "deps": ["stages/match.py", *code, "crossmatch/twosided", "crossmatch/truth.py", "crossmatch/device.py", ing, f"{d}/blocking",
                 f"{icpa}/embeddings", *([pairs] if pairs else [])],
        "params": prm("match"),
        "outs": [_out(f"{d}/match"), _out(f"{m}/match.json", cache=False)],
    }
    st["evaluate"] = {
        "cmd": _cmd("python", "-m", "stages.evaluate", "--params", params, "--section", "evaluate",
                    "--generate", "none", "--weavenet", "none", "--weavenet-tables", "none",
                    "--edges", f"{m}/edges.json", "--icpa", f"{m}/icpa.json", "--blocking", f"{m}/blocking.json",
                    "--match", f"{m}/match.json", "--front", f"{pl}/align/icpa_front.csv", "--plots-dir", pl,
                    "--front-stem", "evaluate/pareto_front", "--ndcg-stem", "icpa_eval/icpa_ndcg_at_k",
                    "--blocking-stem", "blocking/blocking", "--title", title, "--out", f"{m}/evaluate.json",
                    "--headline", f"{m}/headline.json", "--report", f"{out}/report.md"),
        "deps": ["stages/evaluate.py", *code, "crossmatch/report", "crossmatch/metrics/hypervolume.py",
                 f"{m}/edges.json", f"{m}/icpa.json", f"{m}/blocking.json", f"{m}/match.json", f"{pl}/align"],
        "params": prm("evaluate"),
        "outs": [_out(f"{out}/report.md", cache=False), _out(f"{pl}/evaluate", cache=False),
                 _out(f"{m}/evaluate.json", cache=False)],
        "metrics": [_out(f"{m}/headline.json", cache=False)],  # the file `dvc exp show` displays
    }
    return st


def _params_text(root: Path, path: Path, out_rel: str, summary: InputSummary, left: str, right: str) -> None:
    """``path``: the repository's params.yaml, its comments kept, our sections only, sources filled in."""
    # DVC's own round-trip writer (comments kept) and the one `dvc exp run -S` goes through
    from dvc.utils.hydra import apply_overrides  # type: ignore[import-untyped]
    from dvc.utils.serialize import modify_yaml  # type: ignore[import-untyped]

    src = root / "params.yaml"
    if not src.is_file():
        raise ConfigError(f"no params.yaml in {root} to start from")
    shutil.copyfile(src, path)
    with modify_yaml(path) as doc:
        for key in [k for k in doc if k not in SECTIONS]:
            del doc[key]
        missing = [s for s in SECTIONS if s not in doc]
        if missing:
            raise ConfigError(f"{src} has no section(s) {missing}")
        doc["ingest"]["sources"] = list(summary.sources)
        doc["icpa"]["sources"] = list(summary.sources)
        for section in ("blocking", "match"):
            doc[section]["left"], doc[section]["right"] = left, right
        if single_category(summary):
            doc["blocking"]["rescale"] = False
    # with no override, `-S`'s writer only rewrites the file in the form it keeps (block lists, ...), so that a
    # later `dvc exp run -S key=value` changes one line whatever the form of the project's params.yaml; a second
    # pass can still drop a comment that followed a list it rewrote, hence until nothing changes
    for _ in range(3):
        before = path.read_text()
        apply_overrides(path, [])
        if path.read_text() == before:
            break
    head = (f"# Parameters of the pipeline {out_rel}/dvc.yaml, written by `crossmatch init` from the project's\n"
            "# params.yaml (same keys and comments); the sources come from the data. Run it from the project with\n"
            f"#   dvc repro {out_rel}/dvc.yaml\n")
    path.write_text(head + path.read_text())


def single_category(summary: InputSummary) -> bool:
    """One shared category and no fine ones: blocking compares one category pair, every similarity is equal and
    its min-max rescaling is undefined, so ``blocking.rescale`` is written false."""
    return summary.n_categories == 1 and not summary.has_fine_category


def _notes(summary: InputSummary, truth: Sequence[str]) -> list[str]:
    notes = []
    if single_category(summary):
        notes.append("one category and no fine categories: blocking has one category pair (blocking.rescale: false)")
    f = summary.features
    if f["categorical"] or f["dense"]:
        notes.append(f"ICPA features: categorical {f['categorical']}, dense {f['dense']}")
    if f["unused"]:
        notes.append(f"item column(s) {f['unused']} are kept but are no ICPA feature (rename to cat_<name> or "
                     "num_<name> to use one)")
    if not summary.has_title:
        notes.append("no item titles: blocking and match compare category names, the ICPA embeddings decide within")
    if "concepts.parquet" not in truth:
        notes.append("no concepts truth: alignment hit@k will be null")
    if "product_matches.parquet" not in truth:
        notes.append("no product-match truth: blocking runs untuned, match precision/recall are null")
    return notes


def init_pipeline(*, root: Path, logs: Path, items: Path, categories: Path, taxonomy: Path | None = None,
                  truth_dir: Path | None = None, left: str | None = None, right: str | None = None,
                  out: Path = Path("pipelines/mine"), force: bool = False) -> InitResult:
    """Check the inputs and write ``<out>/dvc.yaml`` and ``<out>/params.yaml`` (see the module doc).

    Raises:
        InputError: an input file or column problem (:func:`inspect_inputs`), a source with items but no logs,
            a truth folder without truth.
        ConfigError: fewer than two sources, ``left``/``right`` not among them, ``out`` outside the repository,
            or an existing pipeline there without ``force``.
    """
    root = root.resolve()
    out_abs = (out if out.is_absolute() else root / out).resolve()
    try:
        out_rel = out_abs.relative_to(root).as_posix()
    except ValueError:
        raise ConfigError(f"--out {out} must be inside the repository {root} (the stages run from there)") from None
    if out_rel in (".", "") or (out_abs / "dvc.yaml") == root / "dvc.yaml":
        raise ConfigError("--out must be a folder of its own (e.g. pipelines/mine), not the repository root")
    if (out_abs / "dvc.yaml").exists() and not force:
        raise ConfigError(f"{out_rel}/dvc.yaml exists; --force replaces it and its params.yaml")
    summary = inspect_inputs(logs=logs, items=items, categories=categories, taxonomy=taxonomy)
    if summary.catalogue_only:  # ingest, given logs, wants log rows for every source it builds
        raise InputError(f"source(s) {summary.catalogue_only} have items but no logs; give them logs or leave their "
                         "items out (two catalogues without logs: see README, Entity resolution)", file=str(items))
    if len(summary.sources) < 2:
        raise ConfigError(f"blocking and matching need two sources; found {summary.sources}")
    left = left or summary.sources[0]
    right = right or next(s for s in summary.sources if s != left)
    for side, name in (("--left", left), ("--right", right)):
        if name not in summary.sources:
            raise ConfigError(f"{side} {name!r} is not a source of the data {summary.sources}")
    if left == right:
        raise ConfigError(f"--left and --right are both {left!r}")
    truth: dict[str, str] = {}
    if truth_dir is not None:
        if not truth_dir.is_dir():
            raise InputError("truth folder not found", file=str(truth_dir))
        truth = {n: _shown(truth_dir / n, root) for n in TRUTH_FILES if (truth_dir / n).is_file()}
        if not truth:
            raise InputError(f"the truth folder holds none of {list(TRUTH_FILES)}", file=str(truth_dir))

    wdir = os.path.relpath(root, out_abs).replace(os.sep, "/")
    stages = stages_spec(out=out_rel, params=f"{out_rel}/params.yaml", logs=_shown(logs, root),
                         items=_shown(items, root), categories=_shown(categories, root),
                         taxonomy=_shown(taxonomy, root) if taxonomy else None, truth=truth,
                         title=f"crossmatch report: {out_abs.name} ({', '.join(summary.sources)})")
    # every stage runs from the repository root, as in pipelines/real/dvc.yaml (wdir first, where a reader looks)
    ordered = {name: ({"foreach": s["foreach"], "do": {"wdir": wdir, **s["do"]}} if "foreach" in s
                      else {"wdir": wdir, **s}) for name, s in stages.items()}
    out_abs.mkdir(parents=True, exist_ok=True)
    params_path = out_abs / "params.yaml"
    _params_text(root, params_path, out_rel, summary, left, right)
    header = (f"# Own-data pipeline written by `crossmatch init` (sources {', '.join(summary.sources)}; "
              f"left {left}, right {right}).\n"
              f"# Run from the repository root:  dvc repro {out_rel}/dvc.yaml\n"
              "# Every stage runs there (wdir) and writes under this folder; edit params.yaml beside this file.\n")
    # per-epoch ICPA training curves, declared once as in ../../dvc.yaml (paths relative to this dvc.yaml)
    plots = [{"plots/icpa_curves": {"template": "linear", "x": "epoch", "y": ["loss", "total"]}}]
    body = yaml.safe_dump({"stages": ordered, "plots": plots}, sort_keys=False, width=10_000, allow_unicode=True)
    (out_abs / "dvc.yaml").write_text(header + body)
    ignore = out_abs / ".gitignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    if CHECKPOINTS_IGNORE not in lines:
        ignore.write_text("\n".join([*lines, CHECKPOINTS_IGNORE]) + "\n")
    return InitResult(Path(out_rel) / "dvc.yaml", Path(out_rel) / "params.yaml", summary, left, right, sorted(truth),
                      _notes(summary, list(truth)))
