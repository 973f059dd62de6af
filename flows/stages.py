"""The stage registry the flows run: one entry per DVC stage, in ``dvc.yaml`` order.

DVC owns the DAG and the cache; this list only says how Prefect runs each stage:
its resource tag (``cpu``/``gpu``, for tag concurrency limits and worker routing) and
whether it is I/O-bound (those get retries with backoff). ``tests/test_flow_order.py``
checks that this order agrees with ``dvc.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class StageSpec:
    name: str
    resource: str = "cpu"  # "cpu" | "gpu"
    io: bool = False  # reads external inputs: retried with backoff
    fanout: bool = False  # a foreach group whose stale items run concurrently (flows.fanout)

    @property
    def tags(self) -> set[str]:
        return {self.resource, "dvc"}


STAGES: tuple[StageSpec, ...] = (
    StageSpec("generate"),
    StageSpec("ingest_source", io=True, fanout=True),  # foreach group: one item per source (reads raw files)
    StageSpec("ingest", io=True),  # merges the per-source parts (quarantine, report); reads the shared tables
    StageSpec("edges_source", fanout=True),  # foreach group: one item per source
    StageSpec("edges"),  # merges the per-source statistics into metrics/edges.json
    StageSpec("train_align", "gpu"),
    StageSpec("pareto_finetune", "gpu", fanout=True),  # foreach group: one item per target source
    StageSpec("icpa_eval", "gpu"),  # trains Base and MMoE, then the ICPA table
    StageSpec("blocking"),
    StageSpec("weavenet_train", "gpu"),
    StageSpec("weavenet_eval"),
    StageSpec("match"),
    StageSpec("evaluate"),
)

# Retry schedule for I/O-bound stages (seconds before retry 1, 2, 3).
IO_RETRY_DELAYS: list[float] = [2.0, 5.0, 15.0]


# Stages of the real-data pipeline (pipelines/real/dvc.yaml), in that file's order.
REAL_STAGES: tuple[StageSpec, ...] = (
    StageSpec("ingest_xmarket", io=True),
    StageSpec("edges_xmarket"),
    StageSpec("train_align_xmarket", "gpu"),
    StageSpec("pareto_finetune_xmarket", "gpu", fanout=True),  # foreach group over the markets
    StageSpec("icpa_eval_xmarket", "gpu"),
    StageSpec("ingest_walmart_amazon", io=True),
    StageSpec("blocking_walmart_amazon"),
    StageSpec("match_walmart_amazon"),
    StageSpec("evaluate_real"),
    StageSpec("er_block", io=True, fanout=True),  # foreach over the two-table benchmarks (reads ../shared/data)
    StageSpec("er_match", io=True, fanout=True),
    StageSpec("er_report"),
)


@dataclass(frozen=True)
class PipelineSpec:
    """A DVC pipeline file and the ordered stages the flow runs from it."""

    name: str
    dvcfile: str  # relative to the repository root
    stages: tuple[StageSpec, ...]
    needs_shared_data: bool = False
    headline_file: str = "headline"  # stem of the metrics file with the run's headline metrics
    metrics_dir: str = "metrics"  # where the pipeline's metrics/*.json are, relative to the repository root
    report: str = "report.md"  # what its evaluate stage writes, relative to the repository root

    def target(self, stage: str) -> str:
        """The name ``dvc repro`` takes for ``stage`` of this pipeline file."""
        return stage if self.dvcfile == "dvc.yaml" else f"{self.dvcfile}:{stage}"


PIPELINES: dict[str, PipelineSpec] = {
    "default": PipelineSpec("default", "dvc.yaml", STAGES),
    "real": PipelineSpec("real", "pipelines/real/dvc.yaml", REAL_STAGES, needs_shared_data=True,
                         headline_file="real_headline", report="reports/real.md"),
}


class UnknownPipeline(ValueError):
    """Neither a named pipeline nor a folder of the project holding a ``dvc.yaml``."""


def resolve_pipeline(name: str, root: Path) -> PipelineSpec:
    """The pipeline ``name``: ``default``, ``real``, or a folder with a ``dvc.yaml`` inside the project
    (what ``crossmatch init`` writes, e.g. ``pipelines/mine``): its stages in that file's order, each
    with the tags and fan-out of the default stage of the same name (``cpu`` and serial otherwise; a
    ``foreach`` stage fans out); its metrics and report under that folder."""
    if name in PIPELINES:
        return PIPELINES[name]
    folder = (root / name).resolve()
    dvcfile = folder / "dvc.yaml" if folder.is_dir() else folder
    if dvcfile.name != "dvc.yaml" or not dvcfile.is_file():
        raise UnknownPipeline(f"unknown pipeline '{name}': use {sorted(PIPELINES)} or a folder of this project "
                              "with a dvc.yaml (crossmatch init writes one)")
    try:
        rel = dvcfile.relative_to(root.resolve())
    except ValueError:
        raise UnknownPipeline(f"pipeline '{name}' is outside the project {root}") from None
    try:
        stages = (yaml.safe_load(dvcfile.read_text()) or {}).get("stages") or {}
    except yaml.YAMLError as exc:
        raise UnknownPipeline(f"{rel}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(stages, dict) or not stages:
        raise UnknownPipeline(f"{rel}: no stages")
    known = {s.name: s for s in STAGES}
    specs = []
    for stage, body in stages.items():
        base = known.get(stage, StageSpec(stage))
        fanout = isinstance(body, dict) and "foreach" in body
        specs.append(StageSpec(stage, base.resource, base.io, fanout))
    folder_rel = rel.parent.as_posix()
    return PipelineSpec(folder_rel, rel.as_posix(), tuple(specs), metrics_dir=f"{folder_rel}/metrics",
                        report=f"{folder_rel}/report.md")
